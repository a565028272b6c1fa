#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <thread>
#include <tuple>

#include "common/journal.h"
#include "fakes/temp_dir.h"
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

// Cached prompt tokens and cost add up with the tokens; a refusal by a spend limit counts as a
// rejection of its own kind.
TEST(UsageRecorderTest, CountsCachedTokensCostAndSpendRejections) {
  UsageRecorder recorder;
  recorder.RecordAdmitted("k", "t", "m", kT0, 100, 20, 60, 600'000);
  recorder.RecordAdmitted("k", "t", "m", kT0 + 1, 10, 5, 0, 1'500);
  recorder.RecordAdmitted("k", "t", "m", kT0 + 2, 3, 1);  // no prices: free, nothing cached
  recorder.RecordRejected("k", "t", "m", kT0, LimitKind::kSpend);
  recorder.RecordRejected("k", "t", "m", kT0, LimitKind::kSpend);
  recorder.RecordRejected("k", "t", "m", kT0, LimitKind::kTokens);

  auto rows = ByIdentity(recorder.TakePending());
  ASSERT_EQ(rows.size(), 1u);
  const UsageCounts& c = rows[{"k", "t", "m", kT0}];
  EXPECT_EQ(c, (UsageCounts{.requests = 3,
                            .prompt_tokens = 113,
                            .completion_tokens = 26,
                            .rejected_tokens = 1,
                            .cached_tokens = 60,
                            .cost = 601'500,
                            .rejected_spend = 2}));
  EXPECT_EQ(c.Rejected(), 3);
}

// The end user is part of a row's identity: one row per user, "" for none (the default).
TEST(UsageRecorderTest, CountsEachEndUserOnItsOwnRow) {
  UsageRecorder recorder;
  recorder.RecordAdmitted("k", "t", "m", kT0, 10, 2, 0, 0, "alice");
  recorder.RecordAdmitted("k", "t", "m", kT0 + 1, 5, 1, 0, 0, "alice");
  recorder.RecordAdmitted("k", "t", "m", kT0, 7, 3, 0, 0, "bob");
  recorder.RecordAdmitted("k", "t", "m", kT0, 1, 1);
  recorder.RecordRejected("k", "t", "m", kT0, LimitKind::kTokens, "bob");
  recorder.RecordRejected("k", "t", "m", kT0, LimitKind::kRequests);
  EXPECT_EQ(recorder.PendingRows(), 3u);
  std::map<std::string, UsageCounts> by_user;
  for (const UsageRow& row : recorder.TakePending()) {
    EXPECT_EQ(row.key, "k");
    EXPECT_EQ(row.start, kT0);
    EXPECT_TRUE(by_user.try_emplace(row.user, row.counts).second) << row.user;
  }
  ASSERT_EQ(by_user.size(), 3u);
  EXPECT_EQ(by_user["alice"], (UsageCounts{2, 15, 3, 0, 0, 0}));
  EXPECT_EQ(by_user["bob"], (UsageCounts{1, 7, 3, 1, 0, 0}));
  EXPECT_EQ(by_user[""], (UsageCounts{1, 1, 1, 0, 1, 0}));

  // Restore keeps the user.
  recorder.Restore({{"k", "t", "m", kT0, {1}, "alice"}});
  std::vector<UsageRow> back = recorder.TakePending();
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].user, "alice");
}

TEST(UsageRecorderTest, AddAddsEveryCounter) {
  UsageCounts a{1, 2, 3, 4, 5, 6, 7, 8, 9};
  a.Add({10, 20, 30, 40, 50, 60, 70, 80, 90});
  EXPECT_EQ(a, (UsageCounts{11, 22, 33, 44, 55, 66, 77, 88, 99}));
  EXPECT_EQ(a.Rejected(), 44 + 55 + 66 + 99);
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

// A run's journal, as the gateway keeps it (src/app: "usage" segments headed "usage 1").
std::unique_ptr<Journal> OpenJournal(const std::string& dir) {
  std::string error;
  auto journal = Journal::Open(dir, "usage", FsyncPolicy::kNo, "usage 1", &error);
  EXPECT_TRUE(journal) << error;
  return journal;
}

std::vector<UsageRow> ReadJournal(const Journal& journal) {
  std::vector<UsageRow> rows;
  std::string error;
  EXPECT_TRUE(ReadUsageJournal(journal, &rows, &error)) << error;
  return rows;
}

// A run that crashed leaves its batch in the journal; the next run reads every counter back.
TEST(UsageJournalTest, ARecordHoldsEveryCounter) {
  testing::TempDir dir("trl-usage-journal-");
  {
    auto journal = OpenJournal(dir.path());
    UsageRecorder recorder;
    recorder.EnableJournal();
    recorder.RecordAdmitted("k", "t", "m", kT0 + 5, 100, 20, 60, 600'000);
    recorder.RecordRejected("k", "t", "m", kT0 + 6, LimitKind::kSpend);
    recorder.RecordRejected("k", "t", "m", kT0 + 7, LimitKind::kConcurrent);
    recorder.JournalChanges(*journal);
    std::string error;
    ASSERT_TRUE(journal->Commit(&error)) << error;
  }
  auto journal = OpenJournal(dir.path());
  std::vector<UsageRow> rows = ReadJournal(*journal);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].key, "k");
  EXPECT_EQ(rows[0].start, kT0);
  EXPECT_EQ(rows[0].counts, (UsageCounts{.requests = 1,
                                         .prompt_tokens = 100,
                                         .completion_tokens = 20,
                                         .rejected_concurrency = 1,
                                         .cached_tokens = 60,
                                         .cost = 600'000,
                                         .rejected_spend = 1}));
}

