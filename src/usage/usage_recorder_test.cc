#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <thread>
#include <tuple>

#include "usage/usage.h"

namespace trl {
namespace {

constexpr int64_t kT0 = 1'700'000'000 - 1'700'000'000 % 3600;  // the start of an hour

using Identity = std::tuple<std::string, std::string, std::string, int64_t>;

std::map<Identity, UsageCounts> ByIdentity(const std::vector<UsageRow>& rows) {
  std::map<Identity, UsageCounts> out;
  for (const UsageRow& row : rows) {
    auto [it, inserted] = out.try_emplace({row.key, row.tenant, row.model, row.start});
    EXPECT_TRUE(inserted) << "a row appears twice in one batch: " << row.key;
    it->second.Add(row.counts);
  }
  return out;
}

TEST(UsageRecorderTest, CountsAdmittedAndRejectedPerRowAndHour) {
  UsageRecorder recorder;
  recorder.RecordAdmitted("k1", "t", "m", kT0 + 10, 100, 20);
  recorder.RecordAdmitted("k1", "t", "m", kT0 + 3599, 5, 1);
  recorder.RecordAdmitted("k1", "t", "m", kT0 + 3600, 7, 2);  // the next hour
  recorder.RecordRejected("k1", "t", "m", kT0, LimitKind::kTokens);
  recorder.RecordRejected("k1", "t", "m", kT0, LimitKind::kRequests);
  recorder.RecordRejected("k1", "t", "m", kT0, LimitKind::kConcurrent);
  recorder.RecordRejected("k1", "t", "m", kT0, LimitKind::kConcurrent);
  recorder.RecordRejected("k2", "", "m", kT0, LimitKind::kTokens);
  EXPECT_EQ(recorder.PendingRows(), 3u);

  auto rows = ByIdentity(recorder.TakePending());
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ((rows[{"k1", "t", "m", kT0}]), (UsageCounts{2, 105, 21, 1, 1, 2}));
  EXPECT_EQ((rows[{"k1", "t", "m", kT0 + 3600}]), (UsageCounts{1, 7, 2, 0, 0, 0}));
  EXPECT_EQ((rows[{"k2", "", "m", kT0}]), (UsageCounts{0, 0, 0, 1, 0, 0}));
  EXPECT_EQ((rows[{"k1", "t", "m", kT0}]).Rejected(), 4);

  EXPECT_EQ(recorder.PendingRows(), 0u);
  EXPECT_TRUE(recorder.TakePending().empty());
}

TEST(UsageRecorderTest, IdentityPartsDoNotRunTogether) {
  UsageRecorder recorder;
  recorder.RecordAdmitted("ab", "", "m", kT0, 1, 0);
  recorder.RecordAdmitted("a", "b", "m", kT0, 1, 0);
  recorder.RecordAdmitted("a", "", "bm", kT0, 1, 0);
  EXPECT_EQ(recorder.TakePending().size(), 3u);
}

TEST(UsageRecorderTest, RestoreMergesWithWhatWasRecordedSince) {
  UsageRecorder recorder;
  recorder.RecordAdmitted("k", "", "m", kT0 + 1, 10, 1);
  recorder.RecordAdmitted("other", "", "m", kT0 + 1, 3, 3);
  std::vector<UsageRow> failed = recorder.TakePending();
  recorder.RecordAdmitted("k", "", "m", kT0 + 2, 5, 5);
  recorder.RecordRejected("k", "", "m", kT0 + 3, LimitKind::kRequests);
  recorder.Restore(failed);
  EXPECT_EQ(recorder.PendingRows(), 2u);

  auto rows = ByIdentity(recorder.TakePending());
  EXPECT_EQ((rows[{"k", "", "m", kT0}]), (UsageCounts{2, 15, 6, 0, 1, 0}));
  EXPECT_EQ((rows[{"other", "", "m", kT0}]), (UsageCounts{1, 3, 3, 0, 0, 0}));
}

// Threads record while another takes batches: the batches add up to exactly what was recorded.
TEST(UsageRecorderTest, ConcurrentRecordingAndTakingLosesNothing) {
  UsageRecorder recorder;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20'000;
  const std::string keys[] = {"a", "b", "c", "d", "e"};
  std::atomic<int> running{kThreads};
  std::map<Identity, UsageCounts> taken;
  auto take = [&] {
    for (auto& [id, counts] : ByIdentity(recorder.TakePending())) taken[id].Add(counts);
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string& key = keys[(i + t) % 5];
        const int64_t when = kT0 + (i % 2) * 3600;
        if (i % 10 == 0) {
          recorder.RecordRejected(key, "ten", "m", when, LimitKind::kTokens);
        } else {
          recorder.RecordAdmitted(key, "ten", "m", when, 3, 2);
        }
      }
      running.fetch_sub(1);
    });
  }
  while (running.load() > 0) take();
  for (auto& thread : threads) thread.join();
  take();

  UsageCounts total;
  for (auto& [id, counts] : taken) total.Add(counts);
  const int64_t records = int64_t{kThreads} * kPerThread;
  EXPECT_EQ(total.requests, records * 9 / 10);
  EXPECT_EQ(total.prompt_tokens, records * 9 / 10 * 3);
  EXPECT_EQ(total.completion_tokens, records * 9 / 10 * 2);
  EXPECT_EQ(total.rejected_tokens, records / 10);
  EXPECT_EQ(taken.size(), 10u);  // 5 keys x 2 hours
}

}  // namespace
}  // namespace trl
