// The HTTP/1.1 server: accepts connections on every worker executor, reads requests with
// deadlines and size limits, and hands each one to a Handler. It knows nothing of models,
// limits or stores (STYLE.md): the handler decides everything about a request.
//
// Threading: each connection lives on one executor (one io_context per worker thread) for its
// whole life; a Handler runs there too. Start/StopAccepting/counters are thread-safe.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "http/field_arena.h"

namespace trl::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

// A request's body: a std::string, as bhttp::string_body, but read into a buffer that grows as
// its bytes arrive. (string_body reserves the whole Content-Length before any byte has come: a
// client that announces 4 MiB and sends nothing would make the gateway hold 4 MiB.)
struct RequestBody {
  using value_type = std::string;
  using writer = bhttp::string_body::writer;
  // Beast's names for a body type's parts.
  static std::uint64_t size(const value_type& body) {  // NOLINT(readability-identifier-naming)
    return body.size();
  }

  class reader  // NOLINT(readability-identifier-naming)
      : public bhttp::string_body::reader {
   public:
    template <bool kIsRequest, class Fields>
    reader(bhttp::header<kIsRequest, Fields>& header, value_type& body)
        : bhttp::string_body::reader(header, body), body_(body) {}
    // Hides string_body::reader::init (Beast calls it by name): reserves at most kFirstReserve.
    void init(const boost::optional<std::uint64_t>& length, beast::error_code& ec) {
      if (length) body_.reserve(std::min<std::uint64_t>(*length, kFirstReserve));
      ec = {};
    }

   private:
    static constexpr std::uint64_t kFirstReserve = std::uint64_t{64} * 1024;
    value_type& body_;
  };
};

// A request's header fields live in its connection's FieldArena (on the heap for a Request made
// elsewhere).
using Request = bhttp::request<RequestBody, bhttp::basic_fields<FieldAllocator<char>>>;
using Response = bhttp::response<bhttp::string_body>;
using Fields = bhttp::fields;

// Writing heads by hand: what Beast's serializer writes, without walking its buffer-sequence
// adaptors (8% of a proxied request's CPU in the profile). Field names and values come from
// Beast's parser or from the gateway itself, so they hold no CR or LF.
inline void AppendField(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(std::string_view(": ")).append(value).append(std::string_view("\r\n"));
}
// "HTTP/1.1 200 OK\r\n" and every field; the caller adds its own fields and the empty line.
void AppendResponseHead(std::string& out, const bhttp::response_header<>& header);

// The value of the first `name` field (a known one, not field::unknown), or "". Beast's
// find(field) looks the name up by its text in a case-insensitive tree (~500 instructions);
// the parser stored each field's enum, and a message has a handful of fields.
template <class Allocator>
std::string_view FieldValue(const bhttp::basic_fields<Allocator>& fields, bhttp::field name) {
  for (const auto& f : fields) {
    if (f.name() == name) return f.value();
  }
  return {};
}

