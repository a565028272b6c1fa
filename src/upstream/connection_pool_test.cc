#include "upstream/connection_pool.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <optional>

#include "fakes/fake_backend.h"

namespace trl {
namespace {

using tcp = asio::ip::tcp;
constexpr std::chrono::milliseconds kConnectTimeout{5000};

// A loopback listener (port 0) whose connections the kernel completes by itself: nothing is
// ever accepted or answered, which is all a pool needs.
struct Listener {
  asio::io_context io;
  tcp::acceptor acceptor{io, {asio::ip::make_address("127.0.0.1"), 0}};

  BackendUrl Url(std::string host = "127.0.0.1") const {
    const uint16_t port = acceptor.local_endpoint().port();
    return {"http://" + host, host, port, "", host + ":" + std::to_string(port)};
  }
};

class ConnectionPoolTest : public ::testing::Test {
 protected:
  // Acquire on the test's io_context (the pool's sockets live there), run until it is done
  // (the connect deadline's timer stays behind).
  beast::error_code Acquire(const BackendUrl& url, bool fresh, UpstreamConnection& out) {
    std::optional<beast::error_code> result;
    asio::co_spawn(io_, pool_.Acquire(url, kConnectTimeout, fresh, out),
                   [&](std::exception_ptr, beast::error_code ec) { result = ec; });
    while (!result) io_.run_one();
    return *result;
  }

  Listener listener_;
  asio::io_context io_;
  ConnectionPool pool_;
};

TEST_F(ConnectionPoolTest, AReleasedConnectionIsTheNextOneAcquired) {
  UpstreamConnection first;
  ASSERT_FALSE(Acquire(listener_.Url(), false, first));
  EXPECT_FALSE(first.reused);
  EXPECT_EQ(first.pool_key, listener_.Url().authority);
  const UpstreamSocket* socket = first.stream.get();
  pool_.Release(std::move(first));
  EXPECT_EQ(pool_.IdleCount(), 1u);

  UpstreamConnection second;
  ASSERT_FALSE(Acquire(listener_.Url(), false, second));
  EXPECT_TRUE(second.reused);
  EXPECT_EQ(second.stream.get(), socket);
  EXPECT_EQ(pool_.IdleCount(), 0u);
}

TEST_F(ConnectionPoolTest, FreshSkipsTheIdleConnections) {
  UpstreamConnection first;
  ASSERT_FALSE(Acquire(listener_.Url(), false, first));
  const UpstreamSocket* socket = first.stream.get();
  pool_.Release(std::move(first));

  UpstreamConnection fresh;
  ASSERT_FALSE(Acquire(listener_.Url(), true, fresh));
  EXPECT_FALSE(fresh.reused);
  EXPECT_NE(fresh.stream.get(), socket);
  EXPECT_EQ(pool_.IdleCount(), 1u);  // the pooled one is still there
}

TEST_F(ConnectionPoolTest, EachBackendHasItsOwnIdleConnections) {
  Listener other;
  UpstreamConnection a;
  ASSERT_FALSE(Acquire(listener_.Url(), false, a));
  pool_.Release(std::move(a));

  UpstreamConnection b;
  ASSERT_FALSE(Acquire(other.Url(), false, b));
  EXPECT_FALSE(b.reused);
  EXPECT_EQ(b.pool_key, other.Url().authority);
  EXPECT_EQ(pool_.IdleCount(), 1u);
}

TEST_F(ConnectionPoolTest, ARefusedConnectionIsAnError) {
  UpstreamConnection conn;
  const beast::error_code ec = Acquire(testing::RefusingBackendUrl(), false, conn);
  EXPECT_EQ(ec, asio::error::connection_refused);
  EXPECT_EQ(conn.stream, nullptr);
  EXPECT_EQ(pool_.IdleCount(), 0u);
}

TEST_F(ConnectionPoolTest, AHostNameIsResolved) {
  UpstreamConnection conn;
  ASSERT_FALSE(Acquire(listener_.Url("localhost"), false, conn));
  ASSERT_NE(conn.stream, nullptr);
  EXPECT_EQ(conn.stream->socket.remote_endpoint().port(), listener_.Url().port);
}

TEST_F(ConnectionPoolTest, IdleConnectionsPerBackendAreBounded) {
  std::vector<UpstreamConnection> open(ConnectionPool::kMaxIdlePerBackend + 1);
  for (UpstreamConnection& conn : open) ASSERT_FALSE(Acquire(listener_.Url(), true, conn));
  for (UpstreamConnection& conn : open) pool_.Release(std::move(conn));
  EXPECT_EQ(pool_.IdleCount(), ConnectionPool::kMaxIdlePerBackend);
}

}  // namespace
}  // namespace trl
