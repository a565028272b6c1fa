// Where budgets live: the Store interface the Limiter talks to, with two implementations
// (MemoryStore, embedded, a SynchronousStore; RedisStore, shared by many instances).
//
// The interface is shaped for a Redis implementation in which ONE Lua script call admits a
// request against all of its budgets and one call settles it: every operation takes a whole
// batch, and each call carries a `shard_key` under which a clustered store keeps all the buckets
// of the call together (a Redis Cluster hash tag). The Limiter passes the tenant's name when the
// key has a tenant, else the key's name, so every bucket a request touches is in one slot; the
// same shard_key must therefore be used by every call that touches a bucket (a key that changes
// tenant starts with fresh budgets in Redis). MemoryStore ignores it.
//
// Operations never throw: failures come back as StoreStatus::kError. Spans and string_views in a
// request must stay valid until the operation completes.
// Times are microseconds since the Unix epoch, taken by the caller from its Clock (`now_micros`);
// an implementation may substitute its own notion of now (Redis: the server's TIME) and reports
// the time it used in the result.
//
// Thread-safety: implementations are thread-safe; any number of coroutines on any number of
// threads may call any operation concurrently.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/container/small_vector.hpp>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "config/config.h"
#include "limits/bucket.h"

namespace trl {

namespace asio = boost::asio;

enum class ScopeKind : uint8_t { kKey, kTenant };

// The identity of one budget: whose it is (key or tenant), which model it is restricted to, and
// which limit of that owner. Two owners never share a bucket; a limit whose capacity changes
// keeps its bucket (what was used stays used: bucket.h Refresh), one whose period, calendar flag
// or model changes gets a new one.
struct BucketRef {
  ScopeKind scope = ScopeKind::kKey;
  std::string_view scope_name;  // the key's or the tenant's name
  std::string_view model;       // "" = every model
  LimitKind kind = LimitKind::kTokens;
  int64_t period_micros = 0;  // 0 for kConcurrent
  bool calendar = false;

  bool operator==(const BucketRef&) const = default;

  // Stable, unambiguous text for stores that need a name ("k:team-a|tokens|60000000|r|" ...).
  // '%', '|', '{' and '}' in names are percent-encoded, so the text never contains a Redis hash
  // tag of its own. Allocates: not for MemoryStore's hot path.
  std::string Id() const;
};

// The scope_name of an owner's per-user budget (a limit with `scope: user`): the owner's name,
// 0x1F and the user's (no key or tenant name holds 0x1F, so it is no owner's own budget).
std::string PerUserName(std::string_view owner, std::string_view user);

// A budget and its current capacity (N tokens, requests or concurrent slots).
struct BucketSpec {
  BucketRef ref;
  int64_t capacity = 0;

