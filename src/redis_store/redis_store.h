// The shared store: every budget in Redis (one node or a Redis Cluster), so that any number of
// gateway instances share them exactly (docs/redis.md).
//
// Round trips: Admit is one EVALSHA (all charges, all or nothing, judged by the server's TIME);
// Settle is one EVALSHA; Read one EVALSHA; Reset one DEL. So a request costs two round trips
// (one when nothing needs settling, e.g. only request-count limits). See lua_scripts.h for the
// data layout.
//
// Batches: admissions and settlements of one shard that arrive while one of that shard's calls
// is in flight wait for it, then go together in the next call, up to kMaxBatch; the script
// applies the settlements first (a bucket's extra charges summed, then its refunds summed: the
// same level as one by one in that order), then judges the admissions one after the other,
// exactly as separate calls would (all at once when their total fits), but reads and writes
// each bucket once. So a lone request goes out at once, and a busy shard costs Redis one call
// per round trip instead of two per request. One call per shard is in flight at a time
// (whatever the lane, below), but for an admission beside a call that only settles (Queue);
// different shards do not wait for each other.
//
// Lanes: a RedisClient (its connections to Redis) and the thread it lives on. By default one,
// on a thread of its own. Created with the gateway's I/O contexts, the store gives each of them
// a lane too: a call made on an I/O thread that finds its shard idle goes to Redis on that
// thread's lane, and the calls that queue behind it follow in batches on the same lane, so a
// lone request reaches Redis and comes back without a hand-off to another thread and back (on
// a 2-core machine: half the gateway's CPU per request at one connection, ~25% of the added
// latency). Queued callers on other threads are resumed on their own. Read, Reset, and callers
// that are not on an I/O thread use the first lane.
//
// Cluster: every key of a call carries the hash tag {shard_key} (percent-encoded so that it is
// one tag), so all the buckets of a request are in one slot and one script sees them all: a
// request is all or nothing without a cross-slot protocol. (The Limiter passes the tenant as
// shard_key when there is one, else the key.)
//
// Failures: every operation has a deadline of `timeout` from its start, covering reconnects,
// NOSCRIPT reloads and redirects; when it passes, or Redis is known to be down, the operation
// returns StoreStatus::kError at once. A call whose connection dropped before the reply is
// retried within the deadline. The script keeps a record of every applied admission
// (lua_scripts.h), so a copy of an admission never charges twice, a settlement applies once
// however often the Limiter sends it, and one for an admission whose reply was lost gives back
// its charge if it was applied and keeps a late copy from applying if it was not. Needs Redis
// 6.2 or later (GETDEL).
//
// Time: by default the scripts judge by the Redis server's TIME, so instances with skewed clocks
// agree; `server_time = false` makes them use the caller's now_micros instead (tests on a fake
// clock).
//
// Thread-safety: thread-safe, like every Store; see RedisClient for the threading model.
#pragma once

#include <atomic>
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "limits/store.h"
#include "redis/redis_client.h"

namespace trl {

struct RedisStoreOptions {
  redis::ClientOptions client;            // urls and connection tuning
  std::chrono::milliseconds timeout{50};  // store.redis.timeout: the most any call takes
  std::string key_prefix = "trl:";
  bool server_time = true;
  // Bucket keys are kept this long after they would hold a full budget again (after which a
  // missing key reads full anyway); lease sets this long after their last lease expires.
  std::chrono::milliseconds idle_margin{1000};
};

class RedisStore final : public Store {
 public:
  enum class Op : uint8_t { kAdmit, kSettle, kRead, kReset };
  static std::string_view OpName(Op op);
  static constexpr size_t kMaxBatch = 64;
  // Called after every operation that reached the client, on the caller's thread: how long it
  // took and whether it succeeded (for trl_store_latency_seconds{op}).
  using LatencyObserver = std::function<void(Op op, double seconds, bool ok)>;

  // Validates the URLs and starts connecting in the background; never waits for Redis (a
  // Redis that is not up yet is retried, and operations fail until it is). Returns null and
  // sets *error for an unusable URL.
  // `io_threads`: the gateway's I/O contexts, each run by one thread until after Shutdown;
  // each gets a lane (see above). They must outlive the store.
  static std::unique_ptr<RedisStore> Create(RedisStoreOptions options, std::string* error,
                                            std::span<asio::io_context* const> io_threads = {});
  ~RedisStore() override;

  asio::awaitable<AdmitResult> Admit(const AdmitRequest& request) override;
  // Without a coroutine when the shard has a call in flight: the settlement joins its queue and
  // `done` is called on the thread that ran its batch.
  void SettleDetached(const SettleRequest& request, const asio::any_io_executor& executor,
                      SettleCompletion& done) override;
  asio::awaitable<ReadResult> Read(const BucketsRequest& request) override;
  asio::awaitable<StoreStatus> Reset(const BucketsRequest& request) override;