// A data dir left by the version before cost and cached tokens: its records stop after six
// counters. They are read, the counters they lack as 0, and summed with this version's.
TEST(UsageJournalTest, ReadsTheSegmentsOfTheFirstVersion) {
  testing::TempDir dir("trl-usage-journal-");
  auto old_record = [](std::string_view key, int64_t requests, int64_t prompt) {
    std::string record;
    RecordWriter(record)
        .Text(key)
        .Text("t")
        .Text("m")
        .Int(kT0)
        .Int(requests)
        .Int(prompt)
        .Int(7)
        .Int(1)
        .Int(2)
        .Int(3);
    return record;
  };
  {
    auto journal = OpenJournal(dir.path());
    journal->Append(old_record("k", 1, 10));
    journal->Append(old_record("k", 2, 30));  // the row's total in its batch: the last counts
    journal->Append(old_record("old-only", 5, 50));
    std::string error;
    ASSERT_TRUE(journal->Commit(&error)) << error;
  }
  {
    auto journal = OpenJournal(dir.path());  // the old segment stays: not yet written
    UsageRecorder recorder;
    recorder.EnableJournal();
    recorder.RecordAdmitted("k", "t", "m", kT0, 4, 1, 3, 9'000);
    recorder.JournalChanges(*journal);
    std::string error;
    ASSERT_TRUE(journal->Commit(&error)) << error;
  }
  auto journal = OpenJournal(dir.path());
  ASSERT_EQ(journal->Leftover().size(), 2u);
  std::vector<UsageRow> rows = ReadJournal(*journal);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].key, "k");
  EXPECT_EQ(rows[0].counts, (UsageCounts{3, 34, 8, 1, 2, 3, 3, 9'000, 0}));
  EXPECT_EQ(rows[1].key, "old-only");
  EXPECT_EQ(rows[1].counts, (UsageCounts{5, 50, 7, 1, 2, 3}));
}

// A row's user goes to the journal and back; a record of the version before users were
// counted (every counter, no user) reads as a row without a user, summed with this version's.
TEST(UsageJournalTest, ARecordHoldsTheUserAndOneWithoutReadsAsNone) {
  testing::TempDir dir("trl-usage-journal-");
  {
    auto journal = OpenJournal(dir.path());
    std::string record;
    RecordWriter writer(record);
    writer.Text("k").Text("t").Text("m").Int(kT0);
    for (size_t i = 0; i < kUsageCounters.size(); ++i) writer.Int(1);
    journal->Append(record);
    std::string error;
    ASSERT_TRUE(journal->Commit(&error)) << error;
  }
  {
    auto journal = OpenJournal(dir.path());
    UsageRecorder recorder;
    recorder.EnableJournal();
    recorder.RecordAdmitted("k", "t", "m", kT0, 10, 2, 0, 0, "alice");
    recorder.RecordAdmitted("k", "t", "m", kT0, 3, 1);
    recorder.JournalChanges(*journal);
    std::string error;
    ASSERT_TRUE(journal->Commit(&error)) << error;
  }
  auto journal = OpenJournal(dir.path());
  std::vector<UsageRow> rows = ReadJournal(*journal);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].user, "");
  EXPECT_EQ(rows[0].counts, (UsageCounts{2, 4, 2, 1, 1, 1, 1, 1, 1}));
  EXPECT_EQ(rows[1].user, "alice");
  EXPECT_EQ(rows[1].counts, (UsageCounts{1, 10, 2, 0, 0, 0}));
}

// A record with some of the new counters but not all is neither version's: it is left out.
TEST(UsageJournalTest, ARecordCutBetweenVersionsIsLeftOut) {
  testing::TempDir dir("trl-usage-journal-");
  {
    auto journal = OpenJournal(dir.path());
    std::string record;
    RecordWriter writer(record);
    writer.Text("k").Text("t").Text("m").Int(kT0);
    for (int i = 0; i < 7; ++i) writer.Int(1);
    journal->Append(record);
    std::string error;
    ASSERT_TRUE(journal->Commit(&error)) << error;
  }
  auto journal = OpenJournal(dir.path());
  EXPECT_TRUE(ReadJournal(*journal).empty());
}

}  // namespace
}  // namespace trl
