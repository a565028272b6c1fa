// The limiter: decides whether a request may go ahead under every budget that applies to it
// (docs/limits.md), and settles it when
// it ends. It holds no budget state itself: that lives in a Store (memory or Redis), which
// admits a request against all of its budgets in one atomic step and settles it in another.
//
// Which limits apply: the key's limits (RequestScope::key_limits: the key's own, or
// default_limits when the key names none) and the tenant's limits, in each case those with no
// `model` plus those whose `model` is the request's canonical model.
// What each is charged: kTokens the reservation's tokens, kSpend its price (only when the model
// has one: RequestScope::priced), kRequests 1, kConcurrent one slot (a lease that
// the settlement releases and that lapses on its own LimiterOptions::lease_ttl after the
// request's deadline, so a crashed instance's slots come back, and a request never outlives its
// slot).
//
// Exactly once: every admitted request is settled once, however the store fails. A settlement
// the store could not confirm is sent again, with backoff, until it lands or the admission's
// record in the store has lapsed (the reservation then stands as the charge); the store applies
// it once (store.h). An admission whose reply was lost may have been applied: it is settled
// like an admitted one, so its charge is replaced by the real cost or given back.
//
// Thread-safety: thread-safe; Admit and SettleInBackground may run concurrently from coroutines
// on any number of threads. No exceptions on the request path: outcomes are values.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/container/small_vector.hpp>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "config/config.h"
#include "limits/store.h"

namespace trl {

// What a request is charged against. Spans/views are valid for the duration of Admit.
struct RequestScope {
  std::string_view key;     // key name (identity)
  std::string_view tenant;  // "" = no tenant (tenant_limits are then ignored)
  std::string_view model;   // canonical model name
  std::span<const LimitConfig>
      key_limits;  // the key's limits, or default_limits when the key names none
  std::span<const LimitConfig> tenant_limits;  // the tenant's limits
  std::string_view request_id;                 // for the concurrency lease (diagnostics)
  // The longest the request may run (its model's request_timeout): its concurrency slot and
  // its record in the store last this plus LimiterOptions::lease_ttl.
  std::chrono::milliseconds deadline{0};
  // Whether spend limits apply: the model has a price. A free model's requests are never held
  // back by a spend limit, however far in debt it is.
  bool priced = false;
  std::string_view user;  // the end user, for limits with `scope: user` ("": anonymous)
};

// What a request is charged or costs: tokens, and spend in nanos of the currency
// (common/money.h). Negative amounts count as 0.
struct Amounts {
  int64_t tokens = 0;
  int64_t spend = 0;
};

// Where a settlement's cost came from (trl_settlements_total{source}).
enum class SettlementSource : uint8_t { kUsage, kEstimate };

// One kind (tokens, requests or spend): the applicable limit with the least remaining.
struct RateLimitHeaderValues {
  bool present = false;   // false: no limit of this kind applies; send none of its headers
  int64_t limit = 0;      // x-ratelimit-limit-*: that limit's capacity N
  int64_t remaining = 0;  // x-ratelimit-remaining-*: whole units left after this request's
                          // charge (refusals: as it is now), never below 0
  int64_t reset_ms = 0;   // x-ratelimit-reset-*: until that budget is full again (0: full)
};

// What the settlement needs: which buckets were charged, how much, the reservation's id (its
// concurrency lease and its record in the store). Copyable and movable; owns copies of the
// names, so it outlives the RequestScope. Treat as opaque.
class Reservation {
 public:
  // True when there is nothing to settle (refused, too large, or no token or concurrency limit
  // applied). SettleInBackground may still be called: it returns at once.
  bool Empty() const { return buckets_.empty(); }
  int64_t ReservedTokens() const { return reserved_.tokens; }
  int64_t ReservedSpend() const { return reserved_.spend; }
  // The store failed to say whether it applied the admission (Admission::kStoreError).
  bool OutcomeUnknown() const { return outcome_unknown_; }

