// UsageFlush with a usage sink whose first write stays in flight until the test lets it land:
// what a usage query made meanwhile sees.
#include "app/usage_flush.h"

#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>

#include "fakes/temp_dir.h"

namespace trl {
namespace {

// Adds what it is sent; its first Write waits until Land() (a Redis call still in flight).
class SlowFirstWriteSink final : public UsageSink {
 public:
  explicit SlowFirstWriteSink(asio::io_context& io) : first_write_(io) {}

  asio::awaitable<bool> Write(std::span<const UsageRow> rows, std::string* error) override {
    if (writes_++ == 0) {
      first_write_.expires_at(asio::steady_timer::time_point::max());
      co_await first_write_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    for (const UsageRow& row : rows) total_.Add(row.counts);
    co_return true;
  }
  asio::awaitable<UsageResult> Query(const UsageQuery&) override {
    UsageResult result;
    result.ok = true;
    result.total = total_;
    co_return result;
  }
  asio::awaitable<bool> DropBefore(int64_t, int64_t*, std::string*) override { co_return true; }

  void Land() { first_write_.cancel(); }
  const UsageCounts& Total() const { return total_; }

 private:
  asio::steady_timer first_write_;
  int writes_ = 0;
  UsageCounts total_;
};

// The scheduler's flush and an admin query's flush run on one thread, interleaving at each
// co_await: the query's flush waits for the one in flight, so that the query sees every request
// settled before it (the periodic flush's rows, then its own).
TEST(UsageFlushTest, AFlushWaitsForTheOneInFlight) {
  asio::io_context io;
  UsageRecorder recorder;
  SlowFirstWriteSink sink(io);
  UsageFlush flush(recorder, sink);
  recorder.RecordAdmitted("k", "", "m", 1'700'000'000, 10, 1);
  bool periodic_done = false;
  asio::co_spawn(io, flush.Flush(), [&](std::exception_ptr, bool) { periodic_done = true; });
  io.poll();  // the periodic flush took the row and waits on the sink
  ASSERT_FALSE(periodic_done);
  recorder.RecordAdmitted("k", "", "m", 1'700'000'000, 20, 2);
  std::optional<UsageCounts> seen;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await flush.Flush();
        UsageResult r = co_await sink.Query(UsageQuery{});
        seen = r.total;
      },
      asio::detached);
  io.poll();
  EXPECT_FALSE(seen.has_value());  // waiting for the write in flight
  sink.Land();
  io.run();
  EXPECT_TRUE(periodic_done);
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->requests, 2);
  EXPECT_EQ(seen->prompt_tokens, 30);
  EXPECT_EQ(sink.Total().completion_tokens, 3);
}

// Adds what it is sent, or fails every write while `failing`.
class CountingSink final : public UsageSink {
 public:
  asio::awaitable<bool> Write(std::span<const UsageRow> rows, std::string* error) override {
    if (failing) {
      *error = "down";
      co_return false;
    }
    for (const UsageRow& row : rows) total.Add(row.counts);
    co_return true;
  }
  asio::awaitable<UsageResult> Query(const UsageQuery&) override {
    UsageResult result;
    result.ok = true;
    result.total = total;
    co_return result;
  }
  asio::awaitable<bool> DropBefore(int64_t, int64_t*, std::string*) override { co_return true; }

