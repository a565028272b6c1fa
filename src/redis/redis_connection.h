// One pipelined connection to one Redis node, on Asio, with hiredis's reply reader.
//
// Commands are written as they come (while a write is in flight, new ones accumulate and go out
// together in the next write) and their completions wait in a FIFO: Redis answers in order, so
// the n-th reply belongs to the n-th command. Each command has a deadline; a caller whose
// deadline passes gets kTimeout at once, and its place in the FIFO stays (marked abandoned) so
// the late reply is recognised and dropped. The FIFO is bounded (max_pending, abandoned places
// included): beyond it a command fails at once with kUnavailable rather than queueing.
//
// Connection life: connect (TCP, then TLS for rediss://), then a handshake pipelined ahead of
// any queued command (AUTH, SELECT, and the caller's extra commands, e.g. SCRIPT LOAD). When
// the connection drops, every command in the FIFO fails with kConnectionLost (it may or may not
// have run) and a connection that was established reconnects at once; a connect that fails
// backs off (min_backoff doubling to max_backoff) and retries on its own, so a node that comes
// back is found without any traffic. While backing off, commands fail at once (kUnavailable):
// a decision never waits for a node known to be down. A connection whose oldest command has had
// no reply for stale_after is considered dead (a paused or partitioned server) and is dropped.
//
// Threading: not thread-safe. Every member function, and every coroutine it returns, runs on
// the executor given at construction (one thread: RedisClient's I/O thread).
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/redis_url.h"
#include "redis/resp.h"

namespace trl::redis {

namespace asio = boost::asio;
using SteadyTime = std::chrono::steady_clock::time_point;

enum class CallStatus : uint8_t {
  kOk,              // a reply arrived (it may be an error reply)
  kTimeout,         // no reply before the deadline (the command may still run)
  kUnavailable,     // not sent: the node is down (backing off), or too many commands pending
  kConnectionLost,  // the connection dropped before the reply: it may or may not have run
};

struct CallResult {
  CallStatus status = CallStatus::kUnavailable;
  ReplyPtr reply;  // kOk only
};

// Shared by a client's connections; read from any thread.
struct ConnectionCounters {
  std::atomic<uint64_t> connects{0};  // connections established
  std::atomic<uint64_t> drops{0};     // established connections lost
  std::atomic<uint64_t> timeouts{0};  // commands whose deadline passed
  std::atomic<uint64_t> rejected{0};  // commands refused at once (down or queue full)
};

struct ConnectionOptions {
  RedisUrl url;                       // host, port, TLS, credentials, db
  asio::ssl::context* tls = nullptr;  // required when url.tls
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds min_backoff{25};
  std::chrono::milliseconds max_backoff{500};
  std::chrono::milliseconds stale_after{1000};
  size_t max_pending = 4096;
  std::vector<std::string> handshake;  // formatted commands sent after AUTH/SELECT on every
                                       // connection; an error reply is logged, not fatal
  std::shared_ptr<ConnectionCounters> counters;  // null: counted privately
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  using Executor = asio::io_context::executor_type;

  Connection(const Executor& executor, ConnectionOptions options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Starts connecting (in the background). Optional: the first Call does it too.
  void Start();
  // Sends one formatted command and waits for its reply until `deadline`. With `asking`, an
  // ASKING command is sent just before it (a Redis Cluster ASK redirection).
  asio::awaitable<CallResult> Call(std::string_view command, SteadyTime deadline,
                                   bool asking = false);
  // Stops for good: pending commands fail with kConnectionLost, later ones with kUnavailable.
  void Close();

  // Backing off after a failed connect: a Call now would fail at once.
  bool Down() const { return state_ == State::kBackoff || state_ == State::kClosed; }
  bool Up() const { return state_ == State::kUp && established_; }
  const std::string& Address() const { return address_; }
  const RedisUrl& Url() const { return options_.url; }
  size_t PendingCount() const { return fifo_.size(); }

 private:
  enum class State : uint8_t { kIdle, kConnecting, kUp, kBackoff, kClosed };
  enum class Internal : uint8_t { kNone, kFatalHandshake, kHandshake, kAsking };
  struct Pending;
  struct Entry {
    std::shared_ptr<Pending> pending;  // null for internal commands
    Internal internal = Internal::kNone;
    SteadyTime queued;
  };
  struct Transport;

  void StartConnect();
  void ConnectTo(const std::shared_ptr<Transport>& t, uint64_t generation,
                 const asio::ip::tcp::resolver::results_type& endpoints);
  void OnConnected(uint64_t generation);
  void OnEstablished();
  void DropTransport();
  void Push(std::string_view bytes, Entry entry);
  void MaybeWrite();
  void StartRead();
  void Deliver(Entry& entry, ReplyPtr reply);
  void Fail(const std::string& reason);
  void CheckStale(SteadyTime now);

  Executor executor_;
  ConnectionOptions options_;
  std::string address_;
  State state_ = State::kIdle;
  bool established_ = false;  // the fatal part of the handshake succeeded on this transport
  bool replied_ = false;      // this transport delivered a reply (so it worked: a drop now
                              // is worth an immediate reconnect, not a backoff)
  size_t fatal_left_ = 0;     // fatal handshake replies still awaited
  bool logged_down_ = false;  // "unreachable" logged once per outage
  uint64_t generation_ = 0;   // bumped per transport; stale handlers compare and bail out
  std::shared_ptr<Transport> transport_;
  std::unique_ptr<ReplyReader> reader_;
  std::deque<Entry> fifo_;
  std::string out_;  // queued bytes not yet handed to the writer
  std::chrono::milliseconds backoff_{0};
  asio::steady_timer connect_timer_;
  asio::steady_timer backoff_timer_;
  asio::ip::tcp::resolver resolver_;
  std::shared_ptr<ConnectionCounters> counters_;
};

}  // namespace trl::redis
