#include "limits/limiter.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <optional>
#include <random>
#include <utility>

#include "common/money.h"
#include "config/limit_text.h"

namespace trl {
namespace {

using Charges = boost::container::small_vector<Charge, 8>;
// Which configured limit (and whose) each charge came from, for texts and readings.
struct Origin {
  const LimitConfig* limit = nullptr;
  ScopeKind scope = ScopeKind::kKey;
};
using Origins = boost::container::small_vector<Origin, 8>;

int64_t PeriodMicros(const LimitConfig& limit) {
  return limit.kind == LimitKind::kConcurrent ? 0 : limit.per.count() * 1000;
}

BucketRef RefFor(ScopeKind scope, std::string_view owner, const LimitConfig& limit) {
  return {scope,
          owner,
          limit.model,
          limit.kind,
          PeriodMicros(limit),
          limit.kind != LimitKind::kConcurrent && limit.calendar};
}

int64_t AmountFor(LimitKind kind, const Amounts& amounts) {
  switch (kind) {
    case LimitKind::kTokens:
      return amounts.tokens;
    case LimitKind::kSpend:
      return amounts.spend;
    case LimitKind::kRequests:
    case LimitKind::kConcurrent:
      break;
  }
  return 1;
}

// Adds the limits that apply to the request (its model; spend limits when it is priced). Two
// limits of one owner with the same identity (a duplicated config line) would be one bucket
// charged twice; the smaller capacity wins instead.
// `user_owner`: the owner's PerUserName for the request's user (its limits with `scope: user`).
void Collect(ScopeKind scope, std::string_view owner, std::string_view user_owner,
             std::span<const LimitConfig> limits, const RequestScope& request,
             const Amounts& reserve, Charges& charges, Origins& origins) {
  for (const LimitConfig& limit : limits) {
    if (!limit.model.empty() && limit.model != request.model) continue;
    if (limit.kind == LimitKind::kSpend && !request.priced) continue;
    Charge charge{{RefFor(scope, limit.per_user ? user_owner : owner, limit),
                   std::max<int64_t>(limit.amount, 0)},
                  AmountFor(limit.kind, reserve)};
    auto same = std::find_if(charges.begin(), charges.end(),
                             [&](const Charge& c) { return c.bucket.ref == charge.bucket.ref; });
    if (same == charges.end()) {
      charges.push_back(charge);
      origins.push_back({&limit, scope});
    } else if (charge.bucket.capacity < same->bucket.capacity) {
      *same = charge;
      origins[same - charges.begin()] = {&limit, scope};
    }
  }
}

// Header candidates: for each kind, the limit with the least remaining (ties: the longer reset).
void FillHeaders(std::span<const Charge> charges, const BucketStates& states, int64_t now,
                 Admission& admission) {
  for (size_t i = 0; i < charges.size(); ++i) {
    const BucketSpec& spec = charges[i].bucket;
    if (spec.ref.kind == LimitKind::kConcurrent) continue;
    const BucketLevel& level = states[i].level;
    RateLimitHeaderValues& header = spec.ref.kind == LimitKind::kTokens  ? admission.tokens
                                    : spec.ref.kind == LimitKind::kSpend ? admission.spend
                                                                         : admission.requests;
    int64_t remaining = std::max<int64_t>(level.level, 0);
    int64_t reset_ms = CeilMillis(MicrosUntil(spec.Params(), level, spec.capacity, now));
    if (!header.present || remaining < header.remaining ||
        (remaining == header.remaining && reset_ms > header.reset_ms)) {
      header = {true, spec.capacity, remaining, reset_ms};
    }
  }
}

// boost::container::small_vector is contiguous, but its iterators do not model C++20's
// contiguous_iterator, so spans are made from data() and size().
template <typename Vector>
auto AsSpan(const Vector& v) {
  return std::span<const typename Vector::value_type>(v.data(), v.size());
}

std::string_view ShardKey(std::string_view key, std::string_view tenant) {
  return tenant.empty() ? key : tenant;
}

bool AnyPerUser(std::span<const LimitConfig> limits) {
  return std::any_of(limits.begin(), limits.end(),
                     [](const LimitConfig& limit) { return limit.per_user; });
}

// The budgets of a key's or a tenant's own limits (the admin API reads and resets them); of a
// per-user limit, the anonymous user's (`anonymous`: the owner's PerUserName for "").
std::vector<BucketSpec> Specs(ScopeKind scope, std::string_view owner, std::string_view anonymous,
                              std::span<const LimitConfig> limits, bool with_concurrent) {
  std::vector<BucketSpec> specs;
  specs.reserve(limits.size());
  for (const LimitConfig& limit : limits) {
    if (limit.kind == LimitKind::kConcurrent && !with_concurrent) continue;
    specs.push_back({RefFor(scope, limit.per_user ? anonymous : owner, limit),
                     std::max<int64_t>(limit.amount, 0)});
  }
  return specs;
}

}  // namespace

std::string DescribeLimit(ScopeKind scope, std::string_view owner, const LimitConfig& limit,
                          std::string_view user) {
  std::string text = scope == ScopeKind::kKey ? "key '" : "tenant '";
  text.append(owner);
  text += '\'';
  if (limit.per_user) {
    text += " user '";
    text += user;
    text += '\'';
  }
  if (!limit.model.empty()) {
    text += " model '";
    text += limit.model;
    text += '\'';
  }
  text += ' ';
  text +=
      limit.kind == LimitKind::kSpend ? FormatMoney(limit.amount) : std::to_string(limit.amount);
  switch (limit.kind) {
    case LimitKind::kSpend:
      text += " spend per ";
      break;
    case LimitKind::kConcurrent:
      text += " concurrent requests";
      return text;
    case LimitKind::kTokens:
      text += " tokens per ";
      break;
    case LimitKind::kRequests:
      text += " requests per ";
      break;
  }
  text += FormatPeriod(limit.per);
  if (limit.calendar) text += " (calendar)";
  return text;
}

// Everything Admit decides before it asks the store. Lives on the caller's frame while the
// store works (the requests hold spans into it).
struct Limiter::Plan {
  Charges charges;
  Origins origins;
  int too_large = -1;  // index of a token or spend limit the reservation exceeds
  Amounts reserve;
  std::string key_user, tenant_user;  // PerUserName of each, when a per-user limit applies
  std::string_view shard_key;
  uint64_t id = 0;
  bool settles = false;  // token or concurrency charges
  int64_t lease_ttl_micros = 0;
};

// What Settle sends to the store.
struct Limiter::SettlePlan {
  boost::container::small_vector<Settlement, 4> settlements;
};

Limiter::Limiter(Store& store, const Clock& clock, LimiterOptions options)
    : store_(store), sync_(store.Synchronous()), clock_(clock), options_(options) {
  // Reservation ids are unique across instances without coordination: a random start, then a
  // counter (odd, so never 0).
  std::random_device rd;
  next_id_.store(((static_cast<uint64_t>(rd()) << 32) ^ rd()) | 1, std::memory_order_relaxed);
}

void Limiter::MakePlan(const RequestScope& scope, Amounts reserve, Plan& plan) {
  plan.reserve = {std::max<int64_t>(reserve.tokens, 0), std::max<int64_t>(reserve.spend, 0)};
  plan.shard_key = ShardKey(scope.key, scope.tenant);
  plan.id = next_id_.fetch_add(2, std::memory_order_relaxed);
  plan.lease_ttl_micros =
      (std::max<int64_t>(scope.deadline.count(), 0) + options_.lease_ttl.count()) * 1000;
  if (AnyPerUser(scope.key_limits)) plan.key_user = PerUserName(scope.key, scope.user);
  Collect(ScopeKind::kKey, scope.key, plan.key_user, scope.key_limits, scope, plan.reserve,
          plan.charges, plan.origins);
  if (!scope.tenant.empty()) {
    if (AnyPerUser(scope.tenant_limits)) {
      plan.tenant_user = PerUserName(scope.tenant, scope.user);
    }
    Collect(ScopeKind::kTenant, scope.tenant, plan.tenant_user, scope.tenant_limits, scope,
            plan.reserve, plan.charges, plan.origins);
  }
  // A reservation above a token or spend limit's capacity can never fit: it is refused before
  // the store's levels are touched (naming such a limit: of tokens first, the smallest); they
  // are only read, for the headers.
  auto exceeds_more = [&](const Charge& c) {
    if (plan.too_large < 0) return true;
    const BucketSpec& named = plan.charges[plan.too_large].bucket;
    if (c.bucket.ref.kind != named.ref.kind) return c.bucket.ref.kind == LimitKind::kTokens;
    return c.bucket.capacity < named.capacity;
  };
  for (size_t i = 0; i < plan.charges.size(); ++i) {
    const Charge& c = plan.charges[i];
    plan.settles = plan.settles || c.bucket.ref.kind != LimitKind::kRequests;
    if (ChargesAmount(c.bucket.ref.kind) && c.amount > c.bucket.capacity && exceeds_more(c)) {
      plan.too_large = static_cast<int>(i);
    }
  }
}

std::string Limiter::Describe(const RequestScope& scope, const Plan& plan, int index) {
  const Origin& origin = plan.origins[index];
  return DescribeLimit(origin.scope, origin.scope == ScopeKind::kKey ? scope.key : scope.tenant,
                       *origin.limit, scope.user);
}

Admission Limiter::NothingApplies() {
  Admission admission;
  admission.outcome = Admission::Outcome::kAdmitted;
  counters_.admitted.fetch_add(1, std::memory_order_relaxed);
  return admission;
}

Admission Limiter::TooLarge(const RequestScope& scope, const Plan& plan, const ReadResult& read) {
  counters_.too_large.fetch_add(1, std::memory_order_relaxed);
  Admission admission;
  admission.outcome = Admission::Outcome::kTooLarge;
  const Charge& charge = plan.charges[plan.too_large];
  admission.refused_kind = charge.bucket.ref.kind;
  admission.refused_limit = Describe(scope, plan, plan.too_large);
  admission.refused_scope = plan.origins[plan.too_large].scope;
  admission.refused_model_specific = !charge.bucket.ref.model.empty();
  admission.requested = charge.amount;
  if (read.status == StoreStatus::kOk && read.states.size() == plan.charges.size()) {
    admission.remaining = std::max<int64_t>(read.states[plan.too_large].level.level, 0);
    FillHeaders(AsSpan(plan.charges), read.states, read.now_micros, admission);
  } else {
    counters_.store_errors_read.fetch_add(1, std::memory_order_relaxed);
  }
  return admission;
}

Reservation Limiter::MakeReservation(const RequestScope& scope, const Plan& plan,
                                     const AdmitResult* result) const {
  Reservation r;
  if (!plan.settles) return r;
  r.reserved_ = plan.reserve;
  r.id_ = plan.id;
  r.outcome_unknown_ = result == nullptr;
  r.admitted_micros_ = clock_.NowMicros();
  r.lease_ttl_micros_ = plan.lease_ttl_micros;
  bool needs_model = false;
  for (size_t i = 0; i < plan.charges.size(); ++i) {
    const BucketRef& ref = plan.charges[i].bucket.ref;
    if (ref.kind == LimitKind::kRequests) continue;  // nothing to settle
    // (Unknown outcome: the store finds the window in its record of the admission.)
    const int64_t stamp = result ? result->states[i].level.stamp : 0;
    r.buckets_.push_back({ref.scope, !ref.model.empty(), plan.origins[i].limit->per_user, ref.kind,
                          ref.period_micros, ref.calendar, plan.charges[i].bucket.capacity, stamp});
    needs_model = needs_model || !ref.model.empty();
  }
  r.key_ = scope.key;
  r.tenant_ = scope.tenant;
  r.key_user_ = plan.key_user;
  r.tenant_user_ = plan.tenant_user;
  if (needs_model) r.model_ = scope.model;
  counters_.unsettled.fetch_add(1, std::memory_order_relaxed);
  return r;
}

// The store did not answer: the admission may have been applied all the same, so the
// reservation is kept for a settlement that replaces or gives back its charge.
Admission Limiter::StoreFailed(const RequestScope& scope, const Plan& plan) {
  counters_.store_errors_admit.fetch_add(1, std::memory_order_relaxed);
  Admission admission;
  admission.outcome = Admission::Outcome::kStoreError;
  admission.reservation = MakeReservation(scope, plan, nullptr);
  return admission;
}

Admission Limiter::Decide(const RequestScope& scope, const Plan& plan, const AdmitResult& result) {
  Admission admission;
  const Charges& charges = plan.charges;
  if (result.status != StoreStatus::kOk || result.states.size() != charges.size()) {
    return StoreFailed(scope, plan);
  }
  const int64_t now = result.now_micros;
  FillHeaders(AsSpan(charges), result.states, now, admission);
  if (observer_) {
    for (size_t i = 0; i < charges.size(); ++i) {
      // (Not per-user budgets: a gauge per end user would grow without bound.)
      if (charges[i].bucket.ref.kind == LimitKind::kConcurrent) continue;
      if (plan.origins[i].limit->per_user) continue;
      observer_->Observe(charges[i].bucket, result.states[i].level);
    }
  }

  if (result.admitted) {
    counters_.admitted.fetch_add(1, std::memory_order_relaxed);
    admission.outcome = Admission::Outcome::kAdmitted;
    admission.reservation = MakeReservation(scope, plan, &result);
    return admission;
  }

  // Refused: report the refusing limit that makes the client wait longest.
  int refused = -1;
  int64_t longest_wait = -1;
  for (size_t i = 0; i < charges.size(); ++i) {
    if (result.states[i].fits) continue;
    const BucketSpec& spec = charges[i].bucket;
    int64_t wait = spec.ref.kind == LimitKind::kConcurrent
                       ? options_.concurrency_retry.count() * 1000
                       : MicrosUntil(spec.Params(), result.states[i].level, charges[i].amount, now);
    if (wait > longest_wait) {
      longest_wait = wait;
      refused = static_cast<int>(i);
    }
  }
  if (refused < 0) {  // a store that refuses without naming a bucket: treat as a failure
    return StoreFailed(scope, plan);
  }
  const Charge& charge = charges[refused];
  const BucketState& state = result.states[refused];
  admission.outcome = Admission::Outcome::kRefused;
  admission.refused_kind = charge.bucket.ref.kind;
  admission.refused_limit = Describe(scope, plan, refused);
  admission.refused_scope = plan.origins[refused].scope;
  admission.refused_model_specific = !charge.bucket.ref.model.empty();
  admission.refused_per_user = plan.origins[refused].limit->per_user;
  admission.requested = charge.amount;
  admission.remaining = charge.bucket.ref.kind == LimitKind::kConcurrent
                            ? std::max<int64_t>(charge.bucket.capacity - state.in_use, 0)
                            : std::max<int64_t>(state.level.level, 0);
  admission.retry_after_ms = std::max<int64_t>(CeilMillis(longest_wait), 1);
  switch (admission.refused_kind) {
    case LimitKind::kTokens:
      counters_.refused_tokens.fetch_add(1, std::memory_order_relaxed);
      break;
    case LimitKind::kRequests:
      counters_.refused_requests.fetch_add(1, std::memory_order_relaxed);
      break;
    case LimitKind::kConcurrent:
      counters_.refused_concurrency.fetch_add(1, std::memory_order_relaxed);
      break;
    case LimitKind::kSpend:
      counters_.refused_spend.fetch_add(1, std::memory_order_relaxed);
      break;
  }
  return admission;
}

BucketsRequest Limiter::ReadRequestFor(const Plan& plan,
                                       boost::container::small_vector<BucketSpec, 8>& specs) const {
  for (const Charge& c : plan.charges) specs.push_back(c.bucket);
  return {plan.shard_key, AsSpan(specs), clock_.NowMicros()};
}

AdmitRequest Limiter::AdmitRequestFor(const RequestScope& scope, const Plan& plan) const {
  return {plan.shard_key,     AsSpan(plan.charges),  scope.request_id,
          clock_.NowMicros(), plan.lease_ttl_micros, plan.id,
          plan.settles};
}

asio::awaitable<Admission> Limiter::Admit(const RequestScope& scope, Amounts reserve) {
  if (sync_) co_return AdmitNow(scope, reserve);
  co_return co_await AdmitThroughStore(scope, reserve);
}

// A synchronous store (memory) is called on the caller's stack: the plan, the store's result and
// the decision live there, not in a coroutine frame (Admit's is then small enough to be
// recycled). Everything else happens in plain functions shared by both ways.
Admission Limiter::AdmitNow(const RequestScope& scope, Amounts reserve) {
  Plan plan;
  MakePlan(scope, reserve, plan);
  if (plan.charges.empty()) return NothingApplies();
  if (plan.too_large >= 0) {
    boost::container::small_vector<BucketSpec, 8> specs;
    return TooLarge(scope, plan, sync_->ReadNow(ReadRequestFor(plan, specs)));
  }
  return Decide(scope, plan, sync_->AdmitNow(AdmitRequestFor(scope, plan)));
}

asio::awaitable<Admission> Limiter::AdmitThroughStore(const RequestScope& scope, Amounts reserve) {
  // (Plan is not const: it draws the reservation's id.)
  Plan plan;
  MakePlan(scope, reserve, plan);
  if (plan.charges.empty()) co_return NothingApplies();
  if (plan.too_large >= 0) {
    boost::container::small_vector<BucketSpec, 8> specs;
    BucketsRequest request = ReadRequestFor(plan, specs);
    ReadResult read = co_await store_.Read(request);
    co_return TooLarge(scope, plan, read);
  }
  AdmitRequest request = AdmitRequestFor(scope, plan);
  AdmitResult result = co_await store_.Admit(request);
  co_return Decide(scope, plan, result);
}

bool Limiter::MakeSettlePlan(const Reservation& reservation, Amounts actual,
                             SettlePlan& plan) const {
  if (reservation.Empty()) return false;
  const Amounts delta{std::max<int64_t>(actual.tokens, 0) - reservation.reserved_.tokens,
                      std::max<int64_t>(actual.spend, 0) - reservation.reserved_.spend};
  for (const Reservation::Bucket& b : reservation.buckets_) {
    const int64_t bucket_delta = ChargesAmount(b.kind) ? AmountFor(b.kind, delta) : 0;
    if (ChargesAmount(b.kind) && bucket_delta == 0) continue;
    Settlement s;
    const bool key = b.scope == ScopeKind::kKey;
    s.bucket.ref = {b.scope,
                    b.per_user
                        ? std::string_view(key ? reservation.key_user_ : reservation.tenant_user_)
                        : std::string_view(key ? reservation.key_ : reservation.tenant_),
                    b.model_specific ? std::string_view(reservation.model_) : std::string_view(),
                    b.kind,
                    b.period_micros,
                    b.calendar};
    s.bucket.capacity = b.capacity;
    s.delta = bucket_delta;
    s.admitted_stamp = b.stamp;
    plan.settlements.push_back(s);
  }
  // A reservation whose outcome is unknown is sent even when it changes nothing: its record in
  // the store keeps a late copy of the admission from applying.
  return !plan.settlements.empty() || reservation.outcome_unknown_;
}

void Limiter::CountSettlement(SettlementSource source, int outcome) {
  counters_.settlements[static_cast<int>(source)][outcome].fetch_add(1, std::memory_order_relaxed);
  counters_.unsettled.fetch_sub(1, std::memory_order_relaxed);
}

// A settlement in progress: it owns the reservation its request points into, and sends it again
// while the store fails, until the admission's record in the store lapses. Linked into
// Limiter::settling_ from its first failure to its end (so that the lock is taken only when the
// store fails: a settlement that lands at once never touches it).
struct Limiter::BackgroundSettlement final : SettleCompletion {
  Limiter& limiter;
  Reservation reservation;
  SettlePlan plan;
  SettleRequest request;
  SettlementSource source;
  asio::any_io_executor executor;
  std::optional<asio::steady_timer> timer;  // used on `executor` only
  int attempts = 0;
  bool linked = false;  // in Limiter::settling_
  BackgroundSettlement* prev = nullptr;
  BackgroundSettlement* next = nullptr;

