#include "app/budget_gauges.h"

#include <gtest/gtest.h>

#include <chrono>

#include "fakes/fake_clock.h"
#include "fakes/metric_value.h"

namespace trl {
namespace {

using std::chrono::seconds;

constexpr int64_t kMinuteMicros = 60'000'000;

BucketSpec Budget(ScopeKind scope, std::string_view owner, LimitKind kind, int64_t capacity,
                  std::string_view model = "") {
  return {{scope, owner, model, kind, kMinuteMicros, false}, capacity};
}

BucketLevel Level(int64_t level, int64_t now) { return {level, 0, now, 60}; }

constexpr const char* kKeyTokens =
    R"(scope="key",name="team-a",model="",kind="tokens",period="1m",calendar="false")";

std::string Series(std::string_view name, std::string_view labels) {
  return std::string(name) + "{" + std::string(labels) + "}";
}

TEST(BudgetGaugesTest, ShowsTheLastLevelRefilledToNowAndTheCapacity) {
  MetricsRegistry metrics;
  FakeClock clock;
  BudgetGauges gauges(metrics, clock);
  gauges.Observe(Budget(ScopeKind::kKey, "team-a", LimitKind::kTokens, 60),
                 Level(12, clock.NowMicros()));
  EXPECT_EQ(MetricValue(metrics, Series("trl_budget_remaining", kKeyTokens)), 12);
  EXPECT_EQ(MetricValue(metrics, Series("trl_budget_limit", kKeyTokens)), 60);
  clock.Advance(seconds(10));  // one token per second comes back
  EXPECT_EQ(MetricValue(metrics, Series("trl_budget_remaining", kKeyTokens)), 22);
  // A later judgement replaces the level; debt shows as 0 left.
  gauges.Observe(Budget(ScopeKind::kKey, "team-a", LimitKind::kTokens, 60),
                 Level(-5, clock.NowMicros()));
  EXPECT_EQ(MetricValue(metrics, Series("trl_budget_remaining", kKeyTokens)), 0);
  clock.Advance(seconds(7));
  EXPECT_EQ(MetricValue(metrics, Series("trl_budget_remaining", kKeyTokens)), 2);
}

TEST(BudgetGaugesTest, EachBudgetIsASeriesAndNamesAreEscaped) {
  MetricsRegistry metrics;
  FakeClock clock;
  BudgetGauges gauges(metrics, clock);
  const int64_t now = clock.NowMicros();
  gauges.Observe(Budget(ScopeKind::kKey, "team-a", LimitKind::kTokens, 60), Level(1, now));
  gauges.Observe(Budget(ScopeKind::kKey, "team-a", LimitKind::kRequests, 60), Level(2, now));
  gauges.Observe(Budget(ScopeKind::kKey, "team-a", LimitKind::kTokens, 60, "m\"x"), Level(3, now));
  gauges.Observe(Budget(ScopeKind::kTenant, "team-a", LimitKind::kTokens, 60), Level(4, now));
  EXPECT_EQ(MetricValue(metrics, Series("trl_budget_remaining", kKeyTokens)), 1);
  EXPECT_EQ(
      MetricValue(
          metrics,
          R"(trl_budget_remaining{scope="key",name="team-a",model="",kind="requests",period="1m",calendar="false"})"),
      2);
  EXPECT_EQ(
      MetricValue(
          metrics,
          R"(trl_budget_remaining{scope="key",name="team-a",model="m\"x",kind="tokens",period="1m",calendar="false"})"),
      3);
  EXPECT_EQ(
      MetricValue(
          metrics,
          R"(trl_budget_remaining{scope="tenant",name="team-a",model="",kind="tokens",period="1m",calendar="false"})"),
      4);
}

TEST(BudgetGaugesTest, KeysAreLeftOutWhenTheKeyLabelIsDropped) {
  MetricsRegistry metrics;
  metrics.DropLabel("key");
  FakeClock clock;
  BudgetGauges gauges(metrics, clock);
  const int64_t now = clock.NowMicros();
  gauges.Observe(Budget(ScopeKind::kKey, "team-a", LimitKind::kTokens, 60), Level(1, now));
  gauges.Observe(Budget(ScopeKind::kTenant, "acme", LimitKind::kTokens, 60), Level(4, now));
  EXPECT_EQ(MetricValue(metrics, Series("trl_budget_remaining", kKeyTokens)), std::nullopt);
  EXPECT_EQ(
      MetricValue(
          metrics,
          R"(trl_budget_remaining{scope="tenant",name="acme",model="",kind="tokens",period="1m",calendar="false"})"),
      4);
}

}  // namespace
}  // namespace trl