 private:
  friend class Limiter;
  struct Bucket {
    ScopeKind scope = ScopeKind::kKey;
    bool model_specific = false;
    bool per_user = false;                // the owner's budget of the request's user (owner_user_)
    LimitKind kind = LimitKind::kTokens;  // kTokens, kSpend or kConcurrent (not kRequests)
    int64_t period_micros = 0;
    bool calendar = false;
    int64_t capacity = 0;
    int64_t stamp = 0;  // calendar: the window the reservation was charged to
  };
  std::string key_;
  std::string tenant_;
  std::string model_;
  std::string key_user_, tenant_user_;  // PerUserName of each, when a per-user bucket is charged
  Amounts reserved_;
  uint64_t id_ = 0;
  bool outcome_unknown_ = false;
  int64_t admitted_micros_ = 0;   // when it was charged (the Limiter's clock)
  int64_t lease_ttl_micros_ = 0;  // its lease and record in the store live this long
  boost::container::small_vector<Bucket, 4> buckets_;
};

struct Admission {
  enum class Outcome {
    kAdmitted,    // forward it; SettleInBackground(reservation, cost) once when it ends
    kRefused,     // 429: rate_limit_exceeded, type from refused_kind
    kTooLarge,    // 400: the reservation exceeds a token or spend limit's capacity, it can
                  // never be admitted; nothing was charged
    kStoreError,  // the store failed; on_store_error decides. It may have charged the request:
                  // a non-empty `reservation` must then be settled like an admitted one (with the
                  // real cost if the request goes ahead, with 0 if it is refused).
  };
  Outcome outcome = Outcome::kStoreError;
  LimitKind refused_kind = LimitKind::kTokens;  // kRefused / kTooLarge: which kind refused
  // kRefused / kTooLarge: names the limit, e.g. "key 'team-a' model 'llama2-13b' 20000 tokens
  // per 1m", "tenant 'acme' 600 requests per 1m (calendar)", "key 'team-a' 16 concurrent requests".
  std::string refused_limit;
  // kRefused / kTooLarge: whose limit that is (the key's or the tenant's), and whether it is one
  // restricted to the request's model.
  ScopeKind refused_scope = ScopeKind::kKey;
  bool refused_model_specific = false;
  bool refused_per_user = false;  // kRefused: a `scope: user` limit (the user's own budget)
  // kRefused / kTooLarge: the refusing limit's remaining amount (now, floored at 0; concurrency:
  // free slots), the amount asked of it, and (kRefused) how long until it can admit that amount,
  // at least 1 ms (calendar: the next window start; concurrency: LimiterOptions).
  int64_t remaining = 0, requested = 0, retry_after_ms = 0;
  // For the x-ratelimit-* headers (all outcomes but kStoreError; kTooLarge: as read, if the read
  // worked). spend: in nanos.
  RateLimitHeaderValues tokens, requests, spend;
  Reservation reservation;  // settle it when admitted (and see kStoreError)
};

struct LimiterOptions {
  // A concurrency slot never released (a crashed instance) lapses this long after its request's
  // deadline (RequestScope::deadline); settlements are retried until then.
  std::chrono::milliseconds lease_ttl{60 * 1000};
  // retry_after for a refusal by a concurrency limit (slots free up unpredictably).
  std::chrono::milliseconds concurrency_retry{1000};
  // A settlement the store did not confirm is sent again after this, doubling up to the max.
  std::chrono::milliseconds settle_retry_min{50};
  std::chrono::milliseconds settle_retry_max{1000};
};

// Settlements by how they ended: on the first try, after retries, or given up (the store never
// confirmed one before the admission's record lapsed, or the gateway stopped).
struct SettlementCounts {
  uint64_t applied = 0, retried = 0, lost = 0;
};

// Counters of every decision branch, for the metrics exporter. Monotonic.
struct LimiterStats {
  uint64_t admitted = 0;
  uint64_t refused_tokens = 0;
  uint64_t refused_requests = 0;
  uint64_t refused_concurrency = 0;
  uint64_t refused_spend = 0;
  uint64_t too_large = 0;
  uint64_t settled = 0;                    // settlements sent to the store (retries included)
  SettlementCounts by_usage, by_estimate;  // by SettlementSource
  uint64_t unsettled = 0;  // reservations charged (or maybe charged) and not yet settled: a gauge
  uint64_t store_errors_admit = 0;
  uint64_t store_errors_settle = 0;
  uint64_t store_errors_read = 0;  // the admin reads and resets, and the read behind kTooLarge
};

// GET /admin/v1/keys/{name}/limits: one limit as it stands.
struct LimitReading {
  LimitConfig limit;
  int64_t level =
      0;  // kTokens/kRequests: whole units now, negative in debt; concurrent: free slots
  int64_t remaining = 0;  // level floored at 0
  int64_t reset_ms = 0;   // until full again (0: full; concurrency: 0)
  int64_t in_use = 0;     // kConcurrent: slots held by requests in flight
};
struct LimitReadings {
  bool ok = false;  // false: the store failed
  std::vector<LimitReading> limits;
};

// Told the state of each token and request budget an admission was judged on: after the
// request's charge when admitted, as it stands when refused. For gauges of what is left. Called
// on the admitting thread once the store has answered; must be quick, must not block and must
// not call back into the Limiter.
class BudgetObserver {
 public:
  virtual void Observe(const BucketSpec& budget, const BucketLevel& level) = 0;

