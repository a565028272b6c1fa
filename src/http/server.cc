#include "http/server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/intrusive/list.hpp>
#include <iterator>
#include <optional>
#include <random>

#include "common/decimal.h"
#include "http/deadline.h"
#include "http/draining_buffer.h"
#include "http/socket_io.h"

namespace trl::http {
namespace {

using asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kHeadRead = 4096;                    // a request's first read: a page
constexpr size_t kLargeBodyRead = size_t{64} * 1024;  // see RunSession
// What Session::Drain reads and drops at most, and for how long.
constexpr uint64_t kDrainBytes = uint64_t{64} * 1024 * 1024;
constexpr auto kDrainTime = std::chrono::seconds(2);
// How long an accept loop waits when the server is full or an accept failed (AcceptLoop).
constexpr auto kAcceptPause = std::chrono::milliseconds(100);

// Request ids made up here: a per-process random prefix and a per-thread counter, so making one
// costs no lock and no syscall.
constexpr char kHex[] = "0123456789abcdef";

// Into `id` (a buffer reused across a connection's requests: an id is longer than a short string).
void MakeRequestId(std::string& id) {
  static const uint64_t kPrefix = std::random_device{}() ^ (uint64_t{std::random_device{}()} << 32);
  static std::atomic<uint32_t> thread_seq{0};
  thread_local uint64_t counter = uint64_t{thread_seq.fetch_add(1)} << 40;
  // "req-", 12 hex digits of the prefix, 14 of the counter (snprintf cost more than the rest
  // of the request head).
  id.assign(4 + 12 + 14, '0');
  id.replace(0, 4, "req-");
  auto put = [&](size_t end, int digits, uint64_t v) {
    for (int i = 0; i < digits; ++i, v >>= 4) id[end - 1 - i] = kHex[v & 0xf];
  };
  put(16, 12, kPrefix);
  put(30, 14, ++counter);
}

// The chunk-size line of a chunk of `size` bytes: hex digits and CRLF, into `buf`.
std::string_view ChunkSizeLine(size_t size, std::array<char, 20>& buf) {
  size_t i = buf.size();
  buf[--i] = '\n';
  buf[--i] = '\r';
  do {
    buf[--i] = kHex[size & 0xf];
    size >>= 4;
  } while (size != 0);
  return {buf.data() + i, buf.size() - i};
}

bool ValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

// No Transfer-Encoding, or exactly one naming "chunked" alone. Any other coding, list or repeat
// leaves the body without a length both ends agree on (RFC 9112, 6.3): a front proxy may read a
// body where the gateway reads the next request (request smuggling).
template <typename Fields>
bool FramingIsUnambiguous(const Fields& header) {
  auto [first, last] = header.equal_range(bhttp::field::transfer_encoding);
  if (first == last) return true;
  if (std::next(first) != last) return false;
  std::string_view coding = first->value();
  while (!coding.empty() && (coding.front() == ' ' || coding.front() == '\t')) {
    coding.remove_prefix(1);
  }
  while (!coding.empty() && (coding.back() == ' ' || coding.back() == '\t'))
    coding.remove_suffix(1);
  return beast::iequals(coding, "chunked");
}

class ClientPoll;

class Connection final : public ResponseWriter {
 public:
  Connection(tcp::socket& socket, Deadline& deadline, ClientPoll& poll,
             const ServerOptions& options, unsigned request_version, bool keep_alive,
             std::string_view request_id, std::string_view client_address, std::string& head_buffer)
      : socket_(socket),
        deadline_(deadline),
        poll_(poll),
        options_(options),
        close_delimited_(request_version < 11),
        keep_alive_(keep_alive),
        asked_to_close_(!keep_alive),
        request_id_(request_id),
        client_address_(client_address),
        head_(head_buffer) {}

