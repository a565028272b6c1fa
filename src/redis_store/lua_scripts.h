// The Lua scripts RedisStore runs: one call settles and admits a batch of requests of one
// shard, each admission against all of its buckets; one reads buckets. They apply
// limits/bucket.h's rules exactly (see the prelude in lua_scripts.cc for how, given that Lua
// numbers are doubles).
//
// Data layout, all keys of one call under one hash tag ({shard_key}, see redis_store.h):
//   <prefix>{<shard>}:<BucketRef::Id()>  kTokens/kRequests: a string "level frac stamp capacity"
//       (bucket.h's BucketLevel), expiring when the bucket would be full again (plus a margin):
//       a missing key is a full bucket. (A value without the capacity reads as measured
//       against today's.)
//   <prefix>{<shard>}:<BucketRef::Id()>  kConcurrent: a sorted set of leases (member: the 8
//       bytes of a lease id, score: expiry in µs); expired members are ignored and removed; the
//       key expires after the last lease would have.
//   <prefix>{<shard>}:r:<id>             the record of an applied admission (<id>: the 8 bytes of
//       its reservation id): the server time it was charged at, in µs. Kept for its lease TTL
//       when a settlement follows, else for a few timeouts. A copy of the admission (a retry of
//       its call) finds it and is not charged again; its settlement removes it and applies its
//       token deltas only then (once, however often it is sent). "x" instead: a tombstone left by
//       a settlement for an admission whose caller never learned its outcome and that left no
//       record: a late copy of that admission applies nothing.
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
// KEYS[1] the shard's records' prefix ("<prefix>{<shard>}:r:", never a key itself), KEYS[2..]
// the buckets of the call (each once).
// ARGV[1] now in µs (0: the server's TIME), [2] the TTL in ms of the record of an admission no
// settlement follows, [3] idle margin ms, [4] the specs of KEYS[2..], [5] the settlements: per
// settlement '<c8i8BH' its reservation id (8 bytes), lease TTL µs, 1 when its admission's outcome
// is unknown (else 0), number of entries, then per entry '<Hi8' the index of its bucket in KEYS,
// delta (a concurrency bucket's entry releases the lease; its delta is ignored); [6] the
// admissions: per admission '<c8i8BH' its reservation id (the member of its concurrency leases
// and its record's name), lease TTL µs, 1 when a settlement follows (else 0), number of
// charges, then per charge '<Hi8' the index of its bucket in KEYS, amount; [7] (may be empty or
// absent) when every
// admission charges only token and request buckets, none a negative amount: '<H' their number,
// then per bucket of KEYS[2..] '<i8' their total amount on it (-1: none charges it); when the
// totals fit, every admission does, one after the other, and they are judged and charged at once
// (a batch of 16 costs the script ~30% less). Returns a string: '<i8' now; per admission a
// byte '1' (admitted), '0' (refused) or 'x' (a tombstone: given up by its caller); per
// admission a byte '1' when an earlier copy of the call applied it (it is not charged again:
// admitted, every charge fits) or '0'; then per
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