 protected:
  ~BudgetObserver() = default;
};

class Limiter {
 public:
  // `store` and `clock` must outlive the Limiter; so must the executors given to
  // SettleInBackground (or they are stopped first: settlements waiting on them are then deleted
  // here, unsent).
  Limiter(Store& store, const Clock& clock, LimiterOptions options = {});
  ~Limiter();
  Limiter(const Limiter&) = delete;
  Limiter& operator=(const Limiter&) = delete;

  // Charges the request against every applicable limit, all or nothing. `reserve` is the
  // reservation: tokens (prompt estimate + output allowance) and their price. Never throws. With
  // the embedded store (Store::Synchronous) it completes without suspending, in a frame small
  // enough for Asio's per-thread recycling: the store is called directly.
  asio::awaitable<Admission> Admit(const RequestScope& scope, Amounts reserve);

  // Exactly once per admitted request (and per kStoreError admission with a non-empty
  // reservation): replaces the reservation by the real cost on each token and spend budget
  // (refunds never lift a budget above its capacity; a larger cost puts it in debt) and releases
  // the concurrency slot. Returns at once: the request's client has its answer, and its connection
  // can take the next request while a store round trip settles this one. The settlement is in
  // the store's order before this returns (Store::SettleDetached; a synchronous store has
  // applied it), so an admission made after it on this thread is judged after it, seeing its
  // refund and its released slot. A settlement the store fails is sent
  // again on `executor` with backoff (see the class comment). PendingSettlements counts those
  // not yet done (a draining gateway waits for them).
  void SettleInBackground(const asio::any_io_executor& executor, Reservation reservation,
                          Amounts actual, SettlementSource source);
  size_t PendingSettlements() const { return pending_settlements_.load(std::memory_order_acquire); }
  // At shutdown, once the wait for PendingSettlements is over: settlements still waiting to be
  // sent again are given up (counted lost) instead; returns how many were pending.
  size_t Abandon();

  // Admin: the key's limits (as configured, every model) with their current state. `tenant` is
  // the key's tenant ("" if none); it places the buckets in a clustered store.
  asio::awaitable<LimitReadings> ReadKeyLimits(std::string_view key, std::string_view tenant,
                                               std::span<const LimitConfig> key_limits);
  // Admin: refills every token and request budget of the key (concurrency slots in use stay).
  // Returns false if the store failed.
  asio::awaitable<bool> ResetKey(std::string_view key, std::string_view tenant,
                                 std::span<const LimitConfig> key_limits);
  // Admin: the same for a tenant's own limits (shared by its keys).
  asio::awaitable<LimitReadings> ReadTenantLimits(std::string_view tenant,
                                                  std::span<const LimitConfig> tenant_limits);
  asio::awaitable<bool> ResetTenant(std::string_view tenant,
                                    std::span<const LimitConfig> tenant_limits);

