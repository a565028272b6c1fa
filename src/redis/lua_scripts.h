// The Lua scripts RedisStore runs: one call admits a batch of requests of one shard, each
// against all of its buckets; one settles a batch; one reads buckets. They apply
// limits/bucket.h's rules exactly (see the prelude in lua_scripts.cc for how, given that Lua
// numbers are doubles).
//
// Data layout, all keys of one call under one hash tag ({shard_key}, see redis_store.h):
//   <prefix>{<shard>}:<BucketRef::Id()>  kTokens/kRequests: a string "level frac stamp"
//       (bucket.h's BucketLevel), expiring when the bucket would be full again (plus a margin):
//       a missing key is a full bucket.
//   <prefix>{<shard>}:<BucketRef::Id()>  kConcurrent: a sorted set of leases (member: lease id,
//       score: expiry in µs); expired members are ignored and removed; the key expires after the
//       last lease would have.
//   <prefix>{<shard>}:op:<id>            a call already applied (admission and settlement): a
//       retry of the same call (its connection dropped before the reply) charges nothing twice.
//       An admit batch's marker holds one flag per admission ("1": applied). Expires after a few
//       timeouts.
//
// Thread-safety: constants.
#pragma once

#include <string>

namespace trl::redis {

// KEYS[1] the call's marker, KEYS[2..] the buckets of the call (each once).
// ARGV[1] now in µs (0: the server's TIME), [2] marker TTL ms, [3] idle margin ms, [4] the number
// of admissions; then per admission: its lease id, lease TTL µs, number of charges, and per
// charge: the index of its bucket in KEYS, kind (t|r|c), capacity, period µs, calendar (0|1),
// amount. Returns {now, then per admission: admitted (0|1), then per charge: fits, level, frac,
// stamp, in_use}.
extern const std::string kAdmitScript;

// KEYS[1] the call's marker, KEYS[2..] the buckets of the call (each once).
// ARGV[1] now, [2] marker TTL ms, [3] idle margin ms, then per settlement: the index of its
// bucket in KEYS, kind, capacity, period, calendar, delta, admitted stamp, lease. Returns 1 (0
// when already applied).
extern const std::string kSettleScript;

// KEYS[i] bucket i. ARGV[1] now, then per bucket: kind, capacity, period, calendar.
// Returns {now, then per bucket: level, frac, stamp, in_use}. Changes nothing.
extern const std::string kReadScript;

}  // namespace trl::redis
