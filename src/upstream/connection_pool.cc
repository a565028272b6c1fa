#include "upstream/connection_pool.h"

#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace trl {
namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// A pooled connection the backend has closed (or sent stray bytes on) must not be reused.
bool StillOpen(UpstreamSocket& stream) {
  char byte;
  ssize_t n = ::recv(stream.socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

ConnectionPool& ConnectionPool::ForThisThread() {
  thread_local ConnectionPool pool;
  return pool;
}

asio::awaitable<beast::error_code> ConnectionPool::Acquire(const BackendUrl& backend,
                                                           std::chrono::milliseconds timeout,
                                                           bool fresh, UpstreamConnection& out) {
  if (!fresh) {
    auto it = idle_.find(backend.authority);
    if (it != idle_.end()) {
      const auto checked_since = std::chrono::steady_clock::now() - kCheckIdleAfter;
      while (!it->second.empty()) {
        Idle idle = std::move(it->second.back());
        it->second.pop_back();
        if (idle.since > checked_since || StillOpen(*idle.stream)) {
          out = UpstreamConnection{std::move(idle.stream), backend.authority, true};
          co_return beast::error_code{};
        }
      }
    }
  }
  auto executor = co_await asio::this_coro::executor;
  auto stream = std::make_unique<UpstreamSocket>(executor);
  stream->deadline.ExpiresAfter(timeout);
  beast::error_code ec;
  boost::system::error_code aec;
  auto address = asio::ip::make_address(backend.host, aec);
  if (!aec) {
    auto [cec] = co_await stream->socket.async_connect(
        asio::ip::tcp::endpoint(address, backend.port), kTuple);
    ec = cec;
  } else {
    asio::ip::tcp::resolver resolver(executor);
    auto [rec, results] =
        co_await resolver.async_resolve(backend.host, std::to_string(backend.port), kTuple);
    if (rec) co_return rec;
    // The lookup cannot be cancelled: past the deadline already, the connect is not tried.
    if (stream->deadline.Expired()) co_return asio::error::timed_out;
    auto [cec, endpoint] = co_await asio::async_connect(stream->socket, results, kTuple);
    ec = cec;
  }
  stream->deadline.Clear();
  if (ec) co_return stream->deadline.Expired() ? asio::error::timed_out : ec;
  stream->socket.set_option(asio::ip::tcp::no_delay(true));
  out = UpstreamConnection{std::move(stream), backend.authority, false};
  co_return beast::error_code{};
}

void ConnectionPool::Release(UpstreamConnection connection) {
  auto& idle = idle_[connection.pool_key];
  if (idle.size() < kMaxIdlePerBackend) {
    idle.push_back(Idle{std::move(connection.stream), std::chrono::steady_clock::now()});
  }
}

size_t ConnectionPool::IdleCount() const {
  size_t n = 0;
  for (const auto& [key, list] : idle_) n += list.size();
  return n;
}

}  // namespace trl
