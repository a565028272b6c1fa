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

asio::awaitable<bool> Probe(const BackendUrl& url, std::chrono::milliseconds timeout) {
  auto executor = co_await asio::this_coro::executor;
  asio::ip::tcp::resolver resolver(executor);
  auto [rec, results] = co_await resolver.async_resolve(url.host, std::to_string(url.port), kTuple);
  if (rec) co_return false;
  beast::tcp_stream stream(executor);
  stream.expires_after(timeout);
  auto [cec, ep] = co_await stream.async_connect(results, kTuple);
  if (cec) co_return false;
  bhttp::request<bhttp::empty_body> req{bhttp::verb::get, url.base_path + "/health", 11};
  req.set(bhttp::field::host, url.host + ":" + std::to_string(url.port));
  req.keep_alive(false);
  auto [wec, wn] = co_await bhttp::async_write(stream, req, kTuple);
  if (wec) co_return false;
  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> res;
  auto [hec, hn] = co_await bhttp::async_read(stream, buffer, res, kTuple);
  co_return !hec && res.result_int() == 200;
}

}  // namespace

asio::awaitable<void> RunHealthChecks(
    std::function<std::vector<std::shared_ptr<Backend>>()> backends,
    std::chrono::milliseconds interval, std::chrono::milliseconds timeout) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    for (const auto& backend : backends()) {
      bool ok = co_await Probe(backend->Url(), timeout);
      if (ok) {
        if (backend->ReportSuccess()) spdlog::info("backend {} is back up", backend->Url().url);
      } else if (backend->ReportFailure(std::chrono::steady_clock::now())) {
        spdlog::warn("backend {} failed its health check; taken out of rotation",
                     backend->Url().url);
      }
    }
    timer.expires_after(interval);
    auto [ec] = co_await timer.async_wait(kTuple);
    if (ec) co_return;
  }
}

}  // namespace trl