  // At shutdown, before the threads of callers that may be waiting on Redis stop: pending
  // operations fail at once, later ones too (RedisClient::Shutdown). Blocking, briefly. The
  // destructor does it too.
  void Shutdown();

  // Before the first operation.
  void SetLatencyObserver(LatencyObserver observer) { observer_ = std::move(observer); }

  // The first lane's client (the one on its own thread): for the key store and usage.
  redis::RedisClient& Client() { return *lanes_.front()->client; }
  // "<prefix>{<encoded shard_key>}:", the start of every key of that shard.
  std::string ShardPrefix(std::string_view shard_key) const;

 private:
  // A call in a batch: its request, and where its outcome goes.
  struct Waiter {
    std::string_view shard_key;
    const AdmitRequest* admit = nullptr;  // one of these two
    const SettleRequest* settle = nullptr;
    std::chrono::steady_clock::time_point start;
    AdmitResult admitted;
    StoreStatus settled = StoreStatus::kOk;
    bool done = false;  // the outcome is in
    // Where the outcome goes once in, for a queued caller: its coroutine is resumed, or (a
    // detached settlement, whose Waiter the store owns) `detached` is told.
    std::optional<asio::any_completion_handler<void()>> resume;
    asio::any_io_executor executor;  // resume's
    SettleCompletion* detached = nullptr;
    Waiter* next = nullptr;
  };
  // The calls waiting for a shard's call in flight; a shard is in the map while it has one.
  // `open`: that call only settles, its command is on its connection, and no admission went
  // beside it yet. Nobody waits on a settlement, so an admission that finds no queue then goes
  // at once instead of waiting a round trip for it (on one client connection, every request's
  // admission would otherwise wait for the previous request's settlement). On the same lane it
  // follows the settlement on the same connection, and Redis runs a connection's commands in
  // order: it still sees the refund. (Before the command is on its connection, a settlement
  // just handed over by SettleDetached, say, the admission queues: it would go first.)
  struct Queue {
    Waiter* head = nullptr;
    Waiter* tail = nullptr;
    bool open = false;
  };
  struct ShardHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using Shards = std::unordered_map<std::string, Queue, ShardHash, std::equal_to<>>;
  struct Lane {
    std::unique_ptr<redis::RedisClient> client;
    const redis::Script* batch = nullptr;
    const redis::Script* read = nullptr;                 // the first lane's only
    const asio::execution_context* io_thread = nullptr;  // whose calls it takes; null: others
  };

  explicit RedisStore(RedisStoreOptions options);
  // The lane for calls made on `executor`'s context.
  Lane& LaneFor(const asio::any_io_executor& executor);
  // Runs `w` alone at once when its shard has no call in flight, else in the shard's next
  // batch.
  asio::awaitable<void> Batched(Lane& lane, Waiter& w);
  // Under mutex_: queues `w` behind its shard's call in flight and returns true, else marks the
  // shard busy (the caller's call goes now) and returns false.
  bool Enqueue(Waiter& w);
  // Runs `w`'s call, then hands the calls queued meanwhile to `lane`'s thread.
  asio::awaitable<void> Lead(Lane& lane, Waiter* w);
  // Under mutex_, when a call of `shard` has ended: up to kMaxBatch of its queued calls, linked
  // by `next`; null (and the shard idle) when none is queued.
  Waiter* TakeBatch(std::string_view shard);
  asio::awaitable<void> Drain(Lane& lane, std::string shard, Waiter* batch);
  // Runs one batch and fills every waiter's outcome; resumes the queued ones (one post per
  // executor) and completes the detached ones.
  asio::awaitable<void> Send(Lane& lane, Waiter* batch);
  // One call of the batch script: the batch's settlements, then its admissions.
  asio::awaitable<void> Call(Lane& lane, Waiter* batch);
  // Under mutex_: the shard's call in flight only settles and is on its connection (Queue).
  void OpenBeside(std::string_view shard);
  std::string NowArg(int64_t now_micros) const;
  void Observe(Op op, std::chrono::steady_clock::time_point start, bool ok) const;
  void LogFailure(Op op, const redis::Result& result) const;

  RedisStoreOptions options_;
  std::vector<std::unique_ptr<Lane>> lanes_;  // [0]: on its own thread
  std::string short_record_ttl_ms_;
  std::string idle_margin_ms_;
  LatencyObserver observer_;
  mutable std::atomic<int64_t> last_log_{0};
  std::mutex mutex_;  // shards_; never held across I/O
  Shards shards_;
};

}  // namespace trl
