// What only the Redis sink does, against real redis-server processes: its key layout and
// expiry, several instances adding to the same rows (on a three-master cluster too), an hour
// too big for one script call, and failures that must neither lose nor double-count usage.
#include <gtest/gtest.h>

#include <thread>

#include "fakes/redis_server.h"
#include "usage/usage_test_support.h"

namespace trl {
namespace {

using namespace std::chrono_literals;
using namespace usage_testing;
using testing::MakeRedisClient;
using testing::RedisServer;

constexpr int64_t kRetentionSeconds = 20LL * 365 * 86'400;

class RedisUsageSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::StartRedis();
    if (!server_) return;
    client_ = MakeRedisClient({server_->Url()});
    sink_ = MakeRedisUsageSink(*client_, kRetention, 2000ms);
  }

  std::unique_ptr<RedisServer> server_;
  std::unique_ptr<redis::RedisClient> client_;
  std::unique_ptr<UsageSink> sink_;
};

TEST_F(RedisUsageSinkTest, OneHashPerRowAndAnIndexPerHourExpiringAfterRetention) {
  ASSERT_TRUE(WriteRows(
      *sink_, {{"team|a", "acme", "llama{3}", kH0 + 5, {1, 100, 20, 0, 2, 0, 30, 600'000, 3}}}));
  const std::string prefix = "trl:usage:{h" + std::to_string(kH0) + "}:";
  const std::string hash = prefix + "team%7Ca|acme|llama%7B3%7D";
  EXPECT_EQ(server_->CommandText({"HGET", hash, "requests"}), "1");
  EXPECT_EQ(server_->CommandText({"HGET", hash, "prompt_tokens"}), "100");
  EXPECT_EQ(server_->CommandText({"HGET", hash, "completion_tokens"}), "20");
  EXPECT_EQ(server_->CommandText({"HGET", hash, "rejected_requests"}), "2");
  EXPECT_EQ(server_->CommandText({"HGET", hash, "cached_tokens"}), "30");
  EXPECT_EQ(server_->CommandText({"HGET", hash, "cost"}), "600000");  // nanos
  EXPECT_EQ(server_->CommandText({"HGET", hash, "rejected_spend"}), "3");
  EXPECT_EQ(server_->CommandText({"HEXISTS", hash, "rejected_tokens"}), "0");  // zeros not kept
  EXPECT_EQ(server_->CommandText({"SISMEMBER", prefix + "rows", "team%7Ca|acme|llama%7B3%7D"}),
            "1");
  const std::string expire_at = std::to_string(kH0 + 3600 + kRetentionSeconds);
  EXPECT_EQ(server_->CommandText({"EXPIRETIME", hash}), expire_at);
  EXPECT_EQ(server_->CommandText({"EXPIRETIME", prefix + "rows"}), expire_at);
}

// A hash written by the version before cost and cached tokens has none of their fields: they
// read as 0, and this version's writes add them (HINCRBY) beside the old ones.
TEST_F(RedisUsageSinkTest, AHashOfTheFirstVersionReadsItsNewCountersAsZero) {
  const std::string prefix = "trl:usage:{h" + std::to_string(kH0) + "}:";
  server_->Command({"HSET", prefix + "k||m", "requests", "2", "prompt_tokens", "20",
                    "completion_tokens", "4", "rejected_concurrency", "1"});
  server_->Command({"SADD", prefix + "rows", "k||m"});
  UsageResult before = QueryRange(*sink_, kH0, kH0 + 3600);
  ASSERT_TRUE(before.ok) << before.error;
  ASSERT_EQ(before.rows.size(), 1u);
  EXPECT_EQ(before.rows[0].counts, (UsageCounts{2, 20, 4, 0, 0, 1, 0, 0, 0}));

  ASSERT_TRUE(WriteRows(*sink_, {{"k", "", "m", kH0, {1, 10, 1, 0, 0, 0, 5, 1'500, 1}}}));
  UsageResult after = QueryRange(*sink_, kH0, kH0 + 3600);
  ASSERT_TRUE(after.ok) << after.error;
  ASSERT_EQ(after.rows.size(), 1u);
  EXPECT_EQ(after.rows[0].counts, (UsageCounts{3, 30, 5, 0, 0, 1, 5, 1'500, 1}));
}

// A row of an end user: a fourth part, encoded like the others. A row without one keeps the
// three parts of the version before users were counted, so that what that version wrote (a
// member and hash of three parts) reads as a row without a user and adds up with new writes.
TEST_F(RedisUsageSinkTest, TheUserIsAFourthPartAndThreePartsAreNoUser) {
  const std::string prefix = "trl:usage:{h" + std::to_string(kH0) + "}:";
  server_->Command({"HSET", prefix + "k|t|m", "requests", "2", "prompt_tokens", "20"});
  server_->Command({"SADD", prefix + "rows", "k|t|m"});
  ASSERT_TRUE(
      WriteRows(*sink_, {{"k", "t", "m", kH0, {1, 10}}, {"k", "t", "m", kH0, {1, 5}, "al|ce{x}"}}));
  EXPECT_EQ(server_->CommandText({"HGET", prefix + "k|t|m", "requests"}), "3");
  EXPECT_EQ(server_->CommandText({"HGET", prefix + "k|t|m|al%7Cce%7Bx%7D", "prompt_tokens"}), "5");
  EXPECT_EQ(server_->CommandText({"SISMEMBER", prefix + "rows", "k|t|m|al%7Cce%7Bx%7D"}), "1");
  EXPECT_EQ(server_->CommandText({"SCARD", prefix + "rows"}), "2");

  UsageResult r = QueryUsers(*sink_);
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_EQ(r.rows[0].user, "");
  EXPECT_EQ(r.rows[0].counts, (UsageCounts{3, 30}));
  EXPECT_EQ(r.rows[1].user, "al|ce{x}");
  EXPECT_EQ(r.rows[1].counts, (UsageCounts{1, 5}));
  EXPECT_EQ(QueryUsers(*sink_, "").total, (UsageCounts{3, 30}));
  EXPECT_EQ(QueryUsers(*sink_, "al|ce{x}").total, (UsageCounts{1, 5}));
  // A member of five parts is no row of this sink: left out.
  server_->Command({"SADD", prefix + "rows", "k|t|m|u|x"});
  EXPECT_EQ(QueryUsers(*sink_).rows.size(), 2u);
}

TEST_F(RedisUsageSinkTest, RowsPastTheirRetentionAreGoneAtOnce) {
  // An hour that ended longer ago than the retention: EXPIREAT in the past deletes it.
  auto short_lived = MakeRedisUsageSink(*client_, Millis(3'600'000), 2000ms);
  ASSERT_TRUE(WriteRows(
      *short_lived, {{"k", "", "m", 1'000'000'000 - 1'000'000'000 % 3600, {1, 0, 0, 0, 0, 0}}}));
  EXPECT_EQ(QueryRange(*short_lived, 1'000'000'000 - 86'400, 1'000'000'000).rows.size(), 0u);
}

TEST_F(RedisUsageSinkTest, AnHourBiggerThanOneScriptCall) {
  std::vector<UsageRow> rows;
  for (int i = 0; i < 1'234; ++i) {
    // Appended rather than "k" + to_string(i): GCC 12 warns falsely (-Wrestrict) on that.
    std::string key = "k";
    key += std::to_string(i);
    rows.push_back({key, "", "m", kH0, {1, 1}});
  }
  ASSERT_TRUE(WriteRows(*sink_, rows));
  ASSERT_TRUE(WriteRows(*sink_, rows));
  UsageResult r = QueryRange(*sink_, kH0, kH0 + 3600);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.rows.size(), 1'234u);
  EXPECT_EQ(r.total.requests, 2 * 1'234);
  EXPECT_EQ(r.total.prompt_tokens, 2 * 1'234);
}

TEST_F(RedisUsageSinkTest, ALongRangeQueriesEveryHour) {
  std::vector<UsageRow> rows;
  for (int64_t h = 0; h < 30 * 24; h += 7) rows.push_back({"k", "", "m", kH0 - h * 3600, {1}});
  ASSERT_TRUE(WriteRows(*sink_, rows));
  UsageResult r = QueryRange(*sink_, kH0 - 30 * 86'400, kH0 + 3600);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.rows.size(), rows.size());
  EXPECT_EQ(r.total.requests, static_cast<int64_t>(rows.size()));
  UsageQuery too_long;
  too_long.from = kH0 - 401 * 86'400;
  too_long.to = kH0;
  UsageResult refused = RunAwaitable(sink_->Query(too_long));
  EXPECT_FALSE(refused.ok);
  EXPECT_NE(refused.error.find("400 days"), std::string::npos) << refused.error;
}

// The second hour of a batch fails after the first was applied; the caller puts the whole batch
// back (as the flush does) and writes it again with what came since: the first hour counts once.
TEST_F(RedisUsageSinkTest, APartlyAppliedBatchIsNotCountedTwice) {
  const std::string broken = "trl:usage:{h" + std::to_string(kH0 + 3600) + "}:rows";
  server_->Command({"SET", broken, "not a set"});  // WRONGTYPE for the second hour's SADD
  std::vector<UsageRow> batch = {{"k", "", "m", kH0, {1, 10, 0, 0, 0, 0, 2, 700, 0}},
                                 {"k", "", "m", kH0 + 3600, {2, 20, 0, 0, 0, 0, 0, 900, 1}}};
  std::string error;
  ASSERT_FALSE(WriteRows(*sink_, batch, &error));
  EXPECT_NE(error.find("WRONGTYPE"), std::string::npos) << error;
  server_->Command({"DEL", broken});

  std::vector<UsageRow> restored = batch;
  restored[0].counts.Add({1, 5, 0, 0, 0, 0, 1, 50, 0});  // recorded since the failed flush
  ASSERT_TRUE(WriteRows(*sink_, restored, &error)) << error;
  UsageResult r = QueryRange(*sink_, kH0, kH0 + 7200);
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_EQ(r.rows[0].counts, (UsageCounts{2, 15, 0, 0, 0, 0, 3, 750, 0}));
  EXPECT_EQ(r.rows[1].counts, (UsageCounts{2, 20, 0, 0, 0, 0, 0, 900, 1}));
}

// A write that times out but is applied by Redis after all (here: held back by CLIENT PAUSE
// until after its deadline) counts once: the next write sends that very call again, which its
// marker turns into a no-op, and leaves its rows out.
TEST_F(RedisUsageSinkTest, ATimedOutWriteThatWasAppliedIsNotCountedTwice) {
  auto sink = MakeRedisUsageSink(*client_, kRetention, 100ms);
  std::vector<UsageRow> batch = {{"k", "", "m", kH0, {1, 10, 0, 0, 0, 0}}};
  ASSERT_EQ(server_->CommandText({"CLIENT", "PAUSE", "600", "WRITE"}), "OK");
  std::string error;
  ASSERT_FALSE(WriteRows(*sink, batch, &error));
  // A write of this connection waits for the pause to end, after the held-back call.
  ASSERT_EQ(server_->CommandText({"SET", "after-the-pause", "1"}), "OK");
  EXPECT_EQ(QueryRange(*sink, kH0, kH0 + 3600).rows.size(), 1u);  // it was applied

  std::vector<UsageRow> restored = batch;
  restored[0].counts.Add({1, 5, 0, 0, 0, 0});  // recorded since the failed flush
  ASSERT_TRUE(WriteRows(*sink, restored, &error)) << error;
  UsageResult r = QueryRange(*sink, kH0, kH0 + 3600);
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0].counts, (UsageCounts{2, 15, 0, 0, 0, 0}));
}

TEST_F(RedisUsageSinkTest, AFailingQueryIsAnError) {
  server_->Command({"SET", "trl:usage:{h" + std::to_string(kH0) + "}:rows", "not a set"});
  UsageResult r = QueryRange(*sink_, kH0 - 7200, kH0 + 7200);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("WRONGTYPE"), std::string::npos) << r.error;
}

TEST_F(RedisUsageSinkTest, DropBeforeLeavesItToExpiry) {
  int64_t removed = -1;
  std::string error;
  EXPECT_TRUE(RunAwaitable(sink_->DropBefore(kH0, &removed, &error)));
  EXPECT_EQ(removed, 0);
}

TEST(RedisUsageSinkDownTest, NoRedisFailsEveryCall) {
  redis::ClientOptions options;
  options.urls = {"redis://127.0.0.1:" + std::to_string(testing::FreePort())};
  options.connect_timeout = 100ms;
  auto client = MakeRedisClient(options);
  auto sink = MakeRedisUsageSink(*client, kRetention, 200ms);
  std::string error;
  EXPECT_FALSE(WriteRows(*sink, {{"k", "", "m", kH0, {1}}}, &error));
  EXPECT_FALSE(error.empty());
  UsageResult r = QueryRange(*sink, kH0, kH0 + 3600);
  EXPECT_FALSE(r.ok);
  EXPECT_FALSE(r.error.empty());
}

// Two gateway instances (two clients, two sinks) flush the same rows at the same time into a
// three-master cluster, over two days of hours that spread across its nodes.
TEST(RedisUsageSinkClusterTest, TwoInstancesAddToTheSameRows) {
  auto cluster = testing::StartRedisCluster();
  if (!cluster) return;
  auto client_a = MakeRedisClient(cluster->Urls());
  auto client_b = MakeRedisClient(cluster->Urls());
  auto sink_a = MakeRedisUsageSink(*client_a, kRetention, 2000ms);
  auto sink_b = MakeRedisUsageSink(*client_b, kRetention, 2000ms);

  std::vector<UsageRow> batch;
  for (int64_t h = 0; h < 48; ++h) {
    for (const char* key : {"a", "b", "c"}) {
      batch.push_back({key, "t", "m", kH0 + h * 3600, {1, 10, 2, 1, 0, 0}});
    }
  }
  constexpr int kFlushes = 10;
  auto flush = [&](UsageSink& sink) {
    for (int i = 0; i < kFlushes; ++i) EXPECT_TRUE(WriteRows(sink, batch));
  };
  std::thread a([&] { flush(*sink_a); });
  std::thread b([&] { flush(*sink_b); });
  a.join();
  b.join();

  for (UsageSink* sink : {sink_a.get(), sink_b.get()}) {
    UsageResult r = QueryRange(*sink, kH0, kH0 + 48 * 3600);
    ASSERT_TRUE(r.ok) << r.error;
    ASSERT_EQ(r.rows.size(), batch.size());
    for (const UsageRow& row : r.rows) {
      EXPECT_EQ(row.counts, (UsageCounts{20, 200, 40, 20, 0, 0})) << row.key << " " << row.start;
    }
    UsageQuery by_day;
    by_day.from = kH0;
    by_day.to = kH0 + 48 * 3600;
    by_day.granularity = UsageGranularity::kDay;
    by_day.key = "b";
    UsageResult days = RunAwaitable(sink->Query(by_day));
    ASSERT_TRUE(days.ok) << days.error;
    ASSERT_EQ(days.rows.size(), 3u);  // 12:00 on day one to 11:00 on day three
    EXPECT_EQ(days.total.requests, 48 * 20);
  }
  // The hours really are spread: more than one master holds usage.
  int nodes_with_rows = 0;
  for (size_t i = 0; i < cluster->size(); ++i) {
    nodes_with_rows += cluster->node(i).CommandText({"DBSIZE"}) != "0";
  }
  EXPECT_GE(nodes_with_rows, 2);
}

}  // namespace
}  // namespace trl
