// A model backend on a real loopback socket (127.0.0.1, port 0) that answers each request with
// the raw bytes a test scripted: a JSON answer, an SSE stream in chunks, an error status, a
// compressed answer, a stream broken off, or nothing at all. It keeps every request it read, and
// counts the connections it accepted and closed, so that a test waits for events (run the
// io_context until a count moves), never for time.
//
// Threading: its coroutines run on the io_context given to it, which the test runs on one thread.
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"

namespace trl::testing {

class FakeBackend {
 public:
  struct Reply {
    std::string raw;     // written as it is: status line, head and body
    bool close = false;  // the connection is closed once it is written (whatever its head says)
    bool hang = false;   // nothing more is written or read on this connection
  };
  struct Received {
    std::string target;
    std::string body;
    boost::beast::http::fields headers;
  };

  explicit FakeBackend(boost::asio::io_context& io)
      : acceptor_(io, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    boost::asio::co_spawn(io, Accept(), boost::asio::detached);
  }
  ~FakeBackend() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    for (auto& socket : sockets_) socket->close(ignored);
  }
  FakeBackend(const FakeBackend&) = delete;
  FakeBackend& operator=(const FakeBackend&) = delete;

  // A 200 JSON answer whose body is `json`.
  static Reply Json(const std::string& json, unsigned status = 200) {
    return {"HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\n" +
            "Content-Length: " + std::to_string(json.size()) + "\r\n\r\n" + json};
  }
  // A 200 event stream's head, then each of `events` ("data: ...\n\n") as a chunk of its own;
  // `finished`: the last chunk too.
  static Reply Stream(const std::vector<std::string>& events, bool finished = true) {
    std::string raw =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (const std::string& e : events) raw += Hex(e.size()) + "\r\n" + e + "\r\n";
    if (finished) raw += "0\r\n\r\n";
    return {raw};
  }

  BackendUrl Url() const {
    const uint16_t port = acceptor_.local_endpoint().port();
    const std::string authority = "127.0.0.1:" + std::to_string(port);
    return {"http://" + authority, "127.0.0.1", port, "", authority};
  }
  // Played in order; once none is left, each request gets Json("{}").
  void Push(Reply reply) { script_.push_back(std::move(reply)); }
  const std::vector<Received>& received() const { return received_; }
  int accepted() const { return accepted_; }
  int closed() const { return closed_; }

 private:
  using Socket = boost::asio::ip::tcp::socket;

  static std::string Hex(size_t n) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    do {
      out.insert(out.begin(), kDigits[n % 16]);
      n /= 16;
    } while (n != 0);
    return out;
  }

  boost::asio::awaitable<void> Accept() {
    for (;;) {
      auto socket = std::make_shared<Socket>(acceptor_.get_executor());
      boost::system::error_code ec;
      co_await acceptor_.async_accept(*socket,
                                      boost::asio::redirect_error(boost::asio::use_awaitable, ec));
      if (ec) co_return;
      ++accepted_;
      sockets_.push_back(socket);
      boost::asio::co_spawn(acceptor_.get_executor(), Serve(socket), boost::asio::detached);
    }
  }

  boost::asio::awaitable<void> Serve(std::shared_ptr<Socket> socket) {
    boost::beast::flat_buffer buffer;
    for (;;) {
      boost::beast::http::request<boost::beast::http::string_body> request;
      boost::system::error_code ec;
      co_await boost::beast::http::async_read(
          *socket, buffer, request, boost::asio::redirect_error(boost::asio::use_awaitable, ec));
      if (ec) break;
      received_.push_back({std::string(request.target()), request.body(), request.base()});
      Reply reply = script_.empty() ? Json("{}") : std::move(script_.front());
      if (!script_.empty()) script_.pop_front();
      co_await boost::asio::async_write(
          *socket, boost::asio::buffer(reply.raw),
          boost::asio::redirect_error(boost::asio::use_awaitable, ec));
      if (ec || reply.close) break;
      if (reply.hang) {
        char byte;  // completes when the peer or the destructor closes the connection
        co_await socket->async_read_some(
            boost::asio::buffer(&byte, 1),
            boost::asio::redirect_error(boost::asio::use_awaitable, ec));
        break;
      }
    }
    boost::system::error_code ignored;
    socket->shutdown(Socket::shutdown_both, ignored);
    socket->close(ignored);
    ++closed_;
  }

  boost::asio::ip::tcp::acceptor acceptor_;
  std::vector<std::shared_ptr<Socket>> sockets_;
  std::deque<Reply> script_;
  std::vector<Received> received_;
  int accepted_ = 0;
  int closed_ = 0;
};

// A loopback URL nothing listens on (a port bound, then closed): connecting to it is refused.
inline BackendUrl RefusingBackendUrl() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor closed(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const uint16_t port = closed.local_endpoint().port();
  const std::string authority = "127.0.0.1:" + std::to_string(port);
  return {"http://" + authority, "127.0.0.1", port, "", authority};
}

}  // namespace trl::testing
