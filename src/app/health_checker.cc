#include "app/health_checker.h"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

namespace trl {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

enum class ProbeResult { kOk, kFailed, kTimedOut };

ProbeResult Outcome(const beast::error_code& ec) {
  return ec == beast::error::timeout ? ProbeResult::kTimedOut : ProbeResult::kFailed;
}

asio::awaitable<ProbeResult> Probe(const BackendUrl& url, std::chrono::milliseconds timeout) {
  auto executor = co_await asio::this_coro::executor;
  asio::ip::tcp::resolver resolver(executor);
  auto [rec, results] = co_await resolver.async_resolve(url.host, std::to_string(url.port), kTuple);
  if (rec) co_return ProbeResult::kFailed;
  beast::tcp_stream stream(executor);
  stream.expires_after(timeout);
  auto [cec, ep] = co_await stream.async_connect(results, kTuple);
  if (cec) co_return Outcome(cec);
  bhttp::request<bhttp::empty_body> req{bhttp::verb::get, url.base_path + "/health", 11};
  req.set(bhttp::field::host, url.host + ":" + std::to_string(url.port));
  req.keep_alive(false);
  auto [wec, wn] = co_await bhttp::async_write(stream, req, kTuple);
  if (wec) co_return Outcome(wec);
  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> res;
  auto [hec, hn] = co_await bhttp::async_read(stream, buffer, res, kTuple);
  if (hec) co_return Outcome(hec);
  co_return res.result_int() == 200 ? ProbeResult::kOk : ProbeResult::kFailed;
}

}  // namespace

asio::awaitable<void> RunHealthChecks(
    std::function<std::vector<std::shared_ptr<Backend>>()> backends,
    std::chrono::milliseconds interval, std::chrono::milliseconds timeout) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    for (const auto& backend : backends()) {
      ProbeResult result = co_await Probe(backend->Url(), timeout);
      if (result == ProbeResult::kOk) {
        if (backend->ReportSuccess()) spdlog::info("backend {} is back up", backend->Url().url);
        continue;
      }
      // A probe that timed out is a busy backend as often as a dead one: see BackendHealth.
      auto kind = result == ProbeResult::kTimedOut ? BackendHealth::Failure::kSlow
                                                   : BackendHealth::Failure::kHard;
      if (backend->ReportFailure(std::chrono::steady_clock::now(), kind)) {
        const char* why =
            result == ProbeResult::kTimedOut ? " (no answer in time, repeatedly)" : "";
        spdlog::warn("backend {} failed its health check{}; taken out of rotation",
                     backend->Url().url, why);
      }
    }
    timer.expires_after(interval);
    auto [ec] = co_await timer.async_wait(kTuple);
    if (ec) co_return;
  }
}

}  // namespace trl
