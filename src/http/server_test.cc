#include "http/server.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <functional>
#include <optional>
#include <sstream>
#include <thread>

namespace trl::http {
namespace {

// The head written by hand must be byte for byte what Beast's serializer writes.
std::string BeastHead(const bhttp::response_header<>& header) {
  std::ostringstream out;
  out << header;
  return out.str();
}

std::string OurHead(const bhttp::response_header<>& header) {
  std::string out;
  AppendResponseHead(out, header);
  return out + "\r\n";
}

TEST(AppendResponseHead, MatchesBeastsSerializer) {
  Response ok{bhttp::status::ok, 11};
  ok.set(bhttp::field::content_type, "application/json");
  ok.set("x-ratelimit-remaining-tokens", "99989");
  ok.body() = R"({"a":1})";
  ok.prepare_payload();
  EXPECT_EQ(OurHead(ok.base()), BeastHead(ok.base()));
  EXPECT_EQ(OurHead(ok.base()),
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            "x-ratelimit-remaining-tokens: 99989\r\nContent-Length: 7\r\n\r\n");

  Response limited{bhttp::status::too_many_requests, 11};
  limited.set(bhttp::field::retry_after, "3");
  limited.keep_alive(false);
  EXPECT_EQ(OurHead(limited.base()), BeastHead(limited.base()));

  bhttp::response<bhttp::empty_body> stream{bhttp::status::ok, 11};
  stream.chunked(true);
  EXPECT_EQ(OurHead(stream.base()), BeastHead(stream.base()));

  Response old{bhttp::status::service_unavailable, 10};
  EXPECT_EQ(OurHead(old.base()), BeastHead(old.base()));
  EXPECT_EQ(OurHead(old.base()).substr(0, 34), "HTTP/1.0 503 Service Unavailable\r\n");
}

// A server on one I/O thread whose handler answers "echo:" and the request's body.
class ServerTest : public ::testing::Test {
 protected:
  void Start(std::chrono::milliseconds idle_buffer_hold,
             std::chrono::milliseconds idle_timeout = std::chrono::seconds(60),
             size_t max_connections = ServerOptions().max_connections) {
    ServerOptions options;
    options.idle_buffer_hold = idle_buffer_hold;
    options.idle_timeout = idle_timeout;
    options.max_connections = max_connections;
    options.body_padding = 64;  // as the gateway asks (simdjson's padding)
    server_.emplace(
        std::vector<asio::any_io_executor>{io_.get_executor()}, options,
        [](Request& request, ResponseWriter& writer) -> asio::awaitable<void> {
          if (request.target() == "/watch") {  // works for 5 polls, watching the client
            co_await Watched(writer);
            co_return;
          }
          if (request.target() == "/stream") {  // two pieces, "a" then "b"
            co_await writer.StartStream(200, {}, "");
            co_await writer.WriteChunk("a");
            co_await writer.WriteChunk("b");
            co_await writer.FinishStream();
            co_return;
          }
          Response response{bhttp::status::ok, 11};
          response.body() = "echo:" + request.body();
          co_await writer.Send(std::move(response));
        },
        [](unsigned status) {
          return Response{static_cast<bhttp::status>(status), 11};
        });
    endpoint_ = server_->Listen("127.0.0.1", 0);
    server_->Start();
    thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

  // A handler that watches its client while it works (as the proxy does while its backend
  // generates): for five poll intervals, then answers "served"; or, told the client is gone,
  // stops at once and answers nothing. (Timers of one io_context run in the order they expire:
  // the polls come first.)
  static asio::awaitable<void> Watched(ResponseWriter& writer) {
    asio::steady_timer work(co_await asio::this_coro::executor);
    bool gone = false;
    writer.WatchClient([&] {
      gone = true;
      work.cancel();
    });
    work.expires_after(5 * ResponseWriter::kClientPollInterval);
    co_await work.async_wait(asio::as_tuple(asio::use_awaitable));
    writer.UnwatchClient();
    if (gone) co_return;
    Response response{bhttp::status::ok, 11};
    response.body() = "served";
    co_await writer.Send(std::move(response));
  }

  asio::ip::tcp::socket Connect() {
    asio::ip::tcp::socket socket(client_io_);
    socket.connect(endpoint_);
    return socket;
  }

  static std::string Post(std::string_view body) {
    return "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n\r\n" + std::string(body);
  }

  // The next response's body, or the error that ended the connection instead.
  static std::string Receive(asio::ip::tcp::socket& socket, beast::flat_buffer& buffer) {
    Response response;
    beast::error_code ec;
    bhttp::read(socket, buffer, response, ec);
    if (ec) return "error: " + ec.message();
    return response.body();
  }

  // Polls `condition` until it holds, for a bounded while: the server's thread changes what it
  // looks at. Returns whether it came to hold.
  static bool Eventually(const std::function<bool()>& condition) {
    for (int i = 0; i < 5000 && !condition(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return condition();
  }
  bool IdleConnectionsReach(size_t n) {
    return Eventually([&] { return server_->IdleConnections() == n; });
  }

  // Sends a request with `body` and returns the answer's body (or the error).
  static std::string Ask(asio::ip::tcp::socket& socket, beast::flat_buffer& buffer,
                         std::string_view body) {
    asio::write(socket, asio::buffer(Post(body)));
    return Receive(socket, buffer);
  }

  asio::io_context io_{1};
  asio::io_context client_io_;
  std::optional<Server> server_;
  asio::ip::tcp::endpoint endpoint_;
  std::thread thread_;
};

TEST_F(ServerTest, AConnectionIdlePastTheHoldServesItsNextRequests) {
  Start(std::chrono::milliseconds(200));
  auto socket = Connect();
  beast::flat_buffer buffer;
  // Two requests back to back make the connection busy: its next wait holds the buffers for
  // the 200 ms of the hold, then gives them back.
  EXPECT_EQ(Ask(socket, buffer, "one"), "echo:one");
  EXPECT_EQ(Ask(socket, buffer, "two"), "echo:two");
  ASSERT_TRUE(IdleConnectionsReach(1)) << "the connection kept its buffers";
  // A request in two pieces: the wait reads the head, the body comes after.
  const std::string two = Post("second");
  asio::write(socket, asio::buffer(two.substr(0, 20)));
  asio::write(socket, asio::buffer(two.substr(20)));
  EXPECT_EQ(Receive(socket, buffer), "echo:second");
  ASSERT_TRUE(IdleConnectionsReach(1));
  // Two pipelined requests in one write.
  asio::write(socket, asio::buffer(Post("3") + Post("4")));
  EXPECT_EQ(Receive(socket, buffer), "echo:3");
  EXPECT_EQ(Receive(socket, buffer), "echo:4");
  EXPECT_EQ(server_->OpenConnections(), 1u);
}

// A client that sends its last request and its end of stream together: the read of that
// request takes the end of stream along, unreported (http/draining_buffer.h), and the wait for
// a next request relies on the reactor's next event. The connection is still closed when the
// hold runs out, not at the idle timeout.
TEST_F(ServerTest, AClientThatSendsItsEndWithItsLastRequestIsClosedAfterTheHold) {
  Start(std::chrono::milliseconds(200), std::chrono::minutes(10));
  auto socket = Connect();
  beast::flat_buffer buffer;
  EXPECT_EQ(Ask(socket, buffer, "one"), "echo:one");
  EXPECT_EQ(Ask(socket, buffer, "two"), "echo:two");  // busy: the next wait holds
  ASSERT_TRUE(Eventually([&] { return server_->OpenConnections() == 1; }));
  // Corked, the request's bytes wait to go out with the end of stream, in one segment.
  const int on = 1;
  ASSERT_EQ(setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_CORK, &on, sizeof on), 0);
  asio::write(socket, asio::buffer(Post("last")));
  socket.shutdown(asio::ip::tcp::socket::shutdown_send);
  EXPECT_EQ(Receive(socket, buffer), "echo:last");
  // Bounded, so that a server waiting for its idle timeout fails the test instead of hanging it.
  Response end;
  std::optional<beast::error_code> ended;
  bhttp::async_read(socket, buffer, end, [&](beast::error_code ec, size_t) { ended = ec; });
  client_io_.restart();
  client_io_.run_for(std::chrono::seconds(10));
  ASSERT_TRUE(ended) << "the connection was left open";
  EXPECT_EQ(*ended, bhttp::error::end_of_stream) << ended->message();
}

TEST_F(ServerTest, AConnectionQuietAfterItsFirstRequestHoldsNothingWhileItWaits) {
  // A connection has to be busy to keep its buffers through the hold: after one request it has
  // not been, so it gives them back at once, however long the hold.
  Start(std::chrono::seconds(60));
  auto socket = Connect();
  beast::flat_buffer buffer;
  EXPECT_EQ(Ask(socket, buffer, "one"), "echo:one");
  ASSERT_TRUE(IdleConnectionsReach(1)) << "the connection kept its buffers";
  EXPECT_EQ(Ask(socket, buffer, "two"), "echo:two");
}

TEST_F(ServerTest, WaitsThatHoldNoBufferStillEndAtTheIdleTimeout) {
  Start(std::chrono::milliseconds(0), std::chrono::milliseconds(50));  // every wait holds none
  auto socket = Connect();
  beast::flat_buffer buffer;
  EXPECT_EQ(Ask(socket, buffer, "one"), "echo:one");
  EXPECT_EQ(Ask(socket, buffer, "two"), "echo:two");
  // Then nothing: the server closes the connection at the idle timeout.
  EXPECT_EQ(Receive(socket, buffer),
            "error: " + beast::error_code(bhttp::error::end_of_stream).message());
}

TEST_F(ServerTest, AClientThatLeavesWhileIdleIsForgotten) {
  Start(std::chrono::milliseconds(0));
  {
    auto socket = Connect();
    beast::flat_buffer buffer;
    EXPECT_EQ(Ask(socket, buffer, "one"), "echo:one");
    ASSERT_TRUE(IdleConnectionsReach(1));
  }  // closed
  EXPECT_TRUE(IdleConnectionsReach(0));
  EXPECT_TRUE(Eventually([&] { return server_->OpenConnections() == 0; }));
}

// Request smuggling: a Transfer-Encoding other than exactly "chunked" gives the body no reliable
// length (RFC 9112, 6.3), so the request is refused with 400 and the connection closed: the
// bytes after the head never become a request of their own.
TEST_F(ServerTest, ATransferEncodingOtherThanChunkedIsRefusedAndClosesTheConnection) {
  Start(std::chrono::milliseconds(200));
  const std::string smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
  for (std::string coding : {"chunked, gzip", "gzip, chunked", "identity", "gzip", "chunked,",
                             "chunked\r\nTransfer-Encoding: chunked"}) {
    SCOPED_TRACE(coding);
    auto socket = Connect();
    asio::write(socket, asio::buffer("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " +
                                     coding + "\r\n\r\n0\r\n\r\n" + smuggled));
    beast::flat_buffer buffer;
    Response response;
    beast::error_code ec;
    bhttp::read(socket, buffer, response, ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(response.result_int(), 400u);
    EXPECT_FALSE(response.keep_alive());
    bhttp::read(socket, buffer, response, ec);
    EXPECT_EQ(ec, bhttp::error::end_of_stream) << "a second answer: " << response.body();
  }
  // "chunked" alone, in any case, is the framing it names.
  auto socket = Connect();
  beast::flat_buffer buffer;
  asio::write(socket, asio::buffer(std::string("POST /echo HTTP/1.1\r\nHost: x\r\n"
                                               "Transfer-Encoding:  Chunked \r\n\r\n"
                                               "2\r\nhi\r\n0\r\n\r\n")));
  EXPECT_EQ(Receive(socket, buffer), "echo:hi");
}

// HTTP/1.0 has no chunked encoding (RFC 9112, 7): a stream to a 1.0 client is its bytes as they
// are, and the connection's close ends the body.
TEST_F(ServerTest, AStreamToAnHttp10ClientIsCloseDelimited) {
  Start(std::chrono::milliseconds(200));
  auto socket = Connect();
  asio::write(socket, asio::buffer(std::string("GET /stream HTTP/1.0\r\nHost: x\r\n\r\n")));
  std::string received;
  beast::error_code ec;
  asio::read(socket, asio::dynamic_buffer(received), ec);
  EXPECT_EQ(ec, asio::error::eof);
  const size_t end_of_head = received.find("\r\n\r\n");
  ASSERT_NE(end_of_head, std::string::npos) << received;
  const std::string head = received.substr(0, end_of_head);
  EXPECT_TRUE(head.starts_with("HTTP/1.0 200 OK\r\n")) << head;
  EXPECT_EQ(head.find("Transfer-Encoding"), std::string::npos) << head;
  EXPECT_EQ(head.find("keep-alive"), std::string::npos) << head;
  EXPECT_EQ(received.substr(end_of_head + 4), "ab");

  // HTTP/1.1 keeps its chunks, and the connection.
  auto again = Connect();
  asio::write(again, asio::buffer(std::string("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")));
  beast::flat_buffer buffer;
  EXPECT_EQ(Receive(again, buffer), "ab");
  EXPECT_EQ(Ask(again, buffer, "next"), "echo:next");
}

// Past server.max_connections the server accepts no more: a new connection waits in the listen
// backlog until one of those open closes, then is served.
TEST_F(ServerTest, ConnectionsPastTheBoundWaitForOneToClose) {
  Start(std::chrono::milliseconds(200), std::chrono::seconds(60), /*max_connections=*/2);
  beast::flat_buffer b1, b2, b3;
  auto first = Connect();
  auto second = Connect();
  EXPECT_EQ(Ask(first, b1, "1"), "echo:1");
  EXPECT_EQ(Ask(second, b2, "2"), "echo:2");
  auto third = Connect();  // the kernel completes it; the server does not take it yet
  asio::write(third, asio::buffer(Post("3")));
  EXPECT_EQ(Ask(first, b1, "again"), "echo:again");  // the open ones are still served
  EXPECT_EQ(server_->OpenConnections(), 2u);
  second.close();
  EXPECT_EQ(Receive(third, b3), "echo:3");
  EXPECT_EQ(server_->PeakConnections(), 2u);
}

// Out of descriptors (EMFILE), the accept loop pauses instead of retrying at once (which spun
// every I/O thread at 100% while the connections it had were idle), and serves a waiting
// connection once a descriptor is free again.
TEST_F(ServerTest, OutOfDescriptorsTheAcceptLoopPausesAndRecovers) {
  Start(std::chrono::milliseconds(200));
  {
    // The client's io_context makes its reactor's descriptors on first use, and UBSan checks a
    // type's first use by writing to a pipe: both happen here, before descriptors run out.
    auto warm = Connect();
    beast::flat_buffer buffer;
    EXPECT_EQ(Ask(warm, buffer, "warm"), "echo:warm");
  }
  ASSERT_TRUE(Eventually([&] { return server_->OpenConnections() == 0; }));
  // The lowest descriptor limit that leaves 5 free: two clients and their two accepted sockets,
  // then a third client whose accept fails. Put back however the test ends.
  struct Limit {
    rlimit before{};
    Limit() { getrlimit(RLIMIT_NOFILE, &before); }
    ~Limit() { setrlimit(RLIMIT_NOFILE, &before); }
  } limit;
  rlimit low = limit.before;
  for (int fd = 0, free = 0; free < 5; ++fd) {
    if (fcntl(fd, F_GETFD) == -1) ++free;
    low.rlim_cur = fd + 1;
  }
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  auto first = Connect();
  ASSERT_TRUE(Eventually([&] { return server_->OpenConnections() == 1; }));
  auto second = Connect();
  ASSERT_TRUE(Eventually([&] { return server_->OpenConnections() == 2; }));
  auto waiting = Connect();
  const bool failed = Eventually([&] { return server_->AcceptFailures() > 0; });
  // While the descriptors are out, the connections already open are served (20 exchanges: a
  // loop that retried at once failed at least once between any two of them), and the accept
  // is retried after a pause each time: once or twice in that while.
  const uint64_t failures = server_->AcceptFailures();
  beast::flat_buffer b1;
  for (int i = 0; i < 20; ++i) EXPECT_EQ(Ask(first, b1, "busy"), "echo:busy");
  const uint64_t failures_while_busy = server_->AcceptFailures() - failures;
  asio::write(waiting, asio::buffer(Post("waited")));
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &limit.before), 0);
  ASSERT_TRUE(failed);
  EXPECT_LE(failures_while_busy, 2u);
  beast::flat_buffer buffer;
  EXPECT_EQ(Receive(waiting, buffer), "echo:waited");
}

// A body's buffer grows as its bytes arrive: a client that announces a large Content-Length and
// sends one byte holds little (each connection reserved its whole Content-Length at once).
TEST_F(ServerTest, ABodysBufferGrowsAsItsBytesArrive) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "mallinfo2 does not see the sanitizers' allocator";
#endif
  Start(std::chrono::milliseconds(200));
  auto allocated = [] {
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;  // small blocks, and large ones mapped on their own
  };
  const size_t before = allocated();
  std::vector<asio::ip::tcp::socket> announced;
  for (int i = 0; i < 16; ++i) {
    announced.push_back(Connect());
    asio::write(announced.back(), asio::buffer(std::string("POST /echo HTTP/1.1\r\nHost: x\r\n"
                                                           "Content-Length: 4000000\r\n\r\nx")));
  }
  // Answered after the server has read the heads above (one I/O thread; their bytes came
  // first).
  ASSERT_TRUE(Eventually([&] { return server_->OpenConnections() == 16; }));
  auto probe = Connect();
  beast::flat_buffer buffer;
  EXPECT_EQ(Ask(probe, buffer, "probe"), "echo:probe");
  const size_t held = allocated() - before;
  EXPECT_LT(held, size_t{8} * 1024 * 1024);  // reserved whole, 16 x 4 MB
}

// A client that closes its sending side after its request (a FIN; some clients do) is gone when
// it asked to keep the connection (it can send no next request), but may still be reading when
// it asked to close it: then its answer is written, as RFC 9112 9.6 allows.
TEST_F(ServerTest, AHalfClosedClientThatAskedToCloseIsStillAnswered) {
  Start(std::chrono::milliseconds(200));
  auto closing = Connect();
  asio::write(closing, asio::buffer(std::string("GET /watch HTTP/1.1\r\nHost: x\r\n"
                                                "Connection: close\r\n\r\n")));
  closing.shutdown(asio::ip::tcp::socket::shutdown_send);
  beast::flat_buffer buffer;
  EXPECT_EQ(Receive(closing, buffer), "served");

  auto keeping = Connect();
  asio::write(keeping, asio::buffer(std::string("GET /watch HTTP/1.1\r\nHost: x\r\n\r\n")));
  keeping.shutdown(asio::ip::tcp::socket::shutdown_send);
  beast::flat_buffer kept;
  EXPECT_EQ(Receive(keeping, kept), "error: end of stream");  // gone: nothing generated for it
}

// The first byte of a pipelined next request does not end the watch: a client that then
// leaves is still seen to go.
TEST_F(ServerTest, AClientThatPipelinesAByteAndLeavesIsSeenToGo) {
  Start(std::chrono::milliseconds(200));
  auto socket = Connect();
  asio::write(socket, asio::buffer(std::string("GET /watch HTTP/1.1\r\nHost: x\r\n\r\n")));
  // Once the handler works (its request read), the first byte of the next request, then the
  // client's FIN.
  ASSERT_TRUE(Eventually([&] { return server_->ActiveRequests() == 1; }));
  asio::write(socket, asio::buffer(std::string("G")));
  socket.shutdown(asio::ip::tcp::socket::shutdown_send);
  beast::flat_buffer buffer;
  EXPECT_EQ(Receive(socket, buffer), "error: end of stream");

  // Still there with a pipelined request: answered, then the next one is.
  auto staying = Connect();
  asio::write(staying,
              asio::buffer(std::string("GET /watch HTTP/1.1\r\nHost: x\r\n\r\n") + Post("next")));
  beast::flat_buffer stayed;
  EXPECT_EQ(Receive(staying, stayed), "served");
  EXPECT_EQ(Receive(staying, stayed), "echo:next");
}

// A 413 answered while the client is still sending its body reaches it: the gateway ends its side
// and reads (and drops) the rest before closing. Closing with the bytes unread sent a reset, and
// a client that sends its whole request before it reads the answer (most do) failed its write
// with "connection reset" and never read the 413.
TEST_F(ServerTest, A413Or431SentWhileTheClientStillSendsReachesIt) {
  Start(std::chrono::milliseconds(200));
  const size_t length = 8 * 1024 * 1024;
  const std::string large_body =  // over the 4 MiB max_body_bytes
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(length) + "\r\n\r\n" +
      std::string(length, 'x');
  const std::string large_head =  // over the 16 KiB max_header_bytes
      "POST /echo HTTP/1.1\r\nHost: x\r\nX-Large: " + std::string(length, 'x') + "\r\n\r\n";
  for (auto [request, status] : {std::pair{large_body, 413u}, std::pair{large_head, 431u}}) {
    SCOPED_TRACE(status);
    auto socket = Connect();
    beast::error_code sent;
    asio::write(socket, asio::buffer(request), sent);
    EXPECT_FALSE(sent) << sent.message();
    socket.shutdown(asio::ip::tcp::socket::shutdown_send, sent);
    beast::flat_buffer buffer;
    Response response;
    beast::error_code ec;
    bhttp::read(socket, buffer, response, ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(response.result_int(), status);
  }
}

}  // namespace
}  // namespace trl::http
