#include "limits/limiter.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <string>
#include <thread>
#include <vector>

#include "fakes/fake_clock.h"
#include "fakes/limit_builders.h"
#include "fakes/micros.h"
#include "fakes/redis_server.h"
#include "fakes/run_awaitable.h"
#include "limits/memory_store.h"
#include "redis_store/redis_store.h"

namespace trl {
namespace {

using std::chrono::milliseconds;
using Outcome = Admission::Outcome;

using testing::kSecond;
using testing::kT0;
constexpr int64_t kMidnight = 1'700'006'400 * kSecond;  // 2023-11-15T00:00:00Z
constexpr milliseconds kPerMinute{60'000};
constexpr milliseconds kPerDay{86'400'000};

using testing::Concurrent;
using testing::Requests;
using testing::Spend;
using testing::Tokens;

const std::vector<LimitConfig> kNone;

RequestScope Scope(const std::vector<LimitConfig>& key_limits,
                   const std::vector<LimitConfig>& tenant_limits = kNone,
                   std::string_view model = "llama2-7b", std::string_view key = "team-a",
                   std::string_view tenant = "acme") {
  return {key, tenant, model, key_limits, tenant_limits, "req-1"};
}

// Settles in the background (the one way the Limiter settles) on a private io_context, and
// waits, bounded, until the store has confirmed it or the Limiter has given it up.
void SettleAndWait(Limiter& limiter, Reservation reservation, Amounts actual) {
  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  limiter.SettleInBackground(io.get_executor(), std::move(reservation), actual,
                             SettlementSource::kUsage);
  for (int i = 0; i < 10'000 && limiter.PendingSettlements() > 0; ++i) {
    io.run_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(limiter.PendingSettlements(), 0u);
}

// MemoryStore seen only through the awaitable interface (as a Redis store would be), so the
// Limiter takes its coroutine path rather than calling the store synchronously.
class AwaitableOnlyStore final : public Store {
 public:
  explicit AwaitableOnlyStore(Store& inner) : inner_(inner) {}
  asio::awaitable<AdmitResult> Admit(const AdmitRequest& r) override {
    co_return co_await inner_.Admit(r);
  }
  void SettleDetached(const SettleRequest& r, const asio::any_io_executor& executor,
                      SettleCompletion& done) override {
    inner_.SettleDetached(r, executor, done);
  }
  asio::awaitable<ReadResult> Read(const BucketsRequest& r) override {
    co_return co_await inner_.Read(r);
  }
  asio::awaitable<StoreStatus> Reset(const BucketsRequest& r) override {
    co_return co_await inner_.Reset(r);
  }

 private:
  Store& inner_;
};

// Which store a LimiterTest runs on: the same test code for each.
enum class StoreKind {
  kMemorySync,       // MemoryStore, called synchronously by the Limiter
  kMemoryAwaitable,  // MemoryStore through awaitables only (the Limiter's coroutine path)
  kRedis,            // RedisStore on a real redis-server (tests/fakes/redis_server.h), judging
                     // by the test's fake clock rather than the server's TIME
};

std::unique_ptr<testing::RedisServer> StartRedis(StoreKind kind, std::string* error) {
  if (kind != StoreKind::kRedis) return nullptr;
  return testing::RedisServer::Start({}, error);
}

std::unique_ptr<RedisStore> MakeRedisStore(const testing::RedisServer* server) {
  if (!server) return nullptr;
  RedisStoreOptions options;
  options.client.urls = {server->Url()};
  options.server_time = false;
  options.timeout = std::chrono::seconds(5);    // semantics under test, not latency
  options.idle_margin = std::chrono::hours(1);  // the fake clock runs ahead of Redis's expiry
  options.key_prefix = "trl-test:";
  std::string error;
  return RedisStore::Create(options, &error);
}

class LimiterTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  void SetUp() override {
    if (GetParam() == StoreKind::kRedis && !redis_store_) {
      testing::SkipWithoutRedis("no redis-server: " + redis_error_);
    }
  }

  Store& LimiterStore() {
    switch (GetParam()) {
      case StoreKind::kMemorySync:
        return store_;
      case StoreKind::kMemoryAwaitable:
        return awaitable_only_;
      case StoreKind::kRedis:
        if (redis_store_) return *redis_store_;
        break;
    }
    return store_;
  }

  Admission Admit(const RequestScope& scope, int64_t reserve) {
    return RunAwaitable(limiter_.Admit(scope, {reserve}));
  }
  Admission Admit(const RequestScope& scope, Amounts reserve) {
    return RunAwaitable(limiter_.Admit(scope, reserve));
  }
  void Settle(const Admission& admission, int64_t actual) {
    SettleAndWait(limiter_, admission.reservation, {actual});
  }
  void Settle(const Admission& admission, Amounts actual) {
    SettleAndWait(limiter_, admission.reservation, actual);
  }
  // The key's budgets, remaining now, in the order of `limits`.
  std::vector<int64_t> KeyLevels(const std::vector<LimitConfig>& limits) {
    LimitReadings r = RunAwaitable(limiter_.ReadKeyLimits("team-a", "acme", limits));
    EXPECT_TRUE(r.ok);
    std::vector<int64_t> levels;
    for (const LimitReading& reading : r.limits) levels.push_back(reading.level);
    return levels;
  }
  int64_t TenantLevel(const LimitConfig& limit) {
    BucketSpec spec{{ScopeKind::kTenant, "acme", limit.model, limit.kind, limit.per.count() * 1000,
                     limit.calendar},
                    limit.amount};
    std::vector<BucketSpec> specs = {spec};
    ReadResult read = RunAwaitable(LimiterStore().Read({"acme", specs, clock_.NowMicros()}));
    EXPECT_EQ(read.status, StoreStatus::kOk);
    return read.states.empty() ? 0 : read.states[0].level.level;
  }
  // Buckets the store holds (Redis: bucket keys, not the admissions' records).
  size_t BucketCount() {
    if (GetParam() != StoreKind::kRedis) return store_.BucketCount();
    testing::TestReply keys = redis_server_->Command({"KEYS", "trl-test:*"});
    size_t count = 0;
    for (size_t i = 0; keys && i < keys->elements; ++i) {
      std::string_view key(keys->element[i]->str, keys->element[i]->len);
      if (key.find("}:r:") == std::string_view::npos) ++count;
    }
    return count;
  }

  FakeClock clock_{kT0};
  MemoryStore store_;
  AwaitableOnlyStore awaitable_only_{store_};
  std::string redis_error_;
  std::unique_ptr<testing::RedisServer> redis_server_ = StartRedis(GetParam(), &redis_error_);
  std::unique_ptr<RedisStore> redis_store_ = MakeRedisStore(redis_server_.get());
  Limiter limiter_{LimiterStore(), clock_};
};

INSTANTIATE_TEST_SUITE_P(Stores, LimiterTest,
                         ::testing::Values(StoreKind::kMemorySync, StoreKind::kMemoryAwaitable,
                                           StoreKind::kRedis),
                         [](const ::testing::TestParamInfo<StoreKind>& info) {
                           switch (info.param) {
                             case StoreKind::kMemorySync:
                               return "MemorySync";
                             case StoreKind::kMemoryAwaitable:
                               return "MemoryAwaitable";
                             case StoreKind::kRedis:
                               return "Redis";
                           }
                           return "?";
                         });

RequestScope Priced(RequestScope scope) {
  scope.priced = true;
  return scope;
}

TEST_P(LimiterTest, SpendLimitChargesThePriceAndSettlesToTheRealCost) {
  std::vector<LimitConfig> key = {Spend(1000, kPerMinute), Tokens(10'000, kPerMinute)};
  Admission a = Admit(Priced(Scope(key)), Amounts{100, 600});
  ASSERT_EQ(a.outcome, Outcome::kAdmitted);
  EXPECT_TRUE(a.spend.present);
  EXPECT_EQ(a.spend.limit, 1000);
  EXPECT_EQ(a.spend.remaining, 400);
  EXPECT_EQ(a.spend.reset_ms, 36'000);  // 600 nanos at 1000 per minute
  EXPECT_EQ(a.tokens.remaining, 9'900);
  EXPECT_EQ(a.reservation.ReservedSpend(), 600);
  Settle(a, Amounts{80, 250});
  EXPECT_EQ(KeyLevels(key), (std::vector<int64_t>{750, 9'920}));

  Admission refused = Admit(Priced(Scope(key)), Amounts{10, 800});
  EXPECT_EQ(refused.outcome, Outcome::kRefused);
  EXPECT_EQ(refused.refused_kind, LimitKind::kSpend);
  EXPECT_EQ(refused.refused_limit, "key 'team-a' 0.000001 spend per 1m");
  EXPECT_EQ(refused.remaining, 750);
  EXPECT_EQ(refused.requested, 800);
  EXPECT_EQ(refused.retry_after_ms, 3'000);  // 50 nanos at 1000 per minute
  EXPECT_EQ(limiter_.Stats().refused_spend, 1u);
  EXPECT_EQ(KeyLevels(key), (std::vector<int64_t>{750, 9'920})) << "a refusal charges nothing";
}

TEST_P(LimiterTest, AFreeModelIsNeverHeldBackBySpend) {
  std::vector<LimitConfig> key = {Spend(1000, kPerDay, /*calendar=*/true)};
  Admission a = Admit(Priced(Scope(key)), Amounts{10, 900});
  ASSERT_EQ(a.outcome, Outcome::kAdmitted);
  Settle(a, Amounts{10, 1'500});  // cost more than reserved: in debt
  EXPECT_EQ(KeyLevels(key), (std::vector<int64_t>{-500}));
  // A priced request is refused even at no cost; a free model's goes through and charges none.
  EXPECT_EQ(Admit(Priced(Scope(key)), Amounts{10, 0}).outcome, Outcome::kRefused);
  Admission free = Admit(Scope(key), Amounts{10, 0});
  EXPECT_EQ(free.outcome, Outcome::kAdmitted);
  EXPECT_FALSE(free.spend.present);
  EXPECT_TRUE(free.reservation.Empty());
  Settle(free, Amounts{10, 0});
  EXPECT_EQ(KeyLevels(key), (std::vector<int64_t>{-500}));
}

TEST_P(LimiterTest, APriceAboveASpendLimitIsTooLargeAndChargesNothing) {
  std::vector<LimitConfig> key = {Spend(1000, kPerMinute), Tokens(50, kPerMinute)};
  Admission a = Admit(Priced(Scope(key)), Amounts{40, 1001});
  EXPECT_EQ(a.outcome, Outcome::kTooLarge);
  EXPECT_EQ(a.refused_kind, LimitKind::kSpend);
  EXPECT_EQ(a.requested, 1001);
  EXPECT_EQ(a.remaining, 1000);
  // Both too large: the token limit is named (the client lowers max_tokens for either).
  Admission both = Admit(Priced(Scope(key)), Amounts{60, 1001});
  EXPECT_EQ(both.refused_kind, LimitKind::kTokens);
  EXPECT_EQ(both.requested, 60);
  EXPECT_EQ(KeyLevels(key), (std::vector<int64_t>{1000, 50}));
}

LimitConfig PerUser(LimitConfig limit) {
  limit.per_user = true;
  return limit;
}

RequestScope ForUser(RequestScope scope, std::string_view user) {
  scope.user = user;
  return scope;
}

TEST_P(LimiterTest, AUserScopedLimitIsABudgetPerEndUser) {
  std::vector<LimitConfig> key = {PerUser(Tokens(100, kPerMinute)), Tokens(1000, kPerMinute)};
  std::vector<LimitConfig> tenant = {PerUser(Requests(2, kPerMinute))};
  Admission alice = Admit(ForUser(Scope(key, tenant), "alice"), 80);
  ASSERT_EQ(alice.outcome, Outcome::kAdmitted);
  EXPECT_EQ(Admit(ForUser(Scope(key, tenant), "bob"), 80).outcome, Outcome::kAdmitted);
  Admission refused = Admit(ForUser(Scope(key, tenant), "alice"), 30);
  EXPECT_EQ(refused.outcome, Outcome::kRefused);
  EXPECT_EQ(refused.refused_limit, "key 'team-a' user 'alice' 100 tokens per 1m");
  EXPECT_EQ(refused.remaining, 20);
  // Naming no user is one more user, the anonymous one: leaving `user` out escapes nothing.
  EXPECT_EQ(Admit(ForUser(Scope(key, tenant), ""), 80).outcome, Outcome::kAdmitted);
  Admission anonymous = Admit(ForUser(Scope(key, tenant), ""), 30);
  EXPECT_EQ(anonymous.refused_limit, "key 'team-a' user '' 100 tokens per 1m");
  // The tenant's per-user request limit: alice's second admission is her last.
  EXPECT_EQ(Admit(ForUser(Scope(key, tenant), "alice"), 10).outcome, Outcome::kAdmitted);
  Admission third = Admit(ForUser(Scope(key, tenant), "alice"), 10);
  EXPECT_EQ(third.refused_limit, "tenant 'acme' user 'alice' 2 requests per 1m");
  // Settlement refunds alice's own budget (and the key's), nobody else's.
  Settle(alice, 50);
  const std::string alice_name = PerUserName("team-a", "alice");
  const std::string bob_name = PerUserName("team-a", "bob");
  std::vector<BucketSpec> specs = {
      {{ScopeKind::kKey, alice_name, "", LimitKind::kTokens, kPerMinute.count() * 1000, false},
       100},
      {{ScopeKind::kKey, bob_name, "", LimitKind::kTokens, kPerMinute.count() * 1000, false}, 100}};
  ReadResult read = RunAwaitable(LimiterStore().Read({"acme", specs, clock_.NowMicros()}));
  ASSERT_EQ(read.states.size(), 2u);
  EXPECT_EQ(read.states[0].level.level, 100 - 50 - 10);
  EXPECT_EQ(read.states[1].level.level, 20);
  // The admin reading of a per-user limit is the anonymous user's budget.
  EXPECT_EQ(KeyLevels(key), (std::vector<int64_t>{20, 1000 - 50 - 10 - 80 - 80}));
  // Bounded: a user idle for a window reads full, and a full budget is dropped (memory: by the
  // scheduled eviction; Redis: its key's TTL).
  if (GetParam() != StoreKind::kRedis) {
    EXPECT_EQ(BucketCount(), 3u + 1u + 3u)
        << "alice, bob, anonymous; the key; the same of the tenant";
    clock_.Advance(kPerMinute);
    EXPECT_EQ(store_.Evict(clock_.NowMicros()), 7u);
    EXPECT_EQ(BucketCount(), 0u);
  }
}

TEST_P(LimiterTest, NoApplicableLimitAdmitsWithoutHeaders) {
  std::vector<LimitConfig> key = {Tokens(10, kPerMinute, false, "other-model")};
  Admission a = Admit(Scope(key), 1'000'000);
  EXPECT_EQ(a.outcome, Outcome::kAdmitted);
  EXPECT_FALSE(a.tokens.present);
  EXPECT_FALSE(a.requests.present);
  EXPECT_TRUE(a.reservation.Empty());
  Settle(a, 5);  // no-op
  EXPECT_EQ(BucketCount(), 0u);
}

TEST_P(LimiterTest, HeadersCountThisReservationAsSpent) {
  std::vector<LimitConfig> key = {Tokens(100, kPerMinute), Requests(600, kPerMinute),
                                  Tokens(2'000'000, kPerDay, true)};
  Admission a = Admit(Scope(key), 10);
  ASSERT_EQ(a.outcome, Outcome::kAdmitted);
  ASSERT_TRUE(a.tokens.present);
  EXPECT_EQ(a.tokens.limit, 100);
  EXPECT_EQ(a.tokens.remaining, 90);
  EXPECT_EQ(a.tokens.reset_ms, 6'000);  // 10 tokens at 100 per minute
  ASSERT_TRUE(a.requests.present);
  EXPECT_EQ(a.requests.limit, 600);
  EXPECT_EQ(a.requests.remaining, 599);
  EXPECT_EQ(a.requests.reset_ms, 100);
  EXPECT_FALSE(a.reservation.Empty());
  EXPECT_EQ(a.reservation.ReservedTokens(), 10);

  // When the daily budget is the tighter one, it is reported, with the time to midnight UTC.
  std::vector<LimitConfig> tight = {Tokens(100, kPerMinute), Tokens(50, kPerDay, true)};
  a = Admit(Scope(tight, kNone, "llama2-7b", "team-b"), 10);
  EXPECT_EQ(a.tokens.limit, 50);
  EXPECT_EQ(a.tokens.remaining, 40);
  EXPECT_EQ(a.tokens.reset_ms, (kMidnight - kT0) / 1000);
  EXPECT_FALSE(a.requests.present);
}

TEST_P(LimiterTest, KeyTenantAndModelLimitsCombine) {
  std::vector<LimitConfig> key = {Tokens(1000, kPerMinute),
                                  Tokens(500, kPerMinute, false, "llama2-13b")};
  std::vector<LimitConfig> tenant = {Tokens(300, kPerMinute)};
  Admission a = Admit(Scope(key, tenant, "llama2-13b"), 100);
  ASSERT_EQ(a.outcome, Outcome::kAdmitted);
  EXPECT_EQ(a.tokens.limit, 300);
  EXPECT_EQ(a.tokens.remaining, 200);
  EXPECT_EQ(KeyLevels(key), (std::vector<int64_t>{900, 400}));
  EXPECT_EQ(TenantLevel(tenant[0]), 200);

  // Another model: the llama2-13b limit does not apply and is not charged.
  a = Admit(Scope(key, tenant, "llama2-7b"), 50);
  ASSERT_EQ(a.outcome, Outcome::kAdmitted);
  EXPECT_EQ(a.tokens.remaining, 150);
  EXPECT_EQ(KeyLevels(key), (std::vector<int64_t>{850, 400}));

  // Settlement corrects every token budget the request was charged.
  Admission b = Admit(Scope(key, tenant, "llama2-13b"), 100);
  ASSERT_EQ(b.outcome, Outcome::kAdmitted);
  Settle(b, 40);
  EXPECT_EQ(KeyLevels(key), (std::vector<int64_t>{810, 360}));
  EXPECT_EQ(TenantLevel(tenant[0]), 110);
}

TEST_P(LimiterTest, ARefusalChargesNoOtherLimit) {
  std::vector<LimitConfig> key = {Tokens(1000, kPerMinute), Requests(2, kPerMinute)};
  std::vector<LimitConfig> tenant = {Tokens(150, kPerMinute)};
  ASSERT_EQ(Admit(Scope(key, tenant), 100).outcome, Outcome::kAdmitted);
  Admission a = Admit(Scope(key, tenant), 100);
  ASSERT_EQ(a.outcome, Outcome::kRefused);
  EXPECT_EQ(a.refused_kind, LimitKind::kTokens);
  EXPECT_EQ(a.refused_limit, "tenant 'acme' 150 tokens per 1m");
  EXPECT_EQ(a.refused_scope, ScopeKind::kTenant);
  EXPECT_FALSE(a.refused_model_specific);
  EXPECT_EQ(a.remaining, 50);
  EXPECT_EQ(a.requested, 100);
  EXPECT_EQ(a.retry_after_ms, 20'000);  // 50 missing tokens at 150 per minute
  EXPECT_TRUE(a.reservation.Empty());
  // Headers show the budgets as they are (nothing was charged).
  EXPECT_EQ(a.tokens.limit, 150);
  EXPECT_EQ(a.tokens.remaining, 50);
  EXPECT_EQ(a.tokens.reset_ms, 40'000);
  EXPECT_EQ(a.requests.limit, 2);
  EXPECT_EQ(a.requests.remaining, 1);
  EXPECT_EQ(a.requests.reset_ms, 30'000);
  EXPECT_EQ(KeyLevels(key), (std::vector<int64_t>{900, 1}));
  EXPECT_EQ(TenantLevel(tenant[0]), 50);
}

// Records what the limiter reports of each budget.
struct RecordingObserver final : BudgetObserver {
  void Observe(const BucketSpec& budget, const BucketLevel& level) override {
    seen.push_back({budget.ref.scope, std::string(budget.ref.scope_name), budget.ref.kind,
                    budget.capacity, level.level});
  }
  struct Seen {
    ScopeKind scope;
    std::string owner;
    LimitKind kind;
    int64_t capacity, level;
    bool operator==(const Seen&) const = default;
  };
  std::vector<Seen> seen;
};

TEST_P(LimiterTest, TheObserverSeesEveryTokenAndRequestBudgetOfEachDecision) {
  RecordingObserver observer;
  limiter_.SetBudgetObserver(&observer);
  std::vector<LimitConfig> key = {Tokens(1000, kPerMinute), Requests(2, kPerMinute), Concurrent(4)};
  std::vector<LimitConfig> tenant = {Tokens(150, kPerMinute)};
  using Seen = RecordingObserver::Seen;
  Admission a = Admit(Scope(key, tenant), 100);
  ASSERT_EQ(a.outcome, Outcome::kAdmitted);
  // After the charge; no concurrency budget.
  EXPECT_EQ(observer.seen,
            (std::vector<Seen>{{ScopeKind::kKey, "team-a", LimitKind::kTokens, 1000, 900},
                               {ScopeKind::kKey, "team-a", LimitKind::kRequests, 2, 1},
                               {ScopeKind::kTenant, "acme", LimitKind::kTokens, 150, 50}}));
  observer.seen.clear();
  ASSERT_EQ(Admit(Scope(key, tenant), 100).outcome, Outcome::kRefused);
  // As they stand: nothing charged.
  EXPECT_EQ(observer.seen,
            (std::vector<Seen>{{ScopeKind::kKey, "team-a", LimitKind::kTokens, 1000, 900},
                               {ScopeKind::kKey, "team-a", LimitKind::kRequests, 2, 1},
                               {ScopeKind::kTenant, "acme", LimitKind::kTokens, 150, 50}}));
  Settle(a, 100);
  limiter_.SetBudgetObserver(nullptr);
}

TEST_P(LimiterTest, RetryAfterIsExact) {
  std::vector<LimitConfig> key = {Tokens(60, kPerMinute)};  // one token per second
  ASSERT_EQ(Admit(Scope(key), 60).outcome, Outcome::kAdmitted);
  Admission a = Admit(Scope(key), 5);
  ASSERT_EQ(a.outcome, Outcome::kRefused);
  EXPECT_EQ(a.retry_after_ms, 5'000);
  EXPECT_EQ(a.remaining, 0);
  EXPECT_EQ(a.requested, 5);
  clock_.Advance(milliseconds(4'999));
  a = Admit(Scope(key), 5);
  ASSERT_EQ(a.outcome, Outcome::kRefused);
  EXPECT_EQ(a.remaining, 4);
  EXPECT_EQ(a.retry_after_ms, 1);
  clock_.Advance(milliseconds(1));
  a = Admit(Scope(key), 5);
  ASSERT_EQ(a.outcome, Outcome::kAdmitted);
  EXPECT_EQ(a.tokens.remaining, 0);
  EXPECT_EQ(a.tokens.reset_ms, 60'000);
}

TEST_P(LimiterTest, SeveralRefusalsReportTheLongestWait) {
  std::vector<LimitConfig> key = {Tokens(60, kPerMinute), Requests(1, kPerMinute)};
  ASSERT_EQ(Admit(Scope(key), 60).outcome, Outcome::kAdmitted);
  Admission a = Admit(Scope(key), 1);  // tokens: 1 s; requests: 60 s
  ASSERT_EQ(a.outcome, Outcome::kRefused);
  EXPECT_EQ(a.refused_kind, LimitKind::kRequests);
  EXPECT_EQ(a.refused_limit, "key 'team-a' 1 requests per 1m");
  EXPECT_EQ(a.retry_after_ms, 60'000);
  EXPECT_EQ(a.requested, 1);

  std::vector<LimitConfig> other = {Tokens(60, kPerMinute), Requests(10, kPerMinute)};
  RequestScope scope = Scope(other, kNone, "llama2-7b", "team-b");
  ASSERT_EQ(Admit(scope, 60).outcome, Outcome::kAdmitted);
  for (int i = 0; i < 9; ++i) ASSERT_EQ(Admit(scope, 0).outcome, Outcome::kAdmitted);
  a = Admit(scope, 30);  // tokens: 30 s; requests: 6 s
  ASSERT_EQ(a.outcome, Outcome::kRefused);
  EXPECT_EQ(a.refused_kind, LimitKind::kTokens);
  EXPECT_EQ(a.retry_after_ms, 30'000);
}

TEST_P(LimiterTest, TooLargeChargesNothing) {
  std::vector<LimitConfig> key = {Tokens(1000, kPerMinute), Requests(10, kPerMinute),
                                  Concurrent(1)};
  std::vector<LimitConfig> tenant = {Tokens(500, kPerMinute)};
  Admission a = Admit(Scope(key, tenant), 600);
  ASSERT_EQ(a.outcome, Outcome::kTooLarge);
  EXPECT_EQ(a.refused_kind, LimitKind::kTokens);
  EXPECT_EQ(a.refused_limit, "tenant 'acme' 500 tokens per 1m");
  EXPECT_EQ(a.remaining, 500);
  EXPECT_EQ(a.requested, 600);
  EXPECT_EQ(a.retry_after_ms, 0);
  EXPECT_TRUE(a.reservation.Empty());
  EXPECT_EQ(a.tokens.limit, 500);
  EXPECT_EQ(a.tokens.remaining, 500);
  EXPECT_EQ(a.tokens.reset_ms, 0);
  EXPECT_EQ(a.requests.limit, 10);
  EXPECT_EQ(a.requests.remaining, 10);
  EXPECT_EQ(KeyLevels(key), (std::vector<int64_t>{1000, 10, 1}));
  EXPECT_EQ(TenantLevel(tenant[0]), 500);
  EXPECT_EQ(limiter_.Stats().too_large, 1u);
  EXPECT_EQ(Admit(Scope(key, tenant), 500).outcome, Outcome::kAdmitted);
}

TEST_P(LimiterTest, DebtMakesLaterRequestsWaitThenRecovers) {
  std::vector<LimitConfig> key = {Tokens(100, kPerMinute)};  // 0.6 s per token
  Admission a = Admit(Scope(key), 10);
  ASSERT_EQ(a.outcome, Outcome::kAdmitted);
  Settle(a, 150);
  EXPECT_EQ(KeyLevels(key), (std::vector<int64_t>{-50}));
  Admission b = Admit(Scope(key), 0);  // even a zero reservation waits for the debt
  ASSERT_EQ(b.outcome, Outcome::kRefused);
  EXPECT_EQ(b.remaining, 0);
  EXPECT_EQ(b.retry_after_ms, 30'000);
  EXPECT_EQ(b.tokens.remaining, 0);
  EXPECT_EQ(b.tokens.reset_ms, 90'000);
  clock_.Advance(milliseconds(30'000));
  EXPECT_EQ(Admit(Scope(key), 0).outcome, Outcome::kAdmitted);
  Admission c = Admit(Scope(key), 1);
  ASSERT_EQ(c.outcome, Outcome::kRefused);
  EXPECT_EQ(c.retry_after_ms, 600);
}

TEST_P(LimiterTest, RefundsNeverLiftABudgetAboveCapacity) {
  std::vector<LimitConfig> key = {Tokens(100, kPerMinute)};
  Admission a = Admit(Scope(key), 50);
  ASSERT_EQ(a.outcome, Outcome::kAdmitted);
  clock_.Advance(milliseconds(15'000));  // refills 25
  Settle(a, 0);
  EXPECT_EQ(KeyLevels(key), (std::vector<int64_t>{100}));
}

TEST_P(LimiterTest, CalendarBudgetResetsAtMidnightUtc) {
  clock_.Set(kMidnight - 500'000);  // 23:59:59.5 UTC
  std::vector<LimitConfig> key = {Tokens(1000, kPerDay, true)};
  Admission a = Admit(Scope(key), 1000);
  ASSERT_EQ(a.outcome, Outcome::kAdmitted);
  EXPECT_EQ(a.tokens.remaining, 0);
  EXPECT_EQ(a.tokens.reset_ms, 500);
  Admission b = Admit(Scope(key), 1);
  ASSERT_EQ(b.outcome, Outcome::kRefused);
  EXPECT_EQ(b.refused_limit, "key 'team-a' 1000 tokens per 1d (calendar)");
  EXPECT_EQ(b.retry_after_ms, 500);
  clock_.Advance(milliseconds(499));
  EXPECT_EQ(Admit(Scope(key), 1).retry_after_ms, 1);
  clock_.Advance(milliseconds(1));  // 00:00:00.000
  Admission c = Admit(Scope(key), 1);
  ASSERT_EQ(c.outcome, Outcome::kAdmitted);
  EXPECT_EQ(c.tokens.remaining, 999);
  EXPECT_EQ(c.tokens.reset_ms, 86'400'000);
  // Yesterday's reservation settles after midnight: its refund does not inflate today's budget.
  Settle(a, 100);
  EXPECT_EQ(KeyLevels(key), (std::vector<int64_t>{999}));
}

TEST_P(LimiterTest, ConcurrencySlotsAreTakenReleasedAndExpire) {
  std::vector<LimitConfig> key = {Tokens(1000, kPerMinute), Concurrent(2)};
  RequestScope scope = Scope(key);
  scope.deadline = milliseconds(10 * 60 * 1000);  // the model's request_timeout
  Admission a = Admit(scope, 10);
  Admission b = Admit(scope, 10);
  ASSERT_EQ(a.outcome, Outcome::kAdmitted);
  ASSERT_EQ(b.outcome, Outcome::kAdmitted);
  Admission c = Admit(scope, 10);
  ASSERT_EQ(c.outcome, Outcome::kRefused);
  EXPECT_EQ(c.refused_kind, LimitKind::kConcurrent);
  EXPECT_EQ(c.refused_limit, "key 'team-a' 2 concurrent requests");
  EXPECT_EQ(c.remaining, 0);
  EXPECT_EQ(c.requested, 1);
  EXPECT_EQ(c.retry_after_ms, 1'000);
  EXPECT_EQ(KeyLevels(key), (std::vector<int64_t>{980, 0}));

  Settle(a, 10);
  EXPECT_EQ(KeyLevels(key), (std::vector<int64_t>{980, 1}));
  Admission d = Admit(scope, 10);
  ASSERT_EQ(d.outcome, Outcome::kAdmitted);
  EXPECT_EQ(Admit(scope, 10).outcome, Outcome::kRefused);

  // b and d are never settled (a crashed instance): their slots lapse the lease TTL (1 m) after
  // their requests' deadline (10 m), never while the request may still run.
  clock_.Advance(milliseconds(11 * 60 * 1000 - 1));
  EXPECT_EQ(Admit(scope, 10).outcome, Outcome::kRefused);
  clock_.Advance(milliseconds(1));
  EXPECT_EQ(Admit(scope, 10).outcome, Outcome::kAdmitted);
  LimiterStats stats = limiter_.Stats();
  EXPECT_EQ(stats.refused_concurrency, 3u);
}

TEST_P(LimiterTest, OptionsSetLeaseTtlAndConcurrencyRetry) {
  Limiter limiter(LimiterStore(), clock_, {milliseconds(5'000), milliseconds(250)});
  std::vector<LimitConfig> key = {Concurrent(1)};
  RequestScope scope = Scope(key, kNone, "llama2-7b", "team-z");
  ASSERT_EQ(RunAwaitable(limiter.Admit(scope, {1})).outcome, Outcome::kAdmitted);
  Admission refused = RunAwaitable(limiter.Admit(scope, {1}));
  EXPECT_EQ(refused.retry_after_ms, 250);
  clock_.Advance(milliseconds(5'000));
  EXPECT_EQ(RunAwaitable(limiter.Admit(scope, {1})).outcome, Outcome::kAdmitted);
}

// A background settlement is in the store's queue before SettleInBackground returns: an
// admission made right after it on the same thread already sees its refund and its released
// concurrency slot (both of which it needs here).
TEST_P(LimiterTest, BackgroundSettlementComesBeforeTheNextAdmission) {
  std::vector<LimitConfig> key = {Tokens(100, kPerMinute), Concurrent(1)};
  const RequestScope scope = Scope(key);
  Admission first = Admit(scope, 60);
  ASSERT_EQ(first.outcome, Outcome::kAdmitted);
  boost::asio::io_context io;
  Admission second;
  size_t pending_after_call = 99;
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        limiter_.SettleInBackground(co_await boost::asio::this_coro::executor, first.reservation,
                                    {10}, SettlementSource::kUsage);
        pending_after_call = limiter_.PendingSettlements();
        second = co_await limiter_.Admit(scope, {80});
      },
      boost::asio::detached);
  io.run();
  EXPECT_EQ(pending_after_call, GetParam() == StoreKind::kRedis ? 1u : 0u);
  EXPECT_EQ(limiter_.PendingSettlements(), 0u);
  ASSERT_EQ(second.outcome, Outcome::kAdmitted);
  EXPECT_EQ(second.tokens.remaining, 10);  // 100 - 60 + 50 refunded - 80
  EXPECT_EQ(limiter_.Stats().settled, 1u);
}

TEST_P(LimiterTest, ModelLimitIsNamedWhenItRefuses) {
  std::vector<LimitConfig> key = {Tokens(100'000, kPerMinute),
                                  Tokens(20'000, kPerMinute, false, "llama2-13b")};
  ASSERT_EQ(Admit(Scope(key, kNone, "llama2-13b"), 20'000).outcome, Outcome::kAdmitted);
  Admission a = Admit(Scope(key, kNone, "llama2-13b"), 1'000);
  ASSERT_EQ(a.outcome, Outcome::kRefused);
  EXPECT_EQ(a.refused_limit, "key 'team-a' model 'llama2-13b' 20000 tokens per 1m");
  EXPECT_EQ(a.refused_scope, ScopeKind::kKey);
  EXPECT_TRUE(a.refused_model_specific);
  EXPECT_EQ(a.retry_after_ms, 3'000);
  EXPECT_EQ(Admit(Scope(key, kNone, "llama2-7b"), 1'000).outcome, Outcome::kAdmitted);
}

TEST_P(LimiterTest, TenantRequestsCalendarLimitText) {
  std::vector<LimitConfig> tenant = {Requests(1, kPerMinute, true)};
  ASSERT_EQ(Admit(Scope(kNone, tenant), 5).outcome, Outcome::kAdmitted);
  Admission a = Admit(Scope(kNone, tenant), 5);
  ASSERT_EQ(a.outcome, Outcome::kRefused);
  EXPECT_EQ(a.refused_limit, "tenant 'acme' 1 requests per 1m (calendar)");
  EXPECT_EQ(a.retry_after_ms, 40'000);  // kT0 is 20 s past the minute
}

TEST_P(LimiterTest, TenantLimitsNeedATenant) {
  std::vector<LimitConfig> tenant = {Tokens(1, kPerMinute)};
  Admission a = Admit(Scope(kNone, tenant, "llama2-7b", "team-a", ""), 100);
  EXPECT_EQ(a.outcome, Outcome::kAdmitted);
  EXPECT_FALSE(a.tokens.present);
}

// A limit's value changed by a reload or the admin API keeps what was used in its bucket.
TEST_P(LimiterTest, ChangedCapacityKeepsWhatWasUsed) {
  std::vector<LimitConfig> v1 = {Tokens(100, kPerMinute)};
  ASSERT_EQ(Admit(Scope(v1), 30).outcome, Outcome::kAdmitted);
  std::vector<LimitConfig> v2 = {Tokens(50, kPerMinute)};
  Admission a = Admit(Scope(v2), 0);
  EXPECT_EQ(a.tokens.limit, 50);
  EXPECT_EQ(a.tokens.remaining, 20);
  std::vector<LimitConfig> v3 = {Tokens(200, kPerMinute)};
  a = Admit(Scope(v3), 0);
  EXPECT_EQ(a.tokens.limit, 200);
  EXPECT_EQ(a.tokens.remaining, 170);
  // The example: a daily tenant quota of 100000 with 43 used, lowered to 100.
  std::vector<LimitConfig> daily = {Tokens(100'000, kPerDay, true)};
  ASSERT_EQ(Admit(Scope(kNone, daily), 43).outcome, Outcome::kAdmitted);
  std::vector<LimitConfig> lowered = {Tokens(100, kPerDay, true)};
  a = Admit(Scope(kNone, lowered), 28);
  ASSERT_EQ(a.outcome, Outcome::kAdmitted);
  EXPECT_EQ(a.tokens.remaining, 29);
  EXPECT_EQ(Admit(Scope(kNone, lowered), 30).outcome, Outcome::kRefused);
}

// A settlement that costs more than the day's budget had left is not forgiven at midnight.
TEST_P(LimiterTest, CalendarDebtCarriesIntoTheNextWindow) {
  std::vector<LimitConfig> key = {Tokens(1000, kPerDay, true)};
  clock_.Set(19'676LL * 86'400'000'000 - 10'000'000);  // 10 s before midnight UTC
  Admission a = Admit(Scope(key), 100);
  ASSERT_EQ(a.outcome, Outcome::kAdmitted);
  Settle(a, 1300);  // 1200 more than reserved: -300
  clock_.Advance(std::chrono::seconds(20));
  Admission b = Admit(Scope(key), 700);
  ASSERT_EQ(b.outcome, Outcome::kAdmitted);
  EXPECT_EQ(b.tokens.remaining, 0);  // 1000 - 300 carried - 700
  Admission c = Admit(Scope(key), 1);
  ASSERT_EQ(c.outcome, Outcome::kRefused);
  EXPECT_EQ(c.retry_after_ms, 86'400'000 - 10'000);  // the next midnight
}

TEST_P(LimiterTest, DuplicatedLimitsChargeOneBucketWithTheSmallerCapacity) {
  std::vector<LimitConfig> key = {Tokens(100, kPerMinute), Tokens(80, kPerMinute)};
  Admission a = Admit(Scope(key), 10);
  ASSERT_EQ(a.outcome, Outcome::kAdmitted);
  EXPECT_EQ(a.tokens.limit, 80);
  EXPECT_EQ(a.tokens.remaining, 70);
  EXPECT_EQ(BucketCount(), 1u);
}

TEST_P(LimiterTest, ReadAndResetKeyLimits) {
  std::vector<LimitConfig> key = {Tokens(100, kPerMinute), Requests(10, kPerMinute), Concurrent(3),
                                  Tokens(1000, kPerDay, true, "llama2-13b")};
  ASSERT_EQ(Admit(Scope(key, kNone, "llama2-13b"), 40).outcome, Outcome::kAdmitted);
  LimitReadings r = RunAwaitable(limiter_.ReadKeyLimits("team-a", "acme", key));
  ASSERT_TRUE(r.ok);
  ASSERT_EQ(r.limits.size(), 4u);
  EXPECT_EQ(r.limits[0].limit, key[0]);
  EXPECT_EQ(r.limits[0].remaining, 60);
  EXPECT_EQ(r.limits[0].reset_ms, 24'000);
  EXPECT_EQ(r.limits[1].remaining, 9);
  EXPECT_EQ(r.limits[2].in_use, 1);
  EXPECT_EQ(r.limits[2].remaining, 2);
  EXPECT_EQ(r.limits[3].remaining, 960);
  EXPECT_EQ(r.limits[3].reset_ms, (kMidnight - kT0) / 1000);

  EXPECT_TRUE(RunAwaitable(limiter_.ResetKey("team-a", "acme", key)));
  EXPECT_EQ(KeyLevels(key), (std::vector<int64_t>{100, 10, 2, 1000}));
}

// The tenant's own budgets, shared by its keys: read and refilled by the tenant's name.
TEST_P(LimiterTest, ReadAndResetTenantLimits) {
  std::vector<LimitConfig> tenant = {Tokens(500, kPerMinute), Concurrent(4)};
  ASSERT_EQ(Admit(Scope(kNone, tenant), 40).outcome, Outcome::kAdmitted);
  ASSERT_EQ(Admit(Scope(kNone, tenant, "llama2-7b", "team-b"), 60).outcome, Outcome::kAdmitted);
  LimitReadings r = RunAwaitable(limiter_.ReadTenantLimits("acme", tenant));
  ASSERT_TRUE(r.ok);
  ASSERT_EQ(r.limits.size(), 2u);
  EXPECT_EQ(r.limits[0].remaining, 400);
  EXPECT_EQ(r.limits[1].in_use, 2);
  EXPECT_EQ(RunAwaitable(limiter_.ReadKeyLimits("acme", "acme", tenant)).limits[0].remaining, 500)
      << "a key named like the tenant has budgets of its own";

  EXPECT_TRUE(RunAwaitable(limiter_.ResetTenant("acme", tenant)));
  r = RunAwaitable(limiter_.ReadTenantLimits("acme", tenant));
  EXPECT_EQ(r.limits[0].remaining, 500);
  EXPECT_EQ(r.limits[1].in_use, 2) << "slots in use stay";
}

class FailingStore final : public Store {
 public:
  asio::awaitable<AdmitResult> Admit(const AdmitRequest&) override {
    AdmitResult r;
    r.status = StoreStatus::kError;
    co_return r;
  }
  void SettleDetached(const SettleRequest&, const asio::any_io_executor&,
                      SettleCompletion& done) override {
    done.Settled(StoreStatus::kError);
  }
  asio::awaitable<ReadResult> Read(const BucketsRequest&) override {
    ReadResult r;
    r.status = StoreStatus::kError;
    co_return r;
  }
  asio::awaitable<StoreStatus> Reset(const BucketsRequest&) override {
    co_return StoreStatus::kError;
  }
};

TEST(LimiterStoreErrorTest, FailuresAreOutcomesAndCounted) {
  FakeClock clock(kT0);
  FailingStore store;
  Limiter limiter(store, clock);
  std::vector<LimitConfig> key = {Tokens(100, kPerMinute)};
  Admission a = RunAwaitable(limiter.Admit(Scope(key), {10}));
  EXPECT_EQ(a.outcome, Outcome::kStoreError);
  // The store may have charged it: the reservation is kept, to be settled like an admitted one.
  EXPECT_FALSE(a.reservation.Empty());
  EXPECT_TRUE(a.reservation.OutcomeUnknown());
  EXPECT_FALSE(a.tokens.present);
  Admission big = RunAwaitable(limiter.Admit(Scope(key), {1000}));
  EXPECT_EQ(big.outcome, Outcome::kTooLarge);  // known without the store
  EXPECT_FALSE(big.tokens.present);
  EXPECT_FALSE(RunAwaitable(limiter.ReadKeyLimits("team-a", "", key)).ok);
  EXPECT_FALSE(RunAwaitable(limiter.ResetKey("team-a", "", key)));
  LimiterStats s = limiter.Stats();
  EXPECT_EQ(s.store_errors_admit, 1u);
  EXPECT_EQ(s.store_errors_read, 3u);
  EXPECT_EQ(s.unsettled, 1u);  // `a`, until it is settled
}

// Fails the first `failures` settlements, then passes them on to `inner`.
class FlakySettleStore final : public Store {
 public:
  FlakySettleStore(Store& inner, int failures) : inner_(inner), failures_(failures) {}
  asio::awaitable<AdmitResult> Admit(const AdmitRequest& r) override {
    co_return co_await inner_.Admit(r);
  }
  void SettleDetached(const SettleRequest& r, const asio::any_io_executor& executor,
                      SettleCompletion& done) override {
    ++calls;
    if (failures_-- > 0) return done.Settled(StoreStatus::kError);
    inner_.SettleDetached(r, executor, done);
  }
  asio::awaitable<ReadResult> Read(const BucketsRequest& r) override {
    co_return co_await inner_.Read(r);
  }
  asio::awaitable<StoreStatus> Reset(const BucketsRequest& r) override {
    co_return co_await inner_.Reset(r);
  }
  int calls = 0;

 private:
  Store& inner_;
  int failures_;
};

LimiterOptions FastRetries() {
  LimiterOptions o;
  o.settle_retry_min = milliseconds(1);
  o.settle_retry_max = milliseconds(4);
  return o;
}

TEST(LimiterSettleTest, AFailedSettlementIsSentAgainUntilItLands) {
  FakeClock clock(kT0);
  MemoryStore memory;
  FlakySettleStore flaky(memory, 3);
  Limiter limiter(flaky, clock, FastRetries());
  std::vector<LimitConfig> key = {Tokens(100, kPerMinute), Concurrent(1)};
  Admission a = RunAwaitable(limiter.Admit(Scope(key), {60}));
  ASSERT_EQ(a.outcome, Outcome::kAdmitted);
  SettleAndWait(limiter, a.reservation, {20});
  EXPECT_EQ(flaky.calls, 4);
  LimiterStats s = limiter.Stats();
  EXPECT_EQ(s.store_errors_settle, 3u);
  EXPECT_EQ(s.by_usage.retried, 1u);
  EXPECT_EQ(s.by_usage.applied, 0u);
  EXPECT_EQ(s.unsettled, 0u);
  // Applied once: 100 - 20, and the slot is free again.
  Admission b = RunAwaitable(limiter.Admit(Scope(key), {80}));
  EXPECT_EQ(b.outcome, Outcome::kAdmitted);
  EXPECT_EQ(b.tokens.remaining, 0);
}

TEST(LimiterSettleTest, ASettlementIsGivenUpWhenItsLeaseHasLapsed) {
  FakeClock clock(kT0);
  FailingStore failing;
  LimiterOptions options = FastRetries();
  options.lease_ttl = milliseconds(1000);
  Limiter limiter(failing, clock, options);
  MemoryStore memory;
  Limiter working(memory, clock, options);
  std::vector<LimitConfig> key = {Tokens(100, kPerMinute)};
  Admission a = RunAwaitable(working.Admit(Scope(key), {10}));
  Reservation r = a.reservation;
  // Sent, failed, and sent again while the clock stands; given up once it passes the lease.
  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  limiter.SettleInBackground(io.get_executor(), r, {20}, SettlementSource::kEstimate);
  for (int i = 0; i < 10'000 && limiter.Stats().store_errors_settle < 3; ++i) {
    io.run_for(milliseconds(1));
  }
  EXPECT_EQ(limiter.PendingSettlements(), 1u);
  clock.Advance(std::chrono::seconds(2));
  for (int i = 0; i < 10'000 && limiter.PendingSettlements() > 0; ++i) io.run_for(milliseconds(1));
  EXPECT_EQ(limiter.PendingSettlements(), 0u);
  EXPECT_EQ(limiter.Stats().by_estimate.lost, 1u);
}

TEST(LimiterSettleTest, AbandonGivesUpWhatIsStillRetrying) {
  FakeClock clock(kT0);
  FailingStore failing;
  Limiter limiter(failing, clock, FastRetries());
  MemoryStore memory;
  Limiter working(memory, clock);
  std::vector<LimitConfig> key = {Tokens(100, kPerMinute)};
  Admission a = RunAwaitable(working.Admit(Scope(key), {10}));
  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  limiter.SettleInBackground(io.get_executor(), a.reservation, {20}, SettlementSource::kUsage);
  EXPECT_EQ(limiter.Abandon(), 1u);
  for (int i = 0; i < 10'000 && limiter.PendingSettlements() > 0; ++i) io.run_for(milliseconds(1));
  EXPECT_EQ(limiter.PendingSettlements(), 0u);
  EXPECT_EQ(limiter.Stats().by_usage.lost, 1u);
}

// An admission whose store reply was lost is settled like an admitted one: a store that did
// apply it gets its charge replaced by the real cost; the concurrency slot comes back.
TEST_P(LimiterTest, AnAdmissionWithAnUnknownOutcomeIsSettled) {
  std::vector<LimitConfig> key = {Tokens(100, kPerMinute), Concurrent(1)};
  Admission a = Admit(Scope(key), 60);
  ASSERT_EQ(a.outcome, Outcome::kAdmitted);
  EXPECT_FALSE(a.reservation.OutcomeUnknown());
  EXPECT_EQ(limiter_.Stats().unsettled, 1u);
  Settle(a, 25);
  EXPECT_EQ(limiter_.Stats().unsettled, 0u);
  EXPECT_EQ(KeyLevels(key), (std::vector<int64_t>{75, 1}));
}

// Runs `body` on `threads` threads at once, each on its own io_context, like I/O threads.
template <typename Body>
void OnThreads(int threads, Body body) {
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&body, t] {
      boost::asio::io_context io;
      boost::asio::co_spawn(io, body(t), boost::asio::detached);
      io.run();
    });
  }
  for (std::thread& thread : pool) thread.join();
}

TEST_P(LimiterTest, ManyThreadsNeverOverAdmit) {
  std::vector<LimitConfig> key = {Tokens(1000, kPerMinute), Requests(100'000, kPerMinute)};
  std::atomic<int64_t> admitted{0}, refused{0};
  OnThreads(8, [&](int) -> asio::awaitable<void> {
    for (int i = 0; i < 10'000; ++i) {
      Admission a = co_await limiter_.Admit(Scope(key), {1});
      (a.outcome == Outcome::kAdmitted ? admitted : refused)++;
    }
  });
  EXPECT_EQ(admitted.load(), 1000);
  EXPECT_EQ(refused.load(), 79'000);
  EXPECT_EQ(KeyLevels(key), (std::vector<int64_t>{0, 99'000}));
  LimiterStats s = limiter_.Stats();
  EXPECT_EQ(s.admitted, 1000u);
  EXPECT_EQ(s.refused_tokens, 79'000u);
}

TEST_P(LimiterTest, ManyThreadsShareATenantBudgetExactly) {
  std::vector<LimitConfig> key = {Tokens(600, kPerMinute)};
  std::vector<LimitConfig> tenant = {Tokens(1000, kPerMinute)};
  std::atomic<int64_t> admitted[2] = {0, 0};
  OnThreads(8, [&](int t) -> asio::awaitable<void> {
    const char* name = t % 2 == 0 ? "team-a" : "team-b";
    for (int i = 0; i < 2'000; ++i) {
      Admission a = co_await limiter_.Admit(Scope(key, tenant, "llama2-7b", name), {1});
      if (a.outcome == Outcome::kAdmitted) admitted[t % 2]++;
    }
  });
  EXPECT_EQ(admitted[0] + admitted[1], 1000);
  EXPECT_LE(admitted[0].load(), 600);
  EXPECT_LE(admitted[1].load(), 600);
  EXPECT_EQ(TenantLevel(tenant[0]), 0);
  EXPECT_EQ(KeyLevels(key)[0], 600 - admitted[0]);
}

// Each admitted request holds its slot across a suspension point (a yield to the other
// requests of its thread) while other threads admit too, so admissions are judged while slots
// are held: a fourth holder would show as a peak above 3. The slot is released only after the
// count drops (the settlement lands later), so the count never exceeds the slots held.
TEST_P(LimiterTest, ManyThreadsNeverExceedConcurrencySlots) {
  std::vector<LimitConfig> key = {Concurrent(3), Tokens(1'000'000'000, kPerMinute)};
  std::atomic<int> in_flight{0}, peak{0};
  std::atomic<int64_t> admitted{0};
  auto request_loop = [&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    for (int i = 0; i < 1'000; ++i) {
      Admission a = co_await limiter_.Admit(Scope(key), {10});
      if (a.outcome != Outcome::kAdmitted) {
        co_await asio::post(executor, asio::use_awaitable);  // let the holders finish
        continue;
      }
      int now = ++in_flight;
      int seen = peak.load();
      while (now > seen && !peak.compare_exchange_weak(seen, now)) {
      }
      co_await asio::post(executor, asio::use_awaitable);  // the others admit meanwhile
      --in_flight;
      admitted++;
      limiter_.SettleInBackground(executor, std::move(a.reservation), {7},
                                  SettlementSource::kUsage);
    }
  };
  OnThreads(8, [&](int) -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    for (int i = 0; i < 3; ++i) asio::co_spawn(executor, request_loop(), asio::detached);
    co_await request_loop();
  });
  for (int i = 0; i < 10'000 && limiter_.PendingSettlements() > 0; ++i) {
    std::this_thread::sleep_for(milliseconds(1));  // bounded wait for the last confirmations
  }
  EXPECT_LE(peak.load(), 3);
  EXPECT_GT(admitted.load(), 0);
  EXPECT_EQ(KeyLevels(key), (std::vector<int64_t>{3, 1'000'000'000 - 7 * admitted.load()}));
}

TEST(DescribeLimitTest, Texts) {
  EXPECT_EQ(
      DescribeLimit(ScopeKind::kKey, "team-a", Tokens(20000, kPerMinute, false, "llama2-13b")),
      "key 'team-a' model 'llama2-13b' 20000 tokens per 1m");
  EXPECT_EQ(DescribeLimit(ScopeKind::kTenant, "acme", Requests(600, kPerMinute, true)),
            "tenant 'acme' 600 requests per 1m (calendar)");
  EXPECT_EQ(DescribeLimit(ScopeKind::kKey, "team-a", Concurrent(16)),
            "key 'team-a' 16 concurrent requests");
}

TEST(BucketRefTest, IdsAreDistinctAndEscaped) {
  BucketRef a{ScopeKind::kKey, "team-a", "", LimitKind::kTokens, 60'000'000, false};
  BucketRef b = a;
  b.scope = ScopeKind::kTenant;
  BucketRef c = a;
  c.model = "llama2-13b";
  BucketRef d{ScopeKind::kKey, "x|{y}%", "", LimitKind::kRequests, 1'000'000, true};
  EXPECT_EQ(a.Id(), "k:team-a|tokens|60000000|r|");
  EXPECT_EQ(b.Id(), "t:team-a|tokens|60000000|r|");
  EXPECT_EQ(c.Id(), "k:team-a|tokens|60000000|r|llama2-13b");
  EXPECT_EQ(d.Id(), "k:x%7C%7By%7D%25|requests|1000000|c|");
}

}  // namespace
}  // namespace trl
