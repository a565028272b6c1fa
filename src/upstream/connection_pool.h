// Keep-alive connections to backends, one pool per I/O thread (connections never cross threads,
// so the pool needs no lock). A connection goes back to the pool only after a complete exchange.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "http/deadline.h"
#include "http/field_arena.h"

namespace trl {

namespace asio = boost::asio;
namespace beast = boost::beast;

// A socket to a backend and the deadline of its operations (never moved: the deadline refers to
// the socket).
struct UpstreamSocket {
  // Beast reads into a buffer's free room, at least 512 bytes: a stream sent faster than it is
  // relayed would cost a read, a parse pass, a client write and a wake-up per 512 bytes (nginx
  // reads a backend's answer a page at a time too, proxy_buffer_size).
  static constexpr size_t kReadSize = 4096;

  explicit UpstreamSocket(const asio::any_io_executor& executor)
      : socket(executor), deadline(socket) {
    buffer.reserve(kReadSize);
  }
  asio::ip::tcp::socket socket;
  http::Deadline deadline;
  // What was read from the backend and not parsed yet; empty between exchanges. Kept with the
  // connection so that its room is reused from one answer to the next.
  boost::beast::flat_buffer buffer;
  // The header fields of the answer being read.
  http::FieldArena fields;
};

struct UpstreamConnection {
  std::unique_ptr<UpstreamSocket> stream;
  std::string pool_key;  // host:port
  bool reused = false;   // came from the pool (may have been closed by the backend meanwhile)
};

// Used only on the I/O thread that owns it (ForThisThread).
class ConnectionPool {
 public:
  static constexpr size_t kMaxIdlePerBackend = 256;
  // A connection idle for less than this is reused without first checking that the backend
  // has not closed it (a syscall per request): backends close idle connections after seconds
  // (uvicorn: 5 s), and the rare one closed sooner fails before any answer byte, which the
  // caller retries on a fresh connection.
  static constexpr std::chrono::milliseconds kCheckIdleAfter{1000};

  static ConnectionPool& ForThisThread();

  // An idle pooled connection to `backend`, or a new one. `fresh` skips the pool (a retry after
  // a pooled connection turned out closed). Fails with the connect error (no byte was sent).
  asio::awaitable<beast::error_code> Acquire(const BackendUrl& backend,
                                             std::chrono::milliseconds connect_timeout, bool fresh,
                                             UpstreamConnection& out);
  // Returns a connection after a complete request/response with keep-alive.
  void Release(UpstreamConnection connection);
  size_t IdleCount() const;

 private:
  struct Idle {
    std::unique_ptr<UpstreamSocket> stream;
    std::chrono::steady_clock::time_point since;
  };
  std::unordered_map<std::string, std::vector<Idle>> idle_;
};

}  // namespace trl