  asio::awaitable<bool> Send(Response response, std::string_view head_lines) override {
    if (failed_) co_return false;
    const Decimal length(static_cast<int64_t>(response.body().size()));
    StartHead(response.base(), head_lines, "Content-Length", length.View());
    const std::array<asio::const_buffer, 2> buffers{asio::buffer(head_),
                                                    asio::buffer(response.body())};
    responded_ = true;
    co_return co_await Write(buffers);
  }

  asio::awaitable<bool> StartStream(unsigned status, Fields headers,
                                    std::string_view head_lines) override {
    if (failed_) co_return false;
    bhttp::response_header<> header(std::move(headers));
    header.result(status);
    if (close_delimited_) {
      // HTTP/1.0 has no chunks (RFC 9112, 7): the body is the bytes up to the close.
      header.version(10);
      keep_alive_ = false;
      StartHead(header, head_lines, {}, {});
    } else {
      header.version(11);
      StartHead(header, head_lines, "Transfer-Encoding", "chunked");
    }
    responded_ = true;
    streaming_ = true;
    const asio::const_buffer head = asio::buffer(head_);
    co_return co_await Write({&head, 1});
  }

  asio::awaitable<bool> WriteChunk(std::string_view data) override {
    if (failed_ || !streaming_) co_return false;
    if (data.empty()) co_return true;  // an empty chunk would end the body
    if (close_delimited_) {
      const asio::const_buffer bytes = asio::buffer(data);
      co_return co_await Write({&bytes, 1});
    }
    std::array<char, 20> size_line;
    const std::array<asio::const_buffer, 3> buffers{
        asio::buffer(ChunkSizeLine(data.size(), size_line)), asio::buffer(data),
        asio::buffer("\r\n", 2)};
    co_return co_await Write(buffers);
  }

  asio::awaitable<bool> FinishStream() override {
    if (failed_ || !streaming_) co_return false;
    streaming_ = false;
    if (close_delimited_) co_return true;  // the connection's close ends it
    static const asio::const_buffer kLastChunk = asio::buffer("0\r\n\r\n", 5);
    co_return co_await Write({&kLastChunk, 1});
  }

  void WatchClient(std::function<void()> gone) override;
  void UnwatchClient() override { watch_hook_.unlink(); }
  bool Cut() const override { return cut_; }

  std::string_view RequestId() const override { return request_id_; }
  std::string_view ClientAddress() const override { return client_address_; }

  bool Reusable() const { return !failed_ && !streaming_ && responded_ && keep_alive_; }
  bool Responded() const { return responded_; }

 private:
  // Writes under the write timeout; a failed write fails the connection.
  asio::awaitable<bool> Write(std::span<const asio::const_buffer> buffers) {
    deadline_.ExpiresAfter(options_.write_timeout);
    const beast::error_code ec = co_await WriteAll(socket_, buffers);
    deadline_.Clear();
    if (ec) failed_ = true;
    co_return !failed_;
  }

  // The head into head_: the handler's status, fields and head lines, then ours (the request
  // id, the body's framing, Connection), as Beast's set/keep_alive/prepare_payload would have.
  void StartHead(const bhttp::response_header<>& header, std::string_view head_lines,
                 std::string_view framing, std::string_view value) {
    head_.clear();
    AppendResponseHead(head_, header);
    head_.append(head_lines);
    AppendField(head_, "x-request-id", request_id_);
    if (!framing.empty()) AppendField(head_, framing, value);
    if (header.version() >= 11 && !keep_alive_) AppendField(head_, "Connection", "close");
    if (header.version() < 11 && keep_alive_) AppendField(head_, "Connection", "keep-alive");
    head_.append(std::string_view("\r\n"));
  }

