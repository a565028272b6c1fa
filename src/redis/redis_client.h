// The Redis client the store uses: a single node or a Redis Cluster, Lua scripts by EVALSHA,
// a deadline on every command.
//
// Threading model: every connection, the slot map and all routing live on one thread, so none
// of that state needs a lock: by default an I/O thread the client owns, with its own
// io_context; with RunOn, an io_context another thread runs (a gateway I/O thread, so that its
// requests reach Redis without a hand-off to another thread and back). Callers on any thread
// (the gateway's I/O threads, the control thread, a test's private io_context) co_await
// Execute(): the command is formatted on the caller's thread, handed to the client's thread
// (run at once when the caller runs there), and the result comes back on the caller's
// executor. One pipelined connection per Redis node carries every caller's commands (Redis runs
// one command at a time anyway, so more connections would not add throughput; pipelining does).
// The client's thread only moves bytes and parses replies; it never blocks.
//
// Per command: EVALSHA, and on NOSCRIPT (a restarted or flushed server) the same call as EVAL,
// which also puts the script back in the server's cache; every connection loads the scripts
// (SCRIPT LOAD) as part of its handshake. Cluster: the key's slot picks the node from the slot
// map; MOVED updates the map and retries there (and schedules a full refresh from CLUSTER
// SLOTS); ASK retries once on the named node after ASKING. The map is also refreshed every
// slots_refresh and when a node drops. A single URL that turns out to be a cluster node (its
// first MOVED) switches the client to cluster mode. A command whose connection dropped before
// its reply is sent again while its deadline allows: callers make their commands idempotent
// (RedisStore's scripts do). TRYAGAIN (a slot migration caught halfway) is retried after a
// 2 ms pause while the deadline allows, then returned; CLUSTERDOWN and other error replies are
// returned as they are, for the caller to treat as failures.
#pragma once

#include <array>
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/redis_url.h"
#include "redis/cluster_slots.h"
#include "redis/redis_connection.h"
#include "redis/resp.h"

namespace trl::redis {

struct ClientOptions {
  std::vector<std::string> urls;  // one: single node (or a cluster seed); several: cluster seeds
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds min_backoff{25};
  std::chrono::milliseconds max_backoff{500};
  std::chrono::milliseconds stale_after{1000};
  std::chrono::milliseconds slots_refresh{10'000};
  size_t max_pending = 4096;  // per connection, abandoned commands included
};

// A Lua script: its text and SHA1 (hex), computed here.
struct Script {
  std::string body;
  std::string sha;
};

enum class ResultStatus : uint8_t {
  kOk,           // a reply (possibly an error reply: check IsError)
  kTimeout,      // the deadline passed
  kUnavailable,  // no node could take it now (down, queue full, redirected too often)
};

struct Result {
  ResultStatus status = ResultStatus::kUnavailable;
  ReplyPtr reply;
  bool Ok() const { return status == ResultStatus::kOk && reply && !IsError(reply.get()); }
};

struct ClientStats {
  uint64_t connects = 0;  // connections established (every node)
  uint64_t drops = 0;     // established connections lost
  uint64_t retries = 0;   // commands sent again after their connection dropped
  uint64_t noscript = 0;  // NOSCRIPT answered by EVAL
  uint64_t moved = 0;
  uint64_t ask = 0;
  uint64_t slot_refreshes = 0;  // slot maps loaded
  uint64_t tryagain = 0;        // TRYAGAIN answered by a pause and a retry
  uint64_t timeouts = 0;
  uint64_t in_flight = 0;  // calls between Execute and their result, now
};

class RedisClient {
 public:
  // Parses the URLs and prepares TLS; connects nowhere yet. Returns null and sets *error
  // (naming the URL, without its password) when a URL is unusable.
  static std::unique_ptr<RedisClient> Create(const ClientOptions& options, std::string* error);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Before Start: registers a script, loaded on every connection. The reference stays valid.
  const Script& AddScript(std::string body);
  // Before Start: live on `context` instead of on a thread of the client's own. One thread runs
  // it from before the first call until Shutdown has returned, or none does before Shutdown.
  void RunOn(asio::io_context& context) { external_ = &context; }
  // Starts the I/O thread (unless RunOn) and connects to the seeds in the background. Never
  // blocks on the network: a Redis that is not there yet is retried with backoff.
  void Start();

