#include "redis/redis_connection.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <optional>

namespace trl::redis {

namespace {
constexpr std::string_view kAsking = "*1\r\n$6\r\nASKING\r\n";
}  // namespace

// A call waiting for its reply. The timer doubles as the wake-up: the reader cancels it when
// the reply arrives; if it fires first, the deadline has passed.
struct Connection::Pending {
  explicit Pending(const Executor& executor) : timer(executor) {}
  asio::steady_timer timer;
  bool done = false;
  CallStatus status = CallStatus::kTimeout;
  ReplyPtr reply;
};

// One TCP (or TLS) connection attempt and its buffers. Handlers hold it by shared_ptr, so a
// transport that was dropped stays alive until its last operation has completed (an SSL stream
// must not be destroyed under a pending operation).
struct Connection::Transport {
  Transport(const Executor& executor, asio::ssl::context* tls_context) : socket(executor) {
    if (tls_context) tls.emplace(executor, *tls_context);
  }
  asio::ip::tcp::socket& Lowest() { return tls ? tls->next_layer() : socket; }
  void Close() {
    boost::system::error_code ec;
    Lowest().close(ec);
  }
  template <typename Handler>
  void ReadSome(Handler&& handler) {
    if (tls) {
      tls->async_read_some(asio::buffer(read_buf), std::forward<Handler>(handler));
    } else {
      socket.async_read_some(asio::buffer(read_buf), std::forward<Handler>(handler));
    }
  }
  template <typename Handler>
  void Write(Handler&& handler) {
    if (tls) {
      asio::async_write(*tls, asio::buffer(write_buf), std::forward<Handler>(handler));
    } else {
      asio::async_write(socket, asio::buffer(write_buf), std::forward<Handler>(handler));
    }
  }

  asio::ip::tcp::socket socket;  // plain connections
  std::optional<asio::ssl::stream<asio::ip::tcp::socket>> tls;
  std::array<char, size_t{16} * 1024> read_buf;
  std::string write_buf;
  bool writing = false;
};

Connection::Connection(const Executor& executor, ConnectionOptions options)
    : executor_(executor),
      options_(std::move(options)),
      address_(options_.url.Address()),
      connect_timer_(executor),
      backoff_timer_(executor),
      resolver_(executor),
      counters_(options_.counters ? options_.counters : std::make_shared<ConnectionCounters>()) {}

Connection::~Connection() {
  if (transport_) transport_->Close();
}

void Connection::Start() {
  if (state_ == State::kIdle) StartConnect();
}

void Connection::Close() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  DropTransport();
  backoff_timer_.cancel();
  resolver_.cancel();
}

asio::awaitable<CallResult> Connection::Call(std::string_view command, SteadyTime deadline,
                                             bool asking) {
  auto self = shared_from_this();  // a caller may outlive the owner's reference
  if (state_ == State::kIdle) StartConnect();
  if (Down() || fifo_.size() + (asking ? 1 : 0) >= options_.max_pending) {
    counters_->rejected.fetch_add(1, std::memory_order_relaxed);
    co_return CallResult{CallStatus::kUnavailable, nullptr};
  }
  auto pending = std::make_shared<Pending>(executor_);
  const SteadyTime now = std::chrono::steady_clock::now();
  if (asking) Push(kAsking, Entry{nullptr, Internal::kAsking, now});
  Push(command, Entry{pending, Internal::kNone, now});
  pending->timer.expires_at(deadline);
  boost::system::error_code ec;
  co_await pending->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (!pending->done) {
    pending->done = true;
    pending->status = CallStatus::kTimeout;
    counters_->timeouts.fetch_add(1, std::memory_order_relaxed);
    CheckStale(std::chrono::steady_clock::now());
  }
  co_return CallResult{pending->status, std::move(pending->reply)};
}

void Connection::CheckStale(SteadyTime now) {
  if (state_ != State::kUp || fifo_.empty()) return;
  if (now - fifo_.front().queued >= options_.stale_after) {
    Fail("no reply for " + std::to_string(options_.stale_after.count()) + " ms");
  }
}