  tcp::socket& socket_;
  Deadline& deadline_;
  ClientPoll& poll_;  // the session's thread's (use_service takes a lock: once per session)
  const ServerOptions& options_;
  const bool close_delimited_;  // an HTTP/1.0 request: a stream's body ends with the connection
  bool keep_alive_;
  const bool asked_to_close_;        // the request did: a FIN from it may be a half-close
  std::string_view request_id_;      // the session's buffer
  std::string_view client_address_;  // the session's
  bool failed_ = false;
  bool streaming_ = false;
  bool responded_ = false;
  bool cut_ = false;   // ClientPoll::CutAll
  std::string& head_;  // the session's buffer for the response head

  friend class ClientPoll;
  boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>>
      watch_hook_;  // in its thread's ClientPoll while watched
  std::function<void()> gone_;
};

// The watched clients of one io_context, and the timer that polls them while there are any.
class ClientPoll final : public asio::execution_context::service {
 public:
  using key_type = ClientPoll;
  static asio::execution_context::id id;
  explicit ClientPoll(asio::execution_context& context)
      : asio::execution_context::service(context) {}

  void Add(Connection& connection) {
    watched_.push_back(connection);
    if (!timer_) timer_.emplace(connection.socket_.get_executor());
    if (cutting_) {
      // Told to stop as soon as the caller has set up what `gone` cancels.
      asio::post(connection.socket_.get_executor(), [this] { CutAll(); });
      return;
    }
    if (!polling_) Schedule();
  }

  // Server::CutInFlight, on this context's thread: every watched response is cut, and every
  // one watched from now on.
  void CutAll() {
    cutting_ = true;
    while (!watched_.empty()) {
      Connection& c = watched_.front();
      watched_.pop_front();
      c.cut_ = true;
      c.gone_();
    }
  }

 private:
  using List = boost::intrusive::list<
      Connection,
      boost::intrusive::member_hook<Connection, decltype(Connection::watch_hook_),
                                    &Connection::watch_hook_>,
      boost::intrusive::constant_time_size<false>>;

  void shutdown() override { timer_.reset(); }

  void Schedule() {
    polling_ = true;
    timer_->expires_after(ResponseWriter::kClientPollInterval);
    timer_->async_wait([this](boost::system::error_code ec) {
      polling_ = false;
      if (ec) return;
      Poll();
      if (!watched_.empty()) Schedule();
    });
  }

  // A client is there while its connection is established, whatever it sent since its request
  // (the bytes of a pipelined next one do not hide a close behind them: the TCP state is read,
  // not the bytes). After its FIN (CLOSE_WAIT) it is gone, unless its request asked to close
  // the connection: such a client may have only half-closed and still be reading (RFC 9112,
  // 9.6); a write to one that has gone fails. A reset, or any other state, is gone.
  void Poll() {
    for (auto it = watched_.begin(); it != watched_.end();) {
      Connection& c = *it;
      tcp_info info{};
      socklen_t size = sizeof info;
      const bool read =
          ::getsockopt(c.socket_.native_handle(), IPPROTO_TCP, TCP_INFO, &info, &size) == 0;
      const bool there = read && (info.tcpi_state == TCP_ESTABLISHED ||
                                  (info.tcpi_state == TCP_CLOSE_WAIT && c.asked_to_close_));
      if (there) {
        ++it;
        continue;
      }
      it = watched_.erase(it);
      c.failed_ = true;
      // The callback may unwatch or end the exchange: it runs after the connection is unlinked.
      c.gone_();
    }
  }