  BucketParams Params() const { return {ref.kind, capacity, ref.period_micros, ref.calendar}; }
};

// Kinds whose charge is an amount (tokens; spend in nanos) that the settlement corrects to the
// real cost; kRequests charge 1 and kConcurrent a slot.
inline bool ChargesAmount(LimitKind kind) {
  return kind == LimitKind::kTokens || kind == LimitKind::kSpend;
}

// One budget a request is charged against: `amount` tokens (kTokens), nanos (kSpend), 1
// (kRequests) or one slot (kConcurrent, where amount is 1).
struct Charge {
  BucketSpec bucket;
  int64_t amount = 0;
};

enum class StoreStatus : uint8_t { kOk, kError };

// Admit: all charges or none. A kTokens/kRequests/kSpend charge fits when the bucket, refreshed to
// now, holds at least `amount` (so a bucket in debt refuses even a zero charge); a kConcurrent
// charge fits when fewer than `capacity` unexpired leases are held. If every charge fits, every one
// is applied (levels decrease, the lease `id` is taken in every kConcurrent bucket, expiring at now
// + lease_ttl_micros) atomically with respect to every other operation; otherwise nothing changes.
// Several charges must not name the same bucket.
//
// Exactly once, on a store whose calls can lose their reply (Redis): the store keeps a record of
// every admission it applied, under its `id`, for lease_ttl_micros when `settles` (a settlement
// will follow), else for a few timeouts. The same admission sent again (a retry) finds its
// record and is not charged twice; a settlement finds it and applies once.
struct AdmitRequest {
  std::string_view shard_key;
  std::span<const Charge> charges;
  std::string_view request_id;  // diagnostics only (a store may keep it with the lease)
  int64_t now_micros = 0;
  int64_t lease_ttl_micros = 0;
  uint64_t id = 0;       // the reservation's: never 0, unique across instances
  bool settles = false;  // token or concurrency charges: a settlement will follow
};

struct BucketState {
  bool fits = false;   // Admit: this bucket alone could take its charge (Read: true)
  BucketLevel level;   // kTokens/kRequests: after the charge when admitted, else as it is now
  int64_t in_use = 0;  // kConcurrent: unexpired leases held (after taking ours when admitted)
};

// One state per charge or spec, in the same order; no allocation for up to 8.
using BucketStates = boost::container::small_vector<BucketState, 8>;

struct AdmitResult {
  StoreStatus status = StoreStatus::kOk;  // kError: the admission may or may not have been applied
  bool admitted = false;
  int64_t now_micros = 0;  // the time the store judged by
  BucketStates states;
};

// What a settlement does to one bucket:
//  kTokens, kSpend: refreshes it, then applies `delta` (actual - reserved) by bucket.h's
//  SettleDelta:
//    negative refunds, never above capacity; positive may put it in debt; a refund for a calendar
//    window that has ended (`admitted_stamp` != the current window start) gives back only the
//    debt that window passed on.
//  kConcurrent: releases the lease `id` (nothing if it already expired).
//  kRequests: nothing (the Limiter does not send them).
// A bucket the store does not know is skipped.
//
// Once per id: a store that keeps records (AdmitRequest) applies the token deltas only while the
// admission's record exists, and removes it, so a settlement sent again (its reply was lost) or
// one for an admission that was never applied changes nothing; after the record's TTL the
// reservation stands as the charge. `outcome_unknown` (the admission's reply was lost: it may
// or may not have been applied): when no record exists, one is left in its place for
// lease_ttl_micros that makes a late copy of the admission apply nothing. A store that can
// neither lose a reply nor a call (MemoryStore) keeps no records.
struct Settlement {
  BucketSpec bucket;
  int64_t delta = 0;
  int64_t admitted_stamp = 0;  // calendar buckets: the window the reservation was charged to
};

struct SettleRequest {
  std::string_view shard_key;
  std::span<const Settlement> settlements;
  int64_t now_micros = 0;
  uint64_t id = 0;  // AdmitRequest::id
  bool outcome_unknown = false;
  int64_t lease_ttl_micros = 0;
};

// Read: each bucket as it is now, refreshed (a bucket the store has never seen reads full), with
// expired leases not counted; nothing is changed. Reset: each kTokens/kRequests bucket becomes
// full (concurrency leases are in-flight requests and are kept).
struct BucketsRequest {
  std::string_view shard_key;
  std::span<const BucketSpec> buckets;
  int64_t now_micros = 0;
};

struct ReadResult {
  StoreStatus status = StoreStatus::kOk;
  int64_t now_micros = 0;
  BucketStates states;
};

// Where a settlement nobody waits for reports its outcome (Store::SettleDetached).
class SettleCompletion {
 public:
  // Once, when the settlement is over, on any thread; the completion may delete itself here.
  virtual void Settled(StoreStatus status) = 0;

 protected:
  ~SettleCompletion() = default;
};

class SynchronousStore;

class Store {
 public:
  virtual ~Store() = default;

  virtual asio::awaitable<AdmitResult> Admit(const AdmitRequest& request) = 0;
  // Settles, for a caller that does not wait: returns at once and reports to `done`. `request`
  // (and what it points to) and `done` must stay valid until done.Settled. Before this
  // returns, the settlement has its place in the store's order: an operation a caller starts
  // after it on this thread is applied after it. `executor` is the caller's.
  virtual void SettleDetached(const SettleRequest& request, const asio::any_io_executor& executor,
                              SettleCompletion& done) = 0;
  virtual asio::awaitable<ReadResult> Read(const BucketsRequest& request) = 0;
  virtual asio::awaitable<StoreStatus> Reset(const BucketsRequest& request) = 0;

  // Non-null for a store whose operations complete at once, without I/O (MemoryStore): the
  // Limiter admits through it directly and saves a coroutine frame per request.
  virtual SynchronousStore* Synchronous() { return nullptr; }
};

// A store whose operations complete at once, without I/O (MemoryStore): it implements them as
// plain functions (same contracts, same results), and Store's operations are these, completing
// before they return (SettleDetached reports to `done` before it returns).
class SynchronousStore : public Store {
 public:
  virtual AdmitResult AdmitNow(const AdmitRequest& request) = 0;
  virtual StoreStatus SettleNow(const SettleRequest& request) = 0;
  virtual ReadResult ReadNow(const BucketsRequest& request) = 0;
  virtual StoreStatus ResetNow(const BucketsRequest& request) = 0;

  asio::awaitable<AdmitResult> Admit(const AdmitRequest& request) final;
  void SettleDetached(const SettleRequest& request, const asio::any_io_executor& executor,
                      SettleCompletion& done) final;
  asio::awaitable<ReadResult> Read(const BucketsRequest& request) final;
  asio::awaitable<StoreStatus> Reset(const BucketsRequest& request) final;
  SynchronousStore* Synchronous() final { return this; }
};

}  // namespace trl
