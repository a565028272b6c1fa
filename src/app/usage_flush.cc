#include "app/usage_flush.h"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>
#include <utility>

#include "common/run_to_completion.h"

namespace trl {

using namespace std::chrono_literals;

asio::awaitable<bool> UsageFlush::Flush() {
  while (writing_) {
    asio::steady_timer turn(co_await asio::this_coro::executor,
                            asio::steady_timer::time_point::max());
    waiting_.push_back(&turn);
    co_await turn.async_wait(asio::as_tuple(asio::use_awaitable));  // cancelled: our turn
  }
  std::vector<UsageRow> rows = usage_.TakePending(journal_);
  if (rows.empty()) co_return true;
  writing_ = true;
  std::string error;
  // The rows' segment, once it is closed: deleted when they are written or back in the recorder.
  std::optional<uint64_t> segment;
  if (journal_) {
    segment = journal_->Rotate("usage 1", &error);
    if (!segment) spdlog::error("usage journal: {}", error);
  }
  bool ok = false;
  try {
    ok = co_await sink_.Write(rows, &error);
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (!ok) {
    spdlog::error("writing {} usage rows failed (kept for the next flush): {}", rows.size(), error);
    usage_.Restore(rows);
    // Now in the current segment, once committed.
    if (segment && !CommitJournal(&error)) segment.reset();
  }
  if (segment) journal_->DropThrough(*segment);
  writing_ = false;
  for (asio::steady_timer* turn : std::exchange(waiting_, {})) turn->cancel();
  co_return ok;
}

asio::awaitable<UsageResult> UsageFlush::FlushAndQuery(const UsageQuery& query) {
  const bool flushed = co_await Flush();
  if (!flushed) {
    UsageResult failed;
    failed.error = "this instance's latest usage could not be written yet";
    co_return failed;
  }
  UsageResult result = co_await sink_.Query(query);
  co_return result;
}

asio::awaitable<bool> UsageFlush::FlushPatiently() {
  constexpr auto kPause = 250ms;
  constexpr int kAttempts = 8;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (int attempt = 1;; ++attempt) {
    bool ok = co_await Flush();
    if (ok || attempt == kAttempts) co_return ok;
    timer.expires_after(kPause);
    co_await timer.async_wait(asio::use_awaitable);
  }
}

bool UsageFlush::RecoverJournal(std::string* error) {
  if (!journal_ || journal_->Leftover().empty()) return true;
  std::vector<UsageRow> rows;
  if (!ReadUsageJournal(*journal_, &rows, error)) return false;
  const uint64_t last = journal_->Leftover().back();
  usage_.Restore(rows);
  if (!CommitJournal(error)) return false;
  journal_->DropThrough(last);
  if (!rows.empty())
    spdlog::info("usage journal: {} rows not written before the last stop recovered", rows.size());
  return true;
}

bool UsageFlush::CommitJournal(std::string* error) {
  if (!journal_) return true;
  usage_.JournalChanges(*journal_);
  return journal_->Commit(error);
}

bool UsageFlush::FlushAtShutdown() {
  try {
    return RunToCompletion(FlushPatiently());
  } catch (const std::exception& e) {
    spdlog::error("writing usage at shutdown failed: {}", e.what());
    return false;
  }
}

}  // namespace trl