  BackgroundSettlement(Limiter& limiter, Reservation reservation, SettlementSource source,
                       asio::any_io_executor executor)
      : limiter(limiter),
        reservation(std::move(reservation)),
        source(source),
        executor(std::move(executor)) {}

  void Send() {
    ++attempts;
    limiter.counters_.settled.fetch_add(1, std::memory_order_relaxed);
    limiter.store_.SettleDetached(request, executor, *this);
  }
  // 0 applied, 1 retried, 2 lost.
  void End(int outcome) {
    limiter.CountSettlement(source, outcome);
    if (linked) limiter.Unlink(*this);
    limiter.pending_settlements_.fetch_sub(1, std::memory_order_acq_rel);
    delete this;
  }
  // Under settling_mu_; links this settlement on its first failure.
  bool GiveUp() {
    const int64_t lapse = reservation.admitted_micros_ + reservation.lease_ttl_micros_;
    std::lock_guard lock(limiter.settling_mu_);
    if (!linked) {
      linked = true;
      next = limiter.settling_;
      if (next) next->prev = this;
      limiter.settling_ = this;
    }
    return limiter.abandoned_ || limiter.clock_.NowMicros() >= lapse;
  }
  void Settled(StoreStatus status) override {
    if (status == StoreStatus::kOk) return End(attempts > 1 ? 1 : 0);
    limiter.counters_.store_errors_settle.fetch_add(1, std::memory_order_relaxed);
    if (GiveUp()) return End(2);
    // On the caller's executor, where the timer lives (this may run on a store thread).
    asio::post(executor, [this] { Retry(); });
  }
  void Retry() {
    const auto& o = limiter.options_;
    auto wait = o.settle_retry_min * (int64_t{1} << std::min(attempts - 1, 16));
    if (!timer) timer.emplace(executor);
    timer->expires_after(std::min<std::chrono::milliseconds>(wait, o.settle_retry_max));
    timer->async_wait([this](boost::system::error_code ec) {
      if (ec || GiveUp()) return End(2);
      request.now_micros = limiter.clock_.NowMicros();
      Send();
    });
  }
};

void Limiter::Unlink(BackgroundSettlement& s) {
  std::lock_guard lock(settling_mu_);
  (s.prev ? s.prev->next : settling_) = s.next;
  if (s.next) s.next->prev = s.prev;
}

void Limiter::SettleInBackground(const asio::any_io_executor& executor, Reservation reservation,
                                 Amounts actual, SettlementSource source) {
  if (reservation.Empty() && !reservation.outcome_unknown_) return;
  auto settlement =
      std::make_unique<BackgroundSettlement>(*this, std::move(reservation), source, executor);
  const Reservation& r = settlement->reservation;
  if (!MakeSettlePlan(r, actual, settlement->plan)) {
    CountSettlement(source,
                    0);  // nothing changes (a concurrency-free reservation, cost as reserved)
    return;
  }
  settlement->request = {ShardKey(r.key_, r.tenant_), AsSpan(settlement->plan.settlements),
                         clock_.NowMicros(),          r.id_,
                         r.outcome_unknown_,          r.lease_ttl_micros_};
  pending_settlements_.fetch_add(1, std::memory_order_acq_rel);
  settlement.release()->Send();  // deletes itself when it ends
}

size_t Limiter::Abandon() {
  std::lock_guard lock(settling_mu_);
  abandoned_ = true;
  return pending_settlements_.load(std::memory_order_acquire);
}

Limiter::~Limiter() {
  // Settlements whose executors stopped before they could be sent again: given up here. (Any
  // other has ended: the store completes every call before it goes, RedisStore::Shutdown.)
  while (settling_) {
    BackgroundSettlement* s = settling_;
    settling_ = s->next;
    counters_.settlements[static_cast<int>(s->source)][2].fetch_add(1, std::memory_order_relaxed);
    delete s;
  }
}

asio::awaitable<LimitReadings> Limiter::ReadKeyLimits(std::string_view key, std::string_view tenant,
                                                      std::span<const LimitConfig> key_limits) {
  return ReadLimits(ScopeKind::kKey, key, ShardKey(key, tenant), key_limits);
}

asio::awaitable<bool> Limiter::ResetKey(std::string_view key, std::string_view tenant,
                                        std::span<const LimitConfig> key_limits) {
  return ResetLimits(ScopeKind::kKey, key, ShardKey(key, tenant), key_limits);
}

asio::awaitable<LimitReadings> Limiter::ReadTenantLimits(
    std::string_view tenant, std::span<const LimitConfig> tenant_limits) {
  return ReadLimits(ScopeKind::kTenant, tenant, tenant, tenant_limits);
}

asio::awaitable<bool> Limiter::ResetTenant(std::string_view tenant,
                                           std::span<const LimitConfig> tenant_limits) {
  return ResetLimits(ScopeKind::kTenant, tenant, tenant, tenant_limits);
}

asio::awaitable<LimitReadings> Limiter::ReadLimits(ScopeKind scope, std::string_view owner,
                                                   std::string_view shard,
                                                   std::span<const LimitConfig> limits) {
  const std::string anonymous = PerUserName(owner, "");
  const std::vector<BucketSpec> specs =
      Specs(scope, owner, anonymous, limits, /*with_concurrent=*/true);
  LimitReadings readings;
  BucketsRequest request{shard, specs, clock_.NowMicros()};
  ReadResult read = co_await store_.Read(request);
  if (read.status != StoreStatus::kOk || read.states.size() != specs.size()) {
    counters_.store_errors_read.fetch_add(1, std::memory_order_relaxed);
    co_return readings;
  }
  readings.ok = true;
  readings.limits.reserve(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    const BucketState& state = read.states[i];
    LimitReading reading;
    reading.limit = limits[i];
    if (specs[i].ref.kind == LimitKind::kConcurrent) {
      reading.in_use = state.in_use;
      reading.level = specs[i].capacity - state.in_use;
    } else {
      reading.level = state.level.level;
      reading.reset_ms = CeilMillis(
          MicrosUntil(specs[i].Params(), state.level, specs[i].capacity, read.now_micros));
    }
    reading.remaining = std::max<int64_t>(reading.level, 0);
    readings.limits.push_back(std::move(reading));
  }
  co_return readings;
}

asio::awaitable<bool> Limiter::ResetLimits(ScopeKind scope, std::string_view owner,
                                           std::string_view shard,
                                           std::span<const LimitConfig> limits) {
  const std::string anonymous = PerUserName(owner, "");
  const std::vector<BucketSpec> specs =
      Specs(scope, owner, anonymous, limits, /*with_concurrent=*/false);
  BucketsRequest request{shard, specs, clock_.NowMicros()};
  if (co_await store_.Reset(request) != StoreStatus::kOk) {
    counters_.store_errors_read.fetch_add(1, std::memory_order_relaxed);
    co_return false;
  }
  co_return true;
}

LimiterStats Limiter::Stats() const {
  LimiterStats s;
  s.admitted = counters_.admitted.load(std::memory_order_relaxed);
  s.refused_tokens = counters_.refused_tokens.load(std::memory_order_relaxed);
  s.refused_requests = counters_.refused_requests.load(std::memory_order_relaxed);
  s.refused_concurrency = counters_.refused_concurrency.load(std::memory_order_relaxed);
  s.refused_spend = counters_.refused_spend.load(std::memory_order_relaxed);
  s.too_large = counters_.too_large.load(std::memory_order_relaxed);
  s.settled = counters_.settled.load(std::memory_order_relaxed);
  s.unsettled = counters_.unsettled.load(std::memory_order_relaxed);
  SettlementCounts* by[2] = {&s.by_usage, &s.by_estimate};
  for (int i = 0; i < 2; ++i) {
    by[i]->applied = counters_.settlements[i][0].load(std::memory_order_relaxed);
    by[i]->retried = counters_.settlements[i][1].load(std::memory_order_relaxed);
    by[i]->lost = counters_.settlements[i][2].load(std::memory_order_relaxed);
  }
  s.store_errors_admit = counters_.store_errors_admit.load(std::memory_order_relaxed);
  s.store_errors_settle = counters_.store_errors_settle.load(std::memory_order_relaxed);
  s.store_errors_read = counters_.store_errors_read.load(std::memory_order_relaxed);
  return s;
}

}  // namespace trl
