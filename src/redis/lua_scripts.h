// The Lua scripts RedisStore runs: one call settles and admits a batch of requests of one
// shard, each admission against all of its buckets; one reads buckets. They apply
// limits/bucket.h's rules exactly (see the prelude in lua_scripts.cc for how, given that Lua
// numbers are doubles).
//
// Data layout, all keys of one call under one hash tag ({shard_key}, see redis_store.h):
//   <prefix>{<shard>}:<BucketRef::Id()>  kTokens/kRequests: a string "level frac stamp"
//       (bucket.h's BucketLevel), expiring when the bucket would be full again (plus a margin):
//       a missing key is a full bucket.
//   <prefix>{<shard>}:<BucketRef::Id()>  kConcurrent: a sorted set of leases (member: the 8
//       bytes of a lease id, score: expiry in µs); expired members are ignored and removed; the
//       key expires after the last lease would have.
//   <prefix>{<shard>}:op:<id>            a batch already applied: a retry of the same call (its
//       connection dropped before the reply) charges nothing twice. Holds one flag per admission
//       ("1": applied); its settlements were all applied. Expires after a few timeouts.
//
// Thread-safety: constants.
#pragma once

#include <string>

namespace trl::redis {

// Figures that come in bulk (the buckets' specs, the admissions, the settlements, the admit
// reply) are packed into one string each, records of fixed-width little-endian fields in the
// notation of the struct library Redis bundles with its Lua (redis/packed.h writes and reads
// them): Redis would otherwise make an object and a Lua string of every argument, and hiredis
// an object of every integer of a reply, which cost more than the scripts' own work.
//
// Specs (every script), one record per bucket, in the order of its keys: '<c1Bi8i8' kind
// (t|r|c), calendar (0|1), capacity, period µs.
//
// KEYS[1] the call's marker, KEYS[2..] the buckets of the call (each once).
// ARGV[1] now in µs (0: the server's TIME), [2] marker TTL ms, [3] idle margin ms, [4] the specs
// of KEYS[2..], [5] the settlements: per settlement '<Hi8i8c8' the index of its bucket in KEYS,
// delta, admitted stamp, lease id; [6] the admissions: per admission '<c8i8H' its lease id (8
// bytes, the member of its concurrency leases), lease TTL µs, number of charges, then per charge
// '<Hi8' the index of its bucket in KEYS, amount; [7] (may be empty or absent) when every
// admission charges only token and request buckets, none a negative amount: '<H' their number,
// then per bucket of KEYS[2..] '<i8' their total amount on it (-1: none charges it); when the
// totals fit, every admission does, one after the other, and they are judged and charged at once
// (a batch of 16 costs the script ~30% less). Returns a string: '<i8' now; per admission a
// byte '1' (admitted) or '0'; when the call is a retry whose first try was applied, the first
// try's bytes (its admitted ones are not charged again: admitted, every charge fits); then per
// bucket of KEYS[2..] '<i8i8i8' the level the admissions started from (after the settlements;
// kConcurrent: slots in use), frac, stamp (the same after every admission; 0 0 for
// kConcurrent). The caller works out each admission's states by replaying the admissions on
// those levels: Lua makes and hashes a string of every value it packs, so a state per charge
// cost the script a third of its time.
extern const std::string kBatchScript;

// KEYS[i] bucket i. ARGV[1] now, [2] the specs of KEYS[1..].
// Returns {now, then per bucket: level, frac, stamp, in_use}. Changes nothing.
extern const std::string kReadScript;

}  // namespace trl::redis
