// What every UsageSink does, the same for each: SQLite in a temporary directory, a real
// redis-server, and a real three-master Redis Cluster (skipped when redis-server is missing,
// unless TRL_REQUIRE_REDIS=1).
#include <gtest/gtest.h>

#include "fakes/redis_server.h"
#include "fakes/temp_dir.h"
#include "usage/usage_test_support.h"

namespace trl {
namespace {

using namespace std::chrono_literals;
using namespace usage_testing;
using testing::MakeRedisClient;
using testing::RedisCluster;
using testing::RedisServer;

constexpr int64_t kH1 = kH0 + 3600;            // 13:00
constexpr int64_t kNextDay = kH0 + 13 * 3600;  // 2026-11-29T01:00:00Z
constexpr int64_t kDay0 = kH0 - 12 * 3600;     // 2026-11-28T00:00:00Z

enum class SinkKind { kSqlite, kRedis, kRedisCluster };

std::string Name(const ::testing::TestParamInfo<SinkKind>& info) {
  switch (info.param) {
    case SinkKind::kSqlite:
      return "Sqlite";
    case SinkKind::kRedis:
      return "Redis";
    case SinkKind::kRedisCluster:
      return "RedisCluster";
  }
  return "?";
}

std::vector<UsageRow> Sample() {
  return {
      {"a", "t1", "m1", kH0, {1, 10, 1, 0, 0, 0, 4, 600'000, 0}},
      {"a", "t1", "m2", kH0, {2, 20, 2, 1, 0, 0, 0, 0, 1}},
      {"b", "", "m1", kH1, {3, 30, 3, 0, 1, 0, 0, 1'500, 0}},
      {"a", "t1", "m1", kH1, {4, 40, 4, 0, 0, 1, 8, 3'000'000'000, 2}},
      {"a", "t1", "m1", kNextDay, {5, 50, 5, 0, 0, 0}},
  };
}

UsageCounts Times(UsageCounts c, int64_t n) {
  for (const UsageCounter& counter : kUsageCounters) c.*counter.field *= n;
  return c;
}

class UsageSinkTest : public ::testing::TestWithParam<SinkKind> {
 protected:
  static void TearDownTestSuite() {
    server_.reset();
    cluster_.reset();
  }

  void SetUp() override {
    std::string error;
    switch (GetParam()) {
      case SinkKind::kSqlite: {
        dir_.emplace("trl-usage-");
        sink_ = OpenSqliteUsageSink(dir_->path(), &error);
        ASSERT_TRUE(sink_) << error;
        return;
      }
      case SinkKind::kRedis:
        if (!server_) server_ = testing::StartRedis();
        if (!server_) return;
        server_->Command({"FLUSHALL"});
        client_ = MakeRedisClient({server_->Url()});
        break;
      case SinkKind::kRedisCluster:
        if (!cluster_) cluster_ = testing::StartRedisCluster();
        if (!cluster_) return;
        for (size_t i = 0; i < cluster_->size(); ++i) cluster_->node(i).Command({"FLUSHALL"});
        client_ = MakeRedisClient(cluster_->Urls());
        break;
    }
    sink_ = MakeRedisUsageSink(*client_, kRetention, 2000ms);
  }

  void TearDown() override {
    sink_.reset();
    client_.reset();
  }

  bool Write(const std::vector<UsageRow>& rows) {
    std::string error;
    bool ok = WriteRows(*sink_, rows, &error);
    EXPECT_TRUE(ok) << error;
    return ok;
  }

  UsageResult Query(int64_t from, int64_t to, UsageGranularity g = UsageGranularity::kHour,
                    std::optional<std::string> key = {}, std::optional<std::string> tenant = {},
                    std::optional<std::string> model = {}) {
    UsageQuery q;
    q.from = from;
    q.to = to;
    q.granularity = g;
    q.key = std::move(key);
    q.tenant = std::move(tenant);
    q.model = std::move(model);
    UsageResult r = RunAwaitable(sink_->Query(q));
    EXPECT_TRUE(r.ok) << r.error;
    return r;
  }

  static inline std::unique_ptr<RedisServer> server_;
  static inline std::unique_ptr<RedisCluster> cluster_;
  std::optional<testing::TempDir> dir_;
  std::unique_ptr<redis::RedisClient> client_;
  std::unique_ptr<UsageSink> sink_;
};

TEST_P(UsageSinkTest, WritingTwiceAdds) {
  ASSERT_TRUE(Write(Sample()));
  ASSERT_TRUE(Write(Sample()));
  UsageResult r = Query(kDay0, kDay0 + 2 * 86'400);
  std::vector<UsageRow> expected = Sample();
  // Sorted by start, key, tenant, model.
  std::swap(expected[2], expected[3]);
  ASSERT_EQ(r.rows.size(), expected.size());
  UsageCounts total;
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(r.rows[i].key, expected[i].key) << i;
    EXPECT_EQ(r.rows[i].tenant, expected[i].tenant) << i;
    EXPECT_EQ(r.rows[i].model, expected[i].model) << i;
    EXPECT_EQ(r.rows[i].start, expected[i].start) << i;
    EXPECT_EQ(r.rows[i].counts, Times(expected[i].counts, 2)) << i;
    total.Add(r.rows[i].counts);
  }
  EXPECT_EQ(r.total, total);
  EXPECT_EQ(r.total.requests, 30);
}

TEST_P(UsageSinkTest, NothingToWriteIsFine) {
  EXPECT_TRUE(Write({}));
  UsageResult r = Query(kDay0, kDay0 + 86'400);
  EXPECT_TRUE(r.rows.empty());
  EXPECT_EQ(r.total, UsageCounts{});
}

TEST_P(UsageSinkTest, Filters) {
  ASSERT_TRUE(Write(Sample()));
  const int64_t from = kDay0, to = kDay0 + 2 * 86'400;
  EXPECT_EQ(Query(from, to, UsageGranularity::kHour, "a").rows.size(), 4u);
  EXPECT_EQ(Query(from, to, UsageGranularity::kHour, "b").rows.size(), 1u);
  EXPECT_EQ(Query(from, to, UsageGranularity::kHour, "c").rows.size(), 0u);
  EXPECT_EQ(Query(from, to, UsageGranularity::kHour, {}, "t1").rows.size(), 4u);
  // An empty tenant is a filter too (a key without tenant), distinct from no filter.
  UsageResult no_tenant = Query(from, to, UsageGranularity::kHour, {}, "");
  ASSERT_EQ(no_tenant.rows.size(), 1u);
  EXPECT_EQ(no_tenant.rows[0].key, "b");
  EXPECT_EQ(Query(from, to, UsageGranularity::kHour, {}, {}, "m1").rows.size(), 4u);
  UsageResult one = Query(from, to, UsageGranularity::kHour, "a", "t1", "m2");
  ASSERT_EQ(one.rows.size(), 1u);
  EXPECT_EQ(one.rows[0].counts, (UsageCounts{2, 20, 2, 1, 0, 0, 0, 0, 1}));
  EXPECT_EQ(one.total, one.rows[0].counts);
}

TEST_P(UsageSinkTest, RowsWhoseHourOverlapsTheRange) {
  ASSERT_TRUE(Write(Sample()));
  // [12:30, 13:00:01) overlaps the hours of 12:00 and 13:00.
  EXPECT_EQ(Query(kH0 + 1800, kH1 + 1).rows.size(), 4u);
  // [13:00, 14:00): only 13:00.
  UsageResult r = Query(kH1, kH1 + 3600);
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_EQ(r.rows[0].start, kH1);
  // [12:59:59, 13:00): only 12:00.
  EXPECT_EQ(Query(kH1 - 1, kH1).rows.size(), 2u);
  EXPECT_EQ(Query(kH0 - 3600, kH0).rows.size(), 0u);
}

TEST_P(UsageSinkTest, DayGranularitySumsPerUtcDay) {
  ASSERT_TRUE(Write(Sample()));
  UsageResult r = Query(kH0, kNextDay + 1, UsageGranularity::kDay);
  ASSERT_EQ(r.rows.size(), 4u);
  EXPECT_EQ(r.rows[0].start, kDay0);
  EXPECT_EQ(r.rows[0].key, "a");
  EXPECT_EQ(r.rows[0].model, "m1");
  EXPECT_EQ(r.rows[0].counts,
            (UsageCounts{5, 50, 5, 0, 0, 1, 12, 3'000'600'000, 2}));  // 12:00 + 13:00
  EXPECT_EQ(r.rows[1].model, "m2");
  EXPECT_EQ(r.rows[2].key, "b");
  EXPECT_EQ(r.rows[3].start, kDay0 + 86'400);
  EXPECT_EQ(r.rows[3].counts, (UsageCounts{5, 50, 5, 0, 0, 0}));
  EXPECT_EQ(r.total.requests, 15);
  EXPECT_EQ(r.total.cached_tokens, 12);
  EXPECT_EQ(r.total.cost, 3'000'601'500);
  EXPECT_EQ(r.total.rejected_spend, 3);
}

// group_by=tenant: one row per tenant and day, its keys and models summed and left blank.
TEST_P(UsageSinkTest, GroupBySumsOverTheIdentitiesLeftOut) {
  ASSERT_TRUE(Write(Sample()));
  UsageQuery q;
  q.from = kDay0;
  q.to = kDay0 + 2 * 86'400;
  q.granularity = UsageGranularity::kDay;
  q.group_by = {.key = false, .tenant = true, .model = false};
  UsageResult r = RunAwaitable(sink_->Query(q));
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(r.rows.size(), 3u);
  EXPECT_EQ(r.rows[0].start, kDay0);
  EXPECT_EQ(r.rows[0].tenant, "");
  EXPECT_EQ(r.rows[0].counts, (UsageCounts{3, 30, 3, 0, 1, 0, 0, 1'500, 0}));  // b
  EXPECT_EQ(r.rows[1].tenant, "t1");
  EXPECT_EQ(r.rows[1].key, "");
  EXPECT_EQ(r.rows[1].model, "");
  // a: m1 12:00, m2, m1 13:00
  EXPECT_EQ(r.rows[1].counts, (UsageCounts{7, 70, 7, 1, 0, 1, 12, 3'000'600'000, 3}));
  EXPECT_EQ(r.rows[2].start, kDay0 + 86'400);
  EXPECT_EQ(r.total.requests, 15);
}

TEST_P(UsageSinkTest, NamesWithSeparatorsAndBracesRoundTrip) {
  std::vector<UsageRow> rows = {
      {"k|{x}%", "t|%7C", "m{}", kH0, {1, 2, 3, 0, 0, 0}},
      {"k", "|", "", kH0, {1, 0, 0, 0, 0, 0}},
      {"ключ", "テナント", "m/é", kH0, {1, 0, 0, 0, 0, 0}},
  };
  ASSERT_TRUE(Write(rows));
  UsageResult r = Query(kH0, kH1);
  ASSERT_EQ(r.rows.size(), 3u);
  EXPECT_EQ(r.rows[0].key, "k");
  EXPECT_EQ(r.rows[0].tenant, "|");
  EXPECT_EQ(r.rows[0].model, "");
  EXPECT_EQ(r.rows[1].key, "k|{x}%");
  EXPECT_EQ(r.rows[1].tenant, "t|%7C");
  EXPECT_EQ(r.rows[1].model, "m{}");
  EXPECT_EQ(r.rows[2].tenant, "テナント");
  EXPECT_EQ(Query(kH0, kH1, UsageGranularity::kHour, "k|{x}%", "t|%7C").rows.size(), 1u);
}

// Rows of one key, tenant, model and hour apart per end user: each stored on its own, summed by
// default (the answer reads as before users were counted), apart with group_by user, picked by
// the user filter ("" = the rows without a user). Names with separators round-trip.
TEST_P(UsageSinkTest, RowsPerUserAreSummedUnlessGroupedByUser) {
  std::vector<UsageRow> rows = {
      {"k", "t", "m", kH0, {1, 10, 2, 0, 0, 0}},
      {"k", "t", "m", kH0, {2, 20, 4, 1, 0, 0}, "alice"},
      {"k", "t", "m", kH0, {3, 30, 6, 0, 0, 0}, "b|{o}%b"},
  };
  ASSERT_TRUE(Write(rows));
  UsageResult summed = Query(kH0, kH1);
  ASSERT_EQ(summed.rows.size(), 1u);
  EXPECT_EQ(summed.rows[0].user, "");
  EXPECT_EQ(summed.rows[0].counts, (UsageCounts{6, 60, 12, 1, 0, 0}));

  UsageQuery q;
  q.from = kH0;
  q.to = kH1;
  q.group_by.user = true;
  UsageResult by_user = RunAwaitable(sink_->Query(q));
  ASSERT_TRUE(by_user.ok) << by_user.error;
  ASSERT_EQ(by_user.rows.size(), 3u);
  EXPECT_EQ(by_user.rows[0].user, "");
  EXPECT_EQ(by_user.rows[0].counts, (UsageCounts{1, 10, 2, 0, 0, 0}));
  EXPECT_EQ(by_user.rows[1].user, "alice");
  EXPECT_EQ(by_user.rows[1].key, "k");
  EXPECT_EQ(by_user.rows[1].counts, (UsageCounts{2, 20, 4, 1, 0, 0}));
  EXPECT_EQ(by_user.rows[2].user, "b|{o}%b");
  EXPECT_EQ(by_user.total, summed.total);

  // group_by=user alone: one row per user, keys, tenants and models summed.
  q.group_by = {.key = false, .tenant = false, .model = false, .user = true};
  ASSERT_TRUE(Write({{"j", "", "m2", kH0, {4, 40, 8, 0, 0, 0}, "alice"}}));
  UsageResult users = RunAwaitable(sink_->Query(q));
  ASSERT_EQ(users.rows.size(), 3u);
  EXPECT_EQ(users.rows[1].user, "alice");
  EXPECT_EQ(users.rows[1].key, "");
  EXPECT_EQ(users.rows[1].counts, (UsageCounts{6, 60, 12, 1, 0, 0}));

  q.user = "alice";
  UsageResult alice = RunAwaitable(sink_->Query(q));
  ASSERT_EQ(alice.rows.size(), 1u);
  EXPECT_EQ(alice.total, (UsageCounts{6, 60, 12, 1, 0, 0}));
  q.user = "b|{o}%b";
  EXPECT_EQ(RunAwaitable(sink_->Query(q)).total, (UsageCounts{3, 30, 6, 0, 0, 0}));
  q.user = "";  // the rows without a user
  UsageResult none = RunAwaitable(sink_->Query(q));
  ASSERT_EQ(none.rows.size(), 1u);
  EXPECT_EQ(none.total, (UsageCounts{1, 10, 2, 0, 0, 0}));
  q.user = "nobody";
  EXPECT_TRUE(RunAwaitable(sink_->Query(q)).rows.empty());
}

INSTANTIATE_TEST_SUITE_P(Sinks, UsageSinkTest,
                         ::testing::Values(SinkKind::kSqlite, SinkKind::kRedis,
                                           SinkKind::kRedisCluster),
                         Name);

}  // namespace
}  // namespace trl