  LimiterStats Stats() const;
  // Before the first Admit; null: none. The observer must outlive the Limiter's use of it.
  void SetBudgetObserver(BudgetObserver* observer) { observer_ = observer; }

 private:
  // The admin reads and resets of one owner's limits: `owner` (a key's or a tenant's name) under
  // `scope`, its buckets placed by `shard` (the key's tenant, or the tenant itself).
  asio::awaitable<LimitReadings> ReadLimits(ScopeKind scope, std::string_view owner,
                                            std::string_view shard,
                                            std::span<const LimitConfig> limits);
  asio::awaitable<bool> ResetLimits(ScopeKind scope, std::string_view owner, std::string_view shard,
                                    std::span<const LimitConfig> limits);

  struct Counters {
    std::atomic<uint64_t> admitted{0}, refused_tokens{0}, refused_requests{0},
        refused_concurrency{0}, refused_spend{0}, too_large{0}, settled{0}, store_errors_admit{0},
        store_errors_settle{0}, store_errors_read{0}, unsettled{0};
    // [source][0 applied, 1 retried, 2 lost]
    std::atomic<uint64_t> settlements[2][3] = {};
  };

  struct Plan;
  struct SettlePlan;
  // Admit's two ways: the synchronous store's, on the caller's stack; the others', in a
  // coroutine whose frame holds the plan while the store works.
  Admission AdmitNow(const RequestScope& scope, Amounts reserve);
  asio::awaitable<Admission> AdmitThroughStore(const RequestScope& scope, Amounts reserve);
  void MakePlan(const RequestScope& scope, Amounts reserve, Plan& plan);
  static std::string Describe(const RequestScope& scope, const Plan& plan, int index);
  Admission NothingApplies();
  Admission TooLarge(const RequestScope& scope, const Plan& plan, const ReadResult& read);
  Admission Decide(const RequestScope& scope, const Plan& plan, const AdmitResult& result);
  Admission StoreFailed(const RequestScope& scope, const Plan& plan);
  Reservation MakeReservation(const RequestScope& scope, const Plan& plan,
                              const AdmitResult* result) const;
  BucketsRequest ReadRequestFor(const Plan& plan,
                                boost::container::small_vector<BucketSpec, 8>& specs) const;
  AdmitRequest AdmitRequestFor(const RequestScope& scope, const Plan& plan) const;
  bool MakeSettlePlan(const Reservation& reservation, Amounts actual, SettlePlan& plan) const;
  void CountSettlement(SettlementSource source, int outcome);
  struct BackgroundSettlement;
  void Unlink(BackgroundSettlement& settlement);

  Store& store_;
  SynchronousStore* const sync_;  // store_.Synchronous(): admits directly when non-null
  const Clock& clock_;
  const LimiterOptions options_;
  mutable Counters counters_;
  std::atomic<uint64_t> next_id_;
  std::atomic<size_t> pending_settlements_{0};
  std::mutex settling_mu_;  // guards the list below; never held across a store call
  BackgroundSettlement* settling_ = nullptr;  // every settlement the store has failed once
  bool abandoned_ = false;
  BudgetObserver* observer_ = nullptr;
};

// "key 'team-a' model 'llama2-13b' 20000 tokens per 1m", "key 'team-a' user 'bob' 100 requests
// per 1m" and the like (Admission::refused_limit); `user` is named for a per-user limit.
std::string DescribeLimit(ScopeKind scope, std::string_view owner, const LimitConfig& limit,
                          std::string_view user = {});

}  // namespace trl