  // Thread-safe. Runs one command (`args`) on the node that owns `routing_key`'s slot (any
  // key of the command; "" = the default node) and returns when its reply arrives or at
  // `deadline`. With `script`, args are EVALSHA's (args[0] = "EVALSHA", args[1] = the SHA).
  // Completes on the caller's executor. The strings need not outlive the call's start.
  asio::awaitable<Result> Execute(std::vector<std::string> args, std::string routing_key,
                                  SteadyTime deadline, const Script* script = nullptr);

  // Fails every pending call at once (their callers resume with kUnavailable on their own
  // executors), closes the connections and joins the I/O thread after its last handler (with
  // RunOn: waits until the closing has run there); later calls fail at once. Blocking
  // (briefly): call from a control thread, before the executors of callers that may be waiting
  // stop. The destructor does it too.
  void Shutdown();

  // Where the client lives (its own I/O thread, or RunOn's): for work that only waits on Redis
  // (RedisStore's batches).
  asio::io_context::executor_type Executor() { return Context().get_executor(); }
  // After Shutdown (or before Start), the I/O thread may be gone: work must not go there.
  bool Running() const { return started_ && !shut_down_.load(std::memory_order_acquire); }

  ClientStats Stats() const;
  bool ClusterMode() const { return cluster_flag_.load(std::memory_order_relaxed); }

 private:
  struct Command {
    std::vector<std::string> args;
    std::string bytes;  // args formatted
    int slot = -1;
    const Script* script = nullptr;
  };
  using ConnectionPtr = std::shared_ptr<Connection>;

  explicit RedisClient(const ClientOptions& options);
  asio::awaitable<Result> Run(Command command, SteadyTime deadline);
  // Run, on Context(), for a call handed off from another executor: says it has arrived first.
  asio::awaitable<Result> RunHandedOff(Command command, SteadyTime deadline);
  void HandedOff();
  void WaitForHandOffs();
  ConnectionPtr Route(int slot);
  // The connection to host:port, made (and started) when new.
  ConnectionPtr NodeFor(const std::string& host, uint16_t port);
  // A connection to `url`, not started yet, in nodes_.
  ConnectionPtr AddNode(RedisUrl url);
  void ScheduleRefresh();
  asio::awaitable<void> RefreshSlots();
  void SchedulePeriodicRefresh();
  void SetClusterMode();

  ClientOptions options_;
  std::vector<RedisUrl> seed_urls_;
  std::unique_ptr<asio::ssl::context> tls_;
  std::deque<Script> scripts_;
  std::vector<std::string> handshake_;  // SCRIPT LOAD of every script

  asio::io_context& Context() { return external_ ? *external_ : io_; }

  asio::io_context io_{1};
  asio::io_context* external_ = nullptr;  // RunOn's; io_ is then unused
  std::atomic<bool> context_ran_{false};  // Start's first handler has run on Context()
  // Everything below is touched on the client's thread only (after Start).
  std::vector<ConnectionPtr> seeds_;
  std::map<std::string, ConnectionPtr> nodes_;  // by "host:port"
  std::vector<ConnectionPtr> slots_;            // kSlotCount entries, in cluster mode
  bool cluster_ = false;
  bool refreshing_ = false;
  bool refresh_again_ = false;
  std::optional<asio::steady_timer> periodic_timer_;  // made at Start, on Context()
  bool periodic_started_ = false;

  std::atomic<bool> cluster_flag_{false};
  std::shared_ptr<ConnectionCounters> counters_ = std::make_shared<ConnectionCounters>();
  struct Counters {
    std::atomic<uint64_t> retries{0}, noscript{0}, moved{0}, ask{0}, slot_refreshes{0}, tryagain{0},
        in_flight{0};
  };
  Counters client_counters_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::atomic<bool> shut_down_{false};
  // Calls past Execute's shut_down_ check that have not reached Context() yet. Shutdown waits for
  // none before the context's thread may stop: a call handed off later would never run, and its
  // caller would wait for ever. (Both are sequentially consistent: a call either sees shut_down_
  // or is seen here.)
  std::atomic<int> handing_off_{0};
  std::thread thread_;
  bool started_ = false;
};

}  // namespace trl::redis