void Connection::StartConnect() {
  state_ = State::kConnecting;
  established_ = false;
  replied_ = false;
  ++generation_;
  transport_ = std::make_shared<Transport>(executor_, options_.url.tls ? options_.tls : nullptr);
  reader_ = std::make_unique<ReplyReader>();
  out_.clear();

  // The handshake goes first: every command queued while connecting follows it.
  const SteadyTime now = std::chrono::steady_clock::now();
  fatal_left_ = 0;
  const RedisUrl& url = options_.url;
  if (!url.password.empty()) {
    std::vector<std::string_view> auth = {"AUTH"};
    if (!url.user.empty()) auth.push_back(url.user);
    auth.push_back(url.password);
    Push(FormatCommand(auth), Entry{nullptr, Internal::kFatalHandshake, now});
    ++fatal_left_;
  }
  if (url.db != 0) {
    std::string db = std::to_string(url.db);
    std::string_view select[] = {"SELECT", db};
    Push(FormatCommand(select), Entry{nullptr, Internal::kFatalHandshake, now});
    ++fatal_left_;
  }
  for (const std::string& command : options_.handshake) {
    Push(command, Entry{nullptr, Internal::kHandshake, now});
  }

  const uint64_t generation = generation_;
  auto self = shared_from_this();
  auto t = transport_;
  connect_timer_.expires_after(options_.connect_timeout);
  connect_timer_.async_wait([this, self, generation](boost::system::error_code ec) {
    if (ec || generation != generation_ || state_ != State::kConnecting) return;
    Fail("connect timeout");
  });

  boost::system::error_code ec;
  asio::ip::address literal = asio::ip::make_address(url.host, ec);
  if (!ec) {
    auto endpoints = asio::ip::tcp::resolver::results_type::create(
        asio::ip::tcp::endpoint(literal, url.port), url.host, std::to_string(url.port));
    ConnectTo(t, generation, endpoints);
    return;
  }
  // Name lookups run on Asio's resolver thread, never blocking this one.
  resolver_.async_resolve(
      url.host, std::to_string(url.port),
      [this, self, t, generation](boost::system::error_code ec,
                                  const asio::ip::tcp::resolver::results_type& results) {
        if (generation != generation_) return;
        if (ec) {
          Fail("resolve: " + ec.message());
          return;
        }
        ConnectTo(t, generation, results);
      });
}

void Connection::ConnectTo(const std::shared_ptr<Transport>& t, uint64_t generation,
                           const asio::ip::tcp::resolver::results_type& endpoints) {
  auto self = shared_from_this();
  asio::async_connect(
      t->Lowest(), endpoints,
      [this, self, t, generation](boost::system::error_code ec, const asio::ip::tcp::endpoint&) {
        if (generation != generation_) return;
        if (ec) {
          Fail("connect: " + ec.message());
          return;
        }
        boost::system::error_code ignored;
        t->Lowest().set_option(asio::ip::tcp::no_delay(true), ignored);
        if (!t->tls) {
          OnConnected(generation);
          return;
        }
        const std::string& host = options_.url.host;
        // SNI, and the certificate must name the host we asked for.
        SSL_set_tlsext_host_name(t->tls->native_handle(), host.c_str());
        t->tls->set_verify_mode(asio::ssl::verify_peer);
        t->tls->set_verify_callback(asio::ssl::host_name_verification(host));
        t->tls->async_handshake(asio::ssl::stream_base::client,
                                [this, self, t, generation](boost::system::error_code ec) {
                                  if (generation != generation_) return;
                                  if (ec) {
                                    Fail("TLS handshake: " + ec.message());
                                    return;
                                  }
                                  OnConnected(generation);
                                });
      });
}

void Connection::OnConnected(uint64_t generation) {
  connect_timer_.cancel();
  state_ = State::kUp;
  if (fatal_left_ == 0) OnEstablished();
  StartRead();
  MaybeWrite();
}

void Connection::OnEstablished() {
  established_ = true;
  backoff_ = std::chrono::milliseconds(0);
  counters_->connects.fetch_add(1, std::memory_order_relaxed);
  if (logged_down_) spdlog::info("redis {}: connected again", address_);
  logged_down_ = false;
}

