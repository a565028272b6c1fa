#include "app/health_checker.h"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <string>
#include <unordered_map>

namespace trl {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// A probe's outcome, and why it failed ("connect: Connection refused", "no answer within 1s",
// "GET /health answered HTTP 404").
struct ProbeResult {
  enum Kind { kOk, kFailed, kTimedOut } kind = kOk;
  std::string reason;
};

ProbeResult Failed(const char* step, const beast::error_code& ec,
                   std::chrono::milliseconds timeout) {
  if (ec == beast::error::timeout) {
    return {ProbeResult::kTimedOut, "no answer within " + FormatDuration(timeout)};
  }
  return {ProbeResult::kFailed, std::string(step) + ": " + ec.message()};
}

asio::awaitable<ProbeResult> Probe(const BackendUrl& url, std::chrono::milliseconds timeout) {
  auto executor = co_await asio::this_coro::executor;
  asio::ip::tcp::resolver resolver(executor);
  auto [rec, results] = co_await resolver.async_resolve(url.host, std::to_string(url.port), kTuple);
  if (rec) co_return Failed("resolve", rec, timeout);
  beast::tcp_stream stream(executor);
  stream.expires_after(timeout);
  auto [cec, ep] = co_await stream.async_connect(results, kTuple);
  if (cec) co_return Failed("connect", cec, timeout);
  const std::string target = url.base_path + "/health";
  bhttp::request<bhttp::empty_body> req{bhttp::verb::get, target, 11};
  req.set(bhttp::field::host, url.host + ":" + std::to_string(url.port));
  req.keep_alive(false);
  auto [wec, wn] = co_await bhttp::async_write(stream, req, kTuple);
  if (wec) co_return Failed("send", wec, timeout);
  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> res;
  auto [hec, hn] = co_await bhttp::async_read(stream, buffer, res, kTuple);
  if (hec) co_return Failed("read", hec, timeout);
  if (res.result_int() == 200) co_return ProbeResult{};
  co_return ProbeResult{ProbeResult::kFailed,
                        "GET " + target + " answered HTTP " + std::to_string(res.result_int())};
}

// Logs what the probes find out: a backend taken out or brought back, and, while it is down, a
// reason not logged yet (a backend a request took out then fails its probes; a refused connection
// becomes a 404). Steady failures are logged once, not at every interval.
class HealthLog {
 public:
  void Ok(const Backend& backend, bool back_up) {
    reasons_.erase(backend.Url().url);
    if (back_up) spdlog::info("backend {} is back up", backend.Url().url);
  }
  void Failed(const Backend& backend, bool taken_out, const std::string& reason) {
    const std::string& url = backend.Url().url;
    if (taken_out) {
      spdlog::warn("backend {} is down: its health check failed ({}); taken out of rotation", url,
                   reason);
    } else if (!backend.Up() && reasons_[url] != reason) {
      spdlog::warn("backend {} is still down: its health check failed ({})", url, reason);
    } else if (backend.Up()) {
      return;  // a slow probe of a backend still up (BackendHealth::kSlowEjectAfter)
    }
    reasons_[url] = reason;
  }

 private:
  std::unordered_map<std::string, std::string> reasons_;  // by URL: the last reason logged
};

}  // namespace

asio::awaitable<void> RunHealthChecks(
    std::function<std::vector<std::shared_ptr<Backend>>()> backends,
    std::chrono::milliseconds interval, std::chrono::milliseconds timeout) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  HealthLog log;
  for (;;) {
    for (const auto& backend : backends()) {
      ProbeResult result = co_await Probe(backend->Url(), timeout);
      if (result.kind == ProbeResult::kOk) {
        log.Ok(*backend, backend->ReportSuccess());
        continue;
      }
      // A probe that timed out is a busy backend as often as a dead one: see BackendHealth.
      auto kind = result.kind == ProbeResult::kTimedOut ? BackendHealth::Failure::kSlow
                                                        : BackendHealth::Failure::kHard;
      log.Failed(*backend, backend->ReportFailure(std::chrono::steady_clock::now(), kind),
                 result.reason);
    }
    timer.expires_after(interval);
    auto [ec] = co_await timer.async_wait(kTuple);
    if (ec) co_return;
  }
}

}  // namespace trl