  bool failing = false;
  UsageCounts total;
};

// A usage query whose flush failed answers the store's error, not totals that miss this
// instance's pending rows (they are kept for the next flush, and the next query has them).
TEST(UsageFlushTest, AQueryWhoseFlushFailedIsAnError) {
  UsageRecorder recorder;
  CountingSink sink;
  UsageFlush flush(recorder, sink);
  recorder.RecordAdmitted("k", "", "m", 1'700'000'000, 10, 1);
  sink.failing = true;
  auto query = [&] {
    asio::io_context io;
    UsageResult result;
    asio::co_spawn(io, flush.FlushAndQuery(UsageQuery{}),
                   [&](std::exception_ptr, UsageResult r) { result = std::move(r); });
    io.run();
    return result;
  };
  UsageResult refused = query();
  EXPECT_FALSE(refused.ok);
  EXPECT_EQ(refused.error, "this instance's latest usage could not be written yet");
  sink.failing = false;
  EXPECT_TRUE(query().ok);
  EXPECT_EQ(sink.total.requests, 1);
}

// One run of the gateway's usage path on `dir`'s journal; destroying it without a last flush is
// a crash.
struct JournaledRun {
  explicit JournaledRun(const std::string& dir) {
    std::string error;
    journal = Journal::Open(dir, "usage", FsyncPolicy::kNo, "usage 1", &error);
    EXPECT_TRUE(journal) << error;
    recorder.EnableJournal();
    flush.emplace(recorder, sink, journal.get());
    EXPECT_TRUE(flush->RecoverJournal(&error)) << error;
  }
  bool Flush() {
    asio::io_context io;
    bool ok = false;
    asio::co_spawn(io, flush->Flush(), [&](std::exception_ptr, bool r) { ok = r; });
    io.run();
    return ok;
  }
  bool Commit() {
    std::string error;
    bool ok = flush->CommitJournal(&error);
    EXPECT_TRUE(ok) << error;
    return ok;
  }

  std::unique_ptr<Journal> journal;
  UsageRecorder recorder;
  CountingSink sink;
  std::optional<UsageFlush> flush;
};

class UsageJournalTest : public ::testing::Test {
 protected:
  testing::TempDir temp_;
  const std::string& dir_ = temp_.path();
};

constexpr int64_t kT = 1'700'000'000;

TEST_F(UsageJournalTest, RowsTheJournalCommittedComeBackAfterACrash) {
  {
    JournaledRun run(dir_);
    run.recorder.RecordAdmitted("k", "t", "m", kT, 10, 1);
    run.recorder.RecordRejected("k", "t", "m", kT, LimitKind::kTokens);
    ASSERT_TRUE(run.Commit());
    run.recorder.RecordAdmitted("k", "t", "m", kT, 20, 2);
    ASSERT_TRUE(run.Commit());
    run.recorder.RecordAdmitted("k", "t", "m", kT, 40, 4);  // never committed: lost
  }
  JournaledRun after(dir_);
  ASSERT_TRUE(after.Flush());
  EXPECT_EQ(after.sink.total, (UsageCounts{2, 30, 3, 1, 0, 0}));
}

TEST_F(UsageJournalTest, AWrittenBatchIsNotWrittenAgainAfterACrash) {
  {
    JournaledRun run(dir_);
    run.recorder.RecordAdmitted("k", "", "m", kT, 10, 1);
    ASSERT_TRUE(run.Commit());
    ASSERT_TRUE(run.Flush());
    EXPECT_EQ(run.sink.total.requests, 1);
    run.recorder.RecordAdmitted("k", "", "m", kT, 5, 5);
    ASSERT_TRUE(run.Commit());
  }
  JournaledRun after(dir_);
  ASSERT_TRUE(after.Flush());
  EXPECT_EQ(after.sink.total, (UsageCounts{1, 5, 5, 0, 0, 0}));
}

// A batch the sink refused goes back into the recorder and the journal's current segment (its
// own is deleted): after a crash it is written once, with what came after it.
TEST_F(UsageJournalTest, ABatchTheSinkRefusedIsWrittenOnceAfterACrash) {
  {
    JournaledRun run(dir_);
    run.sink.failing = true;
    run.recorder.RecordAdmitted("k", "", "m", kT, 10, 1);
    ASSERT_FALSE(run.Flush());
    run.recorder.RecordAdmitted("k", "", "m", kT, 20, 2);
    ASSERT_FALSE(run.Flush());
    run.recorder.RecordAdmitted("k", "", "m", kT + 3600, 40, 4);
    ASSERT_TRUE(run.Commit());
  }
  JournaledRun after(dir_);
  ASSERT_TRUE(after.Flush());
  EXPECT_EQ(after.sink.total, (UsageCounts{3, 70, 7, 0, 0, 0}));
  // Written: nothing is left for the next start.
  JournaledRun last(dir_);
  ASSERT_TRUE(last.Flush());
  EXPECT_EQ(last.sink.total, UsageCounts{});
}

}  // namespace
}  // namespace trl