void Connection::Push(std::string_view bytes, Entry entry) {
  out_.append(bytes);
  fifo_.push_back(std::move(entry));
  MaybeWrite();
}

void Connection::MaybeWrite() {
  if (state_ != State::kUp) return;
  Transport& t = *transport_;
  if (t.writing || out_.empty()) return;
  t.writing = true;
  t.write_buf.swap(out_);
  out_.clear();
  const uint64_t generation = generation_;
  auto self = shared_from_this();
  t.Write([this, self, t = transport_, generation](boost::system::error_code ec, size_t) {
    if (generation != generation_) return;
    t->writing = false;
    t->write_buf.clear();
    if (ec) {
      Fail("write: " + ec.message());
      return;
    }
    MaybeWrite();
  });
}

void Connection::StartRead() {
  const uint64_t generation = generation_;
  auto self = shared_from_this();
  transport_->ReadSome([this, self, t = transport_, generation](boost::system::error_code ec,
                                                                size_t n) {
    if (generation != generation_) return;
    if (ec) {
      Fail(ec == asio::error::eof ? std::string("closed by the server") : "read: " + ec.message());
      return;
    }
    if (!reader_->Feed(t->read_buf.data(), n)) {
      Fail("protocol error: " + reader_->Error());
      return;
    }
    for (;;) {
      bool ok = true;
      ReplyPtr reply = reader_->Next(&ok);
      if (!ok) {
        Fail("protocol error: " + reader_->Error());
        return;
      }
      if (!reply) break;
      if (fifo_.empty()) {
        Fail("a reply to no command");
        return;
      }
      Entry entry = std::move(fifo_.front());
      fifo_.pop_front();
      replied_ = true;
      Deliver(entry, std::move(reply));
      if (generation != generation_) return;  // the reply made us drop the connection
    }
    StartRead();
  });
}

void Connection::Deliver(Entry& entry, ReplyPtr reply) {
  switch (entry.internal) {
    case Internal::kNone: {
      Pending& p = *entry.pending;
      if (p.done) return;  // its caller gave up (deadline): the late reply is dropped
      p.done = true;
      p.status = CallStatus::kOk;
      p.reply = std::move(reply);
      p.timer.cancel();
      return;
    }
    case Internal::kFatalHandshake:
      if (IsError(reply.get())) {
        Fail("handshake refused: " + std::string(ReplyText(*reply)));
        return;
      }
      if (--fatal_left_ == 0) OnEstablished();
      return;
    case Internal::kHandshake:
      if (IsError(reply.get())) {
        spdlog::error("redis {}: {}", address_, ReplyText(*reply));
      }
      return;
    case Internal::kAsking:
      return;
  }
}

void Connection::DropTransport() {
  ++generation_;  // every handler of the old transport now bails out
  if (transport_) transport_->Close();
  connect_timer_.cancel();
  for (Entry& entry : fifo_) {
    if (!entry.pending || entry.pending->done) continue;
    entry.pending->done = true;
    entry.pending->status = CallStatus::kConnectionLost;
    entry.pending->timer.cancel();
  }
  fifo_.clear();
  out_.clear();
  established_ = false;
}

void Connection::Fail(const std::string& reason) {
  if (state_ == State::kClosed) return;
  // A server that accepts and hangs up at once (maxclients, a proxy without a backend) must
  // not be reconnected in a tight loop: only a connection that worked reconnects at once.
  const bool was_established = state_ == State::kUp && established_ && replied_;
  DropTransport();
  if (was_established) {
    counters_->drops.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("redis {}: connection lost ({}); reconnecting", address_, reason);
    StartConnect();
    return;
  }
  if (!logged_down_) {
    spdlog::warn("redis {}: unreachable ({}); retrying with backoff", address_, reason);
    logged_down_ = true;
  }
  backoff_ =
      backoff_.count() == 0 ? options_.min_backoff : std::min(backoff_ * 2, options_.max_backoff);
  state_ = State::kBackoff;
  backoff_timer_.expires_after(backoff_);
  auto self = shared_from_this();
  backoff_timer_.async_wait([this, self](boost::system::error_code ec) {
    if (ec || state_ != State::kBackoff) return;
    StartConnect();
  });
}

}  // namespace trl::redis
