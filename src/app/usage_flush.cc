#include "app/usage_flush.h"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
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
  std::vector<UsageRow> rows = usage_.TakePending();
  if (rows.empty()) co_return true;
  writing_ = true;
  std::string error;
  bool ok = false;
  try {
    ok = co_await sink_.Write(rows, &error);
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (!ok) {
    spdlog::error("writing {} usage rows failed (kept for the next flush): {}", rows.size(), error);
    usage_.Restore(rows);
  }
  writing_ = false;
  for (asio::steady_timer* turn : std::exchange(waiting_, {})) turn->cancel();
  co_return ok;
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

bool UsageFlush::FlushAtShutdown() {
  try {
    return RunToCompletion(FlushPatiently());
  } catch (const std::exception& e) {
    spdlog::error("writing usage at shutdown failed: {}", e.what());
    return false;
  }
}

}  // namespace trl
