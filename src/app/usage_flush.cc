#include "app/usage_flush.h"

#include <spdlog/spdlog.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/run_to_completion.h"

namespace trl {

using namespace std::chrono_literals;

asio::awaitable<bool> UsageFlush::Flush() {
  std::vector<UsageRow> rows = usage_.TakePending();
  if (rows.empty()) co_return true;
  std::string error;
  bool ok = co_await sink_.Write(rows, &error);
  if (!ok) {
    spdlog::error("writing {} usage rows failed (kept for the next flush): {}", rows.size(), error);
    usage_.Restore(rows);
  }
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