  List watched_;
  std::optional<asio::steady_timer> timer_;
  bool polling_ = false;
  bool cutting_ = false;
};

asio::execution_context::id ClientPoll::id;

void Connection::WatchClient(std::function<void()> gone) {
  gone_ = std::move(gone);
  watch_hook_.unlink();
  poll_.Add(*this);
}

// The answer to a request that could not be read (ReadMessage's error), 0 for none: the client
// left, or sent nothing more.
unsigned ReadErrorStatus(const beast::error_code& ec, bool expired, ReadUntil until) {
  const bool head = until == ReadUntil::kHeader;
  if (head && ec == bhttp::error::header_limit) return 431;
  // Beast checks Content-Length against the body limit while parsing the header.
  if (ec == bhttp::error::body_limit) return 413;
  if (expired) return 408;
  const bool left = ec == asio::error::eof || ec == asio::error::connection_reset ||
                    (head && ec == bhttp::error::end_of_stream);
  return left ? 0 : 400;
}

// One client connection: its requests read, handed to the handler and answered, one after the
// other, as long as they keep the connection alive. Lives in RunSession's coroutine frame and
// runs on the socket's executor only. What it keeps across requests (the read buffer, the
// response head, the request id, the field arena) is reused while the connection is busy and
// given back while it idles.
class Session {
 public:
  Session(tcp::socket socket, std::shared_ptr<Server::State> state)
      : socket_(std::move(socket)),
        state_(std::move(state)),
        options_(state_->options),
        deadline_(socket_),
        poll_(asio::use_service<ClientPoll>(
            asio::query(socket_.get_executor(), asio::execution::context))),
        // Bounds what a client can make us hold: one header block plus read-ahead of pipelined
        // bytes.
        buffer_(options_.max_header_bytes + 64 * 1024) {
    const size_t open = state_->open_connections.fetch_add(1) + 1;
    size_t peak = state_->peak_connections.load();
    while (open > peak && !state_->peak_connections.compare_exchange_weak(peak, open)) {
    }
  }
  ~Session() {
    state_->open_connections.fetch_sub(1);
    state_->connection_slots.fetch_sub(1);
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  asio::awaitable<void> Run();

 private:
  bool Stopping() const { return state_->stopping.load(std::memory_order_relaxed); }
  // Until the next request's first bytes are in buffer_. False: the connection ends.
  asio::awaitable<bool> AwaitRequest();
  // An idle connection's wait, holding no buffer, for up to `wait`; `held`: how long it had
  // waited holding them.
  asio::awaitable<beast::error_code> WaitIdle(std::chrono::milliseconds wait,
                                              std::chrono::milliseconds held);
  // The next request, head and body, into parser_; an unreadable one is answered here (4xx).
  // False: the connection ends.
  asio::awaitable<bool> ReadRequest();
  // Its x-request-id when valid, else a new one, into request_id_.
  void TakeRequestId();
  // Room for the body about to be read, and then for the padding after it.
  void PrepareBody();
  void FinishBody();
  asio::awaitable<void> WriteError(unsigned status, std::string_view request_id);
  // After an error answer to a request the client may still be sending (a body over the limit,
  // headers too large): closing with its bytes unread would send a reset, which can destroy the
  // answer before the client reads it. So, with the gateway's side already ended, what the
  // client sends is read and dropped until its end, kDrainBytes or kDrainTime.
  asio::awaitable<void> Drain();

  tcp::socket socket_;
  std::shared_ptr<Server::State> state_;
  const ServerOptions& options_;
  Deadline deadline_;
  ClientPoll& poll_;
  beast::flat_buffer buffer_;
  std::string head_buffer_;  // response heads, reused across the connection's requests
  std::string request_id_;   // the same for request ids
  // The current request's header fields. None while waiting for a request: an idle connection
  // should hold as little as it can (the arena is 2 KiB; each request takes one at its start).
  std::unique_ptr<FieldArena> fields_;
  using Parser = bhttp::request_parser<RequestBody, FieldAllocator<char>>;
  std::optional<Parser> parser_;  // the current request's, until it is handled
  bool first_ = true;
  // Whether the connection's last wait between two requests was shorter than the hold: only a
  // busy connection (and a fresh one, for its first request) keeps its buffers while it waits.
  bool busy_ = false;
  bool large_body_ = false;     // the current request's body is read into a larger buffer
  bool refused_ = false;        // WriteError answered a request that may still be arriving
  std::string client_address_;  // the peer's, once per connection
};

asio::awaitable<void> Session::Run() {
  socket_.set_option(tcp::no_delay(true));
  beast::error_code ec;
  const tcp::endpoint peer = socket_.remote_endpoint(ec);
  if (!ec) client_address_ = peer.address().to_string();
  while (!Stopping()) {
    if (buffer_.size() == 0 && !co_await AwaitRequest()) break;
    first_ = false;
    if (!co_await ReadRequest()) break;
    Request request = parser_->release();
    const bool keep_alive = request.keep_alive() && !Stopping();
    Connection connection(socket_, deadline_, poll_, options_, request.version(), keep_alive,
                          request_id_, client_address_, head_buffer_);
    state_->active_requests.fetch_add(1);
    co_await state_->handler(request, connection);
    state_->active_requests.fetch_sub(1);
    parser_.reset();
    if (large_body_) buffer_.shrink_to_fit();
    if (!connection.Reusable()) break;
  }
  beast::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_send, ignored);
  if (refused_) {
    co_await Drain();
  }
  socket_.close(ignored);
}

asio::awaitable<void> Session::Drain() {
  std::array<char, size_t{16} * 1024> sink;
  uint64_t drained = 0;
  deadline_.ExpiresAfter(kDrainTime);
  while (drained < kDrainBytes) {
    auto [ec, n] = co_await socket_.async_read_some(asio::buffer(sink), kTuple);
    if (ec) break;  // the client's end (or the deadline)
    drained += n;
  }
  deadline_.Clear();
}

asio::awaitable<bool> Session::AwaitRequest() {
  fields_.reset();
  // The next request of a busy connection is read into the buffer as it comes. A connection
  // idle for longer than the hold, or not busy before, gives its buffers back (the 4 KiB read
  // buffer, the last response's head and request id) and waits holding none: a connection that
  // made one request and went quiet holds none from the start.
  const auto timeout = first_ ? options_.header_timeout : options_.idle_timeout;
  const auto hold =
      first_ || busy_ ? std::min(timeout, options_.idle_buffer_hold) : std::chrono::milliseconds(0);
  beast::error_code ec = asio::error::timed_out;
  bool held_out = true;  // the hold passed with nothing read
  if (hold.count() != 0) {
    deadline_.ExpiresAfter(hold);
    // Through DrainingBuffer, as every read of the request before: a read that drained the
    // socket leaves this one to wait for its next event, with no recv first. Were the client's
    // end of stream to have come unreported with the last request's bytes, it is seen when the
    // hold runs out and ReadWhenReady asks the reactor afresh.
    auto [rec, n] =
        co_await socket_.async_read_some(DrainingBuffer{buffer_.prepare(kHeadRead)}, kTuple);
    buffer_.commit(n);
    ec = rec;
    held_out = ec == asio::error::operation_aborted && deadline_.Expired();
  }
  busy_ = !first_ && !held_out;
  if (held_out && hold < timeout) {
    ec = co_await WaitIdle(timeout - hold, hold);
  }
  deadline_.Clear();
  co_return !ec;
}

asio::awaitable<beast::error_code> Session::WaitIdle(std::chrono::milliseconds wait,
                                                     std::chrono::milliseconds held) {
  buffer_.shrink_to_fit();
  std::string().swap(head_buffer_);
  std::string().swap(request_id_);
  deadline_.ExpiresAfter(wait);
  const auto since = std::chrono::steady_clock::now();
  state_->idle_connections.fetch_add(1);
  const beast::error_code ec = co_await ReadWhenReady(socket_, buffer_, kHeadRead);
  state_->idle_connections.fetch_sub(1);
  busy_ = !first_ && std::chrono::steady_clock::now() - since + held < options_.idle_buffer_hold;
  co_return ec;
}

asio::awaitable<bool> Session::ReadRequest() {
  if (!fields_) fields_ = std::make_unique<FieldArena>();
  parser_.emplace(std::piecewise_construct, std::make_tuple(),
                  std::make_tuple(FieldAllocator<char>(fields_.get())));
  parser_->header_limit(options_.max_header_bytes);
  parser_->body_limit(options_.max_body_bytes);
  deadline_.ExpiresAfter(options_.header_timeout);
  const beast::error_code hec =
      co_await ReadMessage(socket_, buffer_, *parser_, ReadUntil::kHeader);
  if (hec) {
    const unsigned status = ReadErrorStatus(hec, deadline_.Expired(), ReadUntil::kHeader);
    if (status != 0) {
      co_await WriteError(status, {});
    }
    co_return false;
  }
  TakeRequestId();
  if (!FramingIsUnambiguous(parser_->get())) {
    co_await WriteError(400, request_id_);
    co_return false;
  }
  // Refuse an oversized body before reading any of it.
  if (auto length = parser_->content_length(); length && *length > options_.max_body_bytes) {
    co_await WriteError(413, request_id_);
    co_return false;
  }
  PrepareBody();
  if (!parser_->is_done()) {
    deadline_.ExpiresAfter(options_.header_timeout);
    const beast::error_code bec =
        co_await ReadMessage(socket_, buffer_, *parser_, ReadUntil::kMessage);
    if (bec) {
      const unsigned status = ReadErrorStatus(bec, deadline_.Expired(), ReadUntil::kMessage);
      if (status != 0) {
        co_await WriteError(status, request_id_);
      }
      co_return false;
    }
  }
  deadline_.Clear();
  FinishBody();
  co_return true;
}

void Session::FinishBody() {
  std::string& body = parser_->get().body();
  if (options_.body_padding != 0 && body.capacity() - body.size() < options_.body_padding) {
    body.reserve(body.size() + options_.body_padding);
  }
}

void Session::TakeRequestId() {
  const auto& header = parser_->get();
  if (auto it = header.find("x-request-id"); it != header.end() && ValidRequestId(it->value())) {
    request_id_.assign(it->value());
  } else {
    MakeRequestId(request_id_);
  }
}

void Session::PrepareBody() {
  const auto length = parser_->content_length();  // boost::optional
  // The body's buffer grows as its bytes arrive (RequestBody): a client that announces a large
  // body and sends little makes the gateway hold little. When the body is small enough to have
  // its room reserved whole, the padding's is reserved with it; FinishBody makes it otherwise.
  if (length && options_.body_padding != 0 && *length <= kLargeBodyRead) {
    parser_->get().body().reserve(*length + options_.body_padding);
  }
  // Beast reads into the buffer's free room: a large body is read 64 KiB at a time, not in the
  // 4 KiB of a head (a read and a pass of the event loop each), and the room is given back after
  // the request, so that an idle connection stays small.
  large_body_ = length.value_or(0) > buffer_.capacity();
  if (large_body_) buffer_.reserve(std::min<size_t>(*length, kLargeBodyRead));
}

asio::awaitable<void> Session::WriteError(unsigned status, std::string_view request_id) {
  Response res = state_->errors(status);
  std::string made;
  if (request_id.empty()) MakeRequestId(made);
  res.set("x-request-id", request_id.empty() ? std::string_view(made) : request_id);
  res.keep_alive(false);
  res.prepare_payload();
  deadline_.ExpiresAfter(options_.write_timeout);
  co_await bhttp::async_write(socket_, res, kTuple);
  deadline_.Clear();
  refused_ = status != 408;  // a client that timed out is not sending
}

asio::awaitable<void> RunSession(tcp::socket socket, std::shared_ptr<Server::State> state) {
  Session session(std::move(socket), std::move(state));
  co_await session.Run();
}

// Accepts while fewer than max_connections are open (a slot is reserved before each accept).
// A full server, or an accept that failed (out of descriptors or memory: an error it cannot
// clear by retrying at once), waits kAcceptPause before it tries again: the connections it has
// are served meanwhile, and new ones wait in the listen backlog.
asio::awaitable<void> AcceptLoop(std::shared_ptr<tcp::acceptor> acceptor,
                                 std::shared_ptr<Server::State> state) {
  asio::steady_timer pause(acceptor->get_executor());
  for (;;) {
    if (state->connection_slots.fetch_add(1) < state->options.max_connections) {
      auto [ec, socket] = co_await acceptor->async_accept(kTuple);
      if (!ec) {
        asio::co_spawn(acceptor->get_executor(), RunSession(std::move(socket), state),
                       asio::detached);  // the session gives the slot back
        continue;
      }
      state->connection_slots.fetch_sub(1);
      if (ec == asio::error::operation_aborted || !acceptor->is_open()) co_return;
      state->accept_failures.fetch_add(1);
    } else {
      state->connection_slots.fetch_sub(1);
    }
    pause.expires_after(kAcceptPause);
    co_await pause.async_wait(kTuple);
    if (!acceptor->is_open()) co_return;
  }
}

}  // namespace

void AppendResponseHead(std::string& out, const bhttp::response_header<>& header) {
  out.append(std::string_view(header.version() == 10 ? "HTTP/1.0 " : "HTTP/1.1 ", 9));
  std::array<char, 4> code;
  unsigned status = header.result_int();
  code[0] = static_cast<char>('0' + status / 100 % 10);
  code[1] = static_cast<char>('0' + status / 10 % 10);
  code[2] = static_cast<char>('0' + status % 10);
  code[3] = ' ';
  out.append(code.data(), code.size());
  out.append(header.reason()).append(std::string_view("\r\n"));
  for (const auto& field : header) AppendField(out, field.name_string(), field.value());
}

Server::Server(std::vector<asio::any_io_executor> executors, ServerOptions options, Handler handler,
               ErrorResponder errors)
    : executors_(std::move(executors)), state_(std::make_shared<State>()) {
  state_->options = options;
  state_->handler = std::move(handler);
  state_->errors = std::move(errors);
}

Server::~Server() = default;

tcp::endpoint Server::Listen(const std::string& host, uint16_t port) {
  tcp::endpoint endpoint(asio::ip::make_address(host), port);
  if (!state_->options.share_port && port != 0) {
    // The acceptors' SO_REUSEPORT (one per thread) would as well join another process's on this
    // port and share its connections; a plain bind fails with EADDRINUSE instead. (A process
    // binding in the instant between the probe and the acceptors could still join: the
    // gateway's data_dir lock refuses a second one on the same store regardless.)
    tcp::acceptor probe(executors_.front(), endpoint.protocol());
    probe.set_option(asio::socket_base::reuse_address(true));
    probe.bind(endpoint);
  }
  for (auto& executor : executors_) {
    auto acceptor = std::make_shared<tcp::acceptor>(executor);
    acceptor->open(endpoint.protocol());
    acceptor->set_option(asio::socket_base::reuse_address(true));
    int one = 1;
    ::setsockopt(acceptor->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    acceptor->bind(endpoint);
    acceptor->listen(asio::socket_base::max_listen_connections);
    endpoint = acceptor->local_endpoint();  // the rest share the port the first one got
    acceptors_.push_back(std::move(acceptor));
  }
  return endpoint;
}

void Server::Start() {
  for (auto& acceptor : acceptors_) {
    asio::co_spawn(acceptor->get_executor(), AcceptLoop(acceptor, state_), asio::detached);
  }
}

void Server::CutInFlight() {
  for (auto& executor : executors_) {
    asio::post(executor, [executor] {
      asio::use_service<ClientPoll>(asio::query(executor, asio::execution::context)).CutAll();
    });
  }
}

void Server::StopAccepting() {
  state_->stopping.store(true);
  for (auto& acceptor : acceptors_) {
    asio::post(acceptor->get_executor(), [acceptor] {
      beast::error_code ignored;
      acceptor->close(ignored);
    });
  }
}

}  // namespace trl::http