struct ServerOptions {
  uint64_t max_body_bytes = uint64_t{4} * 1024 * 1024;
  uint32_t max_header_bytes = 16 * 1024;
  std::chrono::milliseconds header_timeout{
      10'000};  // headers (and then the body) must arrive in time
  std::chrono::milliseconds idle_timeout{60'000};   // keep-alive wait for the next request
  std::chrono::milliseconds write_timeout{30'000};  // every write to the client
  // A busy connection (its last wait between two requests was shorter) waiting this long for
  // its next request gives back its buffers and waits on holding none; any other connection
  // does so at once. An idle connection costs little, a busy one pays nothing per request.
  // 0: waits hold none.
  std::chrono::milliseconds idle_buffer_hold{1'000};
  // Spare capacity after a request body of known length, for a parser that reads past the end
  // (simdjson's padding): reserved with the body, so the handler need not copy it to get it.
  size_t body_padding = 0;
  // Open client connections at most: past it, new ones wait in the listen backlog until one
  // closes (each open connection holds a descriptor, and one more to its backend while a
  // request is in flight).
  size_t max_connections = 10'000;
  // false: Listen fails (EADDRINUSE) on a port another socket already listens on. true: it joins
  // another process's SO_REUSEPORT listeners there, and the kernel spreads connections over all.
  bool share_port = false;
};

// How a handler answers. Either Send one whole response, or StartStream, WriteChunk..., then
// FinishStream (chunked transfer encoding, each chunk written as it comes: backpressure is the
// awaited write; to an HTTP/1.0 client the bytes as they are, ended by closing the connection).
// Every call returns false once the client is gone; the handler should then stop. Used only on the
// connection's executor, by one handler at a time.
class ResponseWriter {
 public:
  virtual ~ResponseWriter() = default;
  // `head_lines` ("name: value\r\n" each) go into the head as they are, after `response`'s
  // own fields: headers the handler formatted once, without a field allocation each.
  virtual asio::awaitable<bool> Send(Response response, std::string_view head_lines = {}) = 0;
  virtual asio::awaitable<bool> StartStream(unsigned status, Fields headers,
                                            std::string_view head_lines = {}) = 0;
  virtual asio::awaitable<bool> WriteChunk(std::string_view data) = 0;
  virtual asio::awaitable<bool> FinishStream() = 0;
  // Watches the client while the response is produced (the proxy watches it for a whole
  // exchange, so that a backend does not generate for nobody): calls `gone` at most once, on
  // the connection's executor, if the client closes its side or the connection fails before
  // UnwatchClient. The clients watched on a thread are polled every kClientPollInterval (each
  // socket's TCP state): a syscall per watched client per interval instead of an epoll
  // registration, a cancellation and two completions per request. A client that sends its
  // next request early (pipelining) is still there. A client whose request asked to close the
  // connection may close its side and still read (a half-close): only a reset makes it gone.
  static constexpr std::chrono::milliseconds kClientPollInterval{100};
  virtual void WatchClient(std::function<void()> gone) = 0;
  virtual void UnwatchClient() = 0;
  // True once the server is cutting the watched response short (Server::CutInFlight): `gone`
  // was called, but the client is still there. Stop producing, end the response properly (a
  // stream with an error event and its last chunk), and return.
  virtual bool Cut() const = 0;
  // The request id: the request's x-request-id, or one made up here. Set on every response.
  virtual std::string_view RequestId() const = 0;
  // The client's address, as the connection's peer: "192.0.2.7", "::1" ("" if unknown).
  virtual std::string_view ClientAddress() const = 0;
};

using Handler = std::function<asio::awaitable<void>(Request&, ResponseWriter&)>;
// Builds the response for failures the HTTP layer answers itself: 400 (unparsable request),
// 408 (headers or body too slow), 413 (body too large), 431 (headers too large).
using ErrorResponder = std::function<Response(unsigned status)>;

class Server {
 public:
  Server(std::vector<asio::any_io_executor> executors, ServerOptions options, Handler handler,
         ErrorResponder errors);
  ~Server();

  // Binds one SO_REUSEPORT acceptor per executor on host:port (port 0: any free port, shared by
  // all acceptors); a port in use fails unless ServerOptions::share_port. Returns the bound
  // endpoint. Throws on failure (startup only).
  asio::ip::tcp::endpoint Listen(const std::string& host, uint16_t port);
  // Starts the accept loops. Call once, after Listen.
  void Start();
  // Stops accepting and tells every connection to close after its current response.
  void StopAccepting();
  // After StopAccepting, when the grace for requests in flight is over: every watched response
  // (a handler waiting on its upstream) is told to stop now (ResponseWriter::Cut, its `gone`
  // callback), and so is every one that starts watching from then on. Thread-safe; returns at
  // once (the handlers finish on their own threads).
  void CutInFlight();
  size_t ActiveRequests() const { return state_->active_requests.load(); }
  size_t OpenConnections() const { return state_->open_connections.load(); }
  // The most connections open at once so far.
  size_t PeakConnections() const { return state_->peak_connections.load(); }
  // Accepts that failed (out of descriptors or memory: EMFILE, ENFILE, ENOBUFS, ENOMEM).
  uint64_t AcceptFailures() const { return state_->accept_failures.load(); }
  // Connections waiting for their next request holding no buffers: past
  // ServerOptions::idle_buffer_hold, or at once for one that was not busy.
  size_t IdleConnections() const { return state_->idle_connections.load(); }

  struct State {
    ServerOptions options;
    Handler handler;
    ErrorResponder errors;
    std::atomic<bool> stopping{false};
    std::atomic<size_t> active_requests{0};
    std::atomic<size_t> open_connections{0};
    std::atomic<size_t> peak_connections{0};
    // Connections accepted or being accepted: reserved before each accept, so that the accept
    // loops of every thread together stay within max_connections.
    std::atomic<size_t> connection_slots{0};
    std::atomic<uint64_t> accept_failures{0};
    std::atomic<size_t> idle_connections{0};
  };

 private:
  std::vector<asio::any_io_executor> executors_;
  std::shared_ptr<State> state_;
  std::vector<std::shared_ptr<asio::ip::tcp::acceptor>> acceptors_;
};

}  // namespace trl::http
