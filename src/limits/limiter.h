// The limiter: decides whether a request may go ahead under every budget that applies to it
// (DESIGN.md §3, "Admission", "Settlement", "Limit semantics", "Headers"), and settles it when
// it ends. It holds no budget state itself: that lives in a Store (memory or Redis), which
// admits a request against all of its budgets in one atomic step and settles it in another.
//
// Which limits apply: the key's limits (RequestScope::key_limits: the key's own, or
// default_limits when the key names none) and the tenant's limits, in each case those with no
// `model` plus those whose `model` is the request's canonical model.
// What each is charged: kTokens the reservation, kRequests 1, kConcurrent one slot (a lease that
// Settle releases and that lapses on its own after LimiterOptions::lease_ttl, so a crashed
// instance's slots come back).
//
// Thread-safety: thread-safe; Admit and Settle may run concurrently from coroutines on any
// number of threads. No exceptions on the request path: outcomes are values.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/container/small_vector.hpp>

#include "common/clock.h"
#include "config/config.h"
#include "limits/store.h"

namespace trl {

// What a request is charged against. Spans/views are valid for the duration of Admit.
struct RequestScope {
  std::string_view key;                        // key name (identity)
  std::string_view tenant;                     // "" = no tenant (tenant_limits are then ignored)
  std::string_view model;                      // canonical model name
  std::span<const LimitConfig> key_limits;     // the key's limits, or default_limits when the key names none
  std::span<const LimitConfig> tenant_limits;  // the tenant's limits
  std::string_view request_id;                 // for the concurrency lease (diagnostics)
};

// One kind (tokens or requests): the applicable limit with the least remaining.
struct RateLimitHeaderValues {
  bool present = false;   // false: no limit of this kind applies; send none of its headers
  int64_t limit = 0;      // x-ratelimit-limit-*: that limit's capacity N
  int64_t remaining = 0;  // x-ratelimit-remaining-*: whole units left after this request's
                          // charge (refusals: as it is now), never below 0
  int64_t reset_ms = 0;   // x-ratelimit-reset-*: until that budget is full again (0: full)
};

// What Settle needs: which buckets were charged, how much, the concurrency lease. Copyable and
// movable; owns copies of the names, so it outlives the RequestScope. Treat as opaque.
class Reservation {
 public:
  // True when Settle has nothing to do (refused, too large, store error, or no token or
  // concurrency limit applied). Settle may still be called: it returns at once.
  bool Empty() const { return buckets_.empty(); }
  int64_t reserved_tokens() const { return reserved_tokens_; }

 private:
  friend class Limiter;
  struct Bucket {
    ScopeKind scope = ScopeKind::kKey;
    bool model_specific = false;
    LimitKind kind = LimitKind::kTokens;  // kTokens or kConcurrent (kRequests need no settling)
    int64_t period_micros = 0;
    bool calendar = false;
    int64_t capacity = 0;
    int64_t stamp = 0;  // calendar: the window the reservation was charged to
  };
  std::string key_;
  std::string tenant_;
  std::string model_;
  int64_t reserved_tokens_ = 0;
  uint64_t lease_ = 0;
  boost::container::small_vector<Bucket, 4> buckets_;
};

struct Admission {
  enum class Outcome {
    kAdmitted,    // forward it; Settle(reservation, cost) exactly once when it ends
    kRefused,     // 429: rate_limit_exceeded, type from refused_kind
    kTooLarge,    // 400 tokens_exceed_limit: the reservation exceeds a token limit's capacity,
                  // it can never be admitted; nothing was charged
    kStoreError,  // the store failed; nothing known to be charged. on_store_error decides.
  };
  Outcome outcome = Outcome::kStoreError;
  LimitKind refused_kind = LimitKind::kTokens;  // kRefused / kTooLarge: which kind refused
  // kRefused / kTooLarge: names the limit, e.g. "key 'team-a' model 'llama2-13b' 20000 tokens
  // per 1m", "tenant 'acme' 600 requests per 1m (calendar)", "key 'team-a' 16 concurrent requests".
  std::string refused_limit;
  // kRefused / kTooLarge: the refusing limit's remaining amount (now, floored at 0; concurrency:
  // free slots), the amount asked of it, and (kRefused) how long until it can admit that amount,
  // at least 1 ms (calendar: the next window start; concurrency: LimiterOptions).
  int64_t remaining = 0, requested = 0, retry_after_ms = 0;
  RateLimitHeaderValues tokens, requests;  // for the x-ratelimit-* headers (all outcomes but
                                           // kStoreError; kTooLarge: as read, if the read worked)
  Reservation reservation;                 // pass to Settle when admitted
};

struct LimiterOptions {
  // A concurrency slot not released by Settle lapses after this long (a crashed instance, a
  // lost settlement). Requests that run longer lose their slot early: keep it above the longest
  // model timeout.
  std::chrono::milliseconds lease_ttl{10 * 60 * 1000};
  // retry_after for a refusal by a concurrency limit (slots free up unpredictably).
  std::chrono::milliseconds concurrency_retry{1000};
};

// Counters of every decision branch, for the metrics exporter. Monotonic.
struct LimiterStats {
  uint64_t admitted = 0;
  uint64_t refused_tokens = 0;
  uint64_t refused_requests = 0;
  uint64_t refused_concurrency = 0;
  uint64_t too_large = 0;
  uint64_t settled = 0;  // Settle calls that reached the store
  uint64_t store_errors_admit = 0;
  uint64_t store_errors_settle = 0;
  uint64_t store_errors_read = 0;  // ReadKeyLimits, ResetKey, and the read behind kTooLarge
};

// GET /admin/v1/keys/{name}/limits: one limit as it stands.
struct LimitReading {
  LimitConfig limit;
  int64_t level = 0;      // kTokens/kRequests: whole units now, negative in debt; concurrent: free slots
  int64_t remaining = 0;  // level floored at 0
  int64_t reset_ms = 0;   // until full again (0: full; concurrency: 0)
  int64_t in_use = 0;     // kConcurrent: slots held by requests in flight
};
struct LimitReadings {
  bool ok = false;  // false: the store failed
  std::vector<LimitReading> limits;
};

class Limiter {
 public:
  // `store` and `clock` must outlive the Limiter.
  Limiter(Store& store, const Clock& clock, LimiterOptions options = {});

  // Charges the request against every applicable limit, all or nothing. `reserve_tokens` is the
  // reservation (prompt estimate + output allowance; negative counts as 0). Never throws.
  asio::awaitable<Admission> Admit(const RequestScope& scope, int64_t reserve_tokens);
  // With a synchronous store (the embedded one), Admit's decision at once, without a coroutine
  // frame: the request path calls it when Synchronous(), else awaits Admit.
  bool Synchronous() const { return sync_ != nullptr; }
  Admission AdmitNow(const RequestScope& scope, int64_t reserve_tokens);

  // Exactly once per admitted request (calling it for an empty reservation is a no-op; calling
  // it twice charges twice): replaces the reservation by the real token cost on each token
  // budget (refunds never lift a budget above its capacity; a larger cost puts it in debt) and
  // releases the concurrency slot. Store failures are counted in Stats(), not reported.
  asio::awaitable<void> Settle(const Reservation& reservation, int64_t actual_tokens);
  // Settle, without holding up the caller: the request's client has its answer, and its
  // connection can take the next request while a store round trip settles this one. A
  // synchronous store settles before this returns. With another, the settlement is in the
  // store's order before this returns (Store::SettleDetached), so an admission made after it on
  // this thread is judged after it, seeing its refund and its released concurrency slot.
  // PendingSettlements counts those not yet done (a draining gateway waits for them).
  void SettleInBackground(const asio::any_io_executor& executor, Reservation reservation,
                          int64_t actual_tokens);
  size_t PendingSettlements() const { return pending_settlements_.load(std::memory_order_acquire); }

  // Admin: the key's limits (as configured, every model) with their current state. `tenant` is
  // the key's tenant ("" if none); it places the buckets in a clustered store.
  asio::awaitable<LimitReadings> ReadKeyLimits(std::string_view key, std::string_view tenant,
                                               std::span<const LimitConfig> key_limits);
  // Admin: refills every token and request budget of the key (concurrency slots in use stay).
  // Returns false if the store failed.
  asio::awaitable<bool> ResetKey(std::string_view key, std::string_view tenant,
                                 std::span<const LimitConfig> key_limits);

  LimiterStats Stats() const;

 private:
  struct Counters {
    std::atomic<uint64_t> admitted{0}, refused_tokens{0}, refused_requests{0},
        refused_concurrency{0}, too_large{0}, settled{0}, store_errors_admit{0},
        store_errors_settle{0}, store_errors_read{0};
  };

  struct Plan;
  struct SettlePlan;
  void MakePlan(const RequestScope& scope, int64_t reserve_tokens, Plan& plan) const;
  static std::string Describe(const RequestScope& scope, const Plan& plan, int index);
  Admission NothingApplies();
  Admission TooLarge(const RequestScope& scope, const Plan& plan, const ReadResult& read);
  Admission Decide(const RequestScope& scope, const Plan& plan, const AdmitResult& result);
  BucketsRequest ReadRequestFor(const Plan& plan,
                                boost::container::small_vector<BucketSpec, 8>& specs) const;
  AdmitRequest AdmitRequestFor(const RequestScope& scope, const Plan& plan) const;
  bool MakeSettlePlan(const Reservation& reservation, int64_t actual_tokens,
                      SettlePlan& plan) const;
  void CountSettle(StoreStatus status);
  void SettleNow(const Reservation& reservation, int64_t actual_tokens);
  asio::awaitable<void> SettleAsync(const Reservation& reservation, int64_t actual_tokens);
  struct BackgroundSettlement;

  Store& store_;
  SynchronousStore* const sync_;  // store_.Synchronous(): called directly when non-null
  const Clock& clock_;
  const LimiterOptions options_;
  mutable Counters counters_;
  std::atomic<size_t> pending_settlements_{0};
};

// "key 'team-a' model 'llama2-13b' 20000 tokens per 1m" and the like (Admission::refused_limit).
std::string DescribeLimit(ScopeKind scope, std::string_view owner, const LimitConfig& limit);
// A period as written in the config: "1m", "1d", "90s", "250ms" (the largest unit that divides
// it exactly). Not FormatDuration, which writes reset headers ("6m0s").
std::string FormatPeriod(std::chrono::milliseconds period);

}  // namespace trl
