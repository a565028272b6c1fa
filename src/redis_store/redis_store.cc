#include "redis_store/redis_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/container/small_vector.hpp>
#include <utility>

#include "common/percent_encoding.h"
#include "redis_store/batch_call.h"
#include "redis_store/lua_scripts.h"

namespace trl {
namespace {

using redis::Result;
using redis::ResultStatus;

// The Redis Cluster hash tag of a shard: '{', '}' (which would end or confuse the tag) and '%'
// percent-encoded; "" (an empty tag would make Redis hash the whole key) becomes "%".
void AppendTag(std::string_view shard_key, std::string& out) {
  if (shard_key.empty()) {
    out += '%';
  } else {
    AppendPercentEncoded(shard_key, "{}", out);
  }
}

bool IntAt(const redisReply& array, size_t i, int64_t& out) {
  if (i >= array.elements || array.element[i]->type != REDIS_REPLY_INTEGER) return false;
  out = array.element[i]->integer;
  return true;
}

bool IsArray(const Result& r, size_t size) {
  return r.Ok() && r.reply->type == REDIS_REPLY_ARRAY && r.reply->elements == size;
}

}  // namespace

std::string_view RedisStore::OpName(Op op) {
  switch (op) {
    case Op::kAdmit:
      return "admit";
    case Op::kSettle:
      return "settle";
    case Op::kRead:
      return "read";
    case Op::kReset:
      return "reset";
  }
  return "?";
}

RedisStore::RedisStore(RedisStoreOptions options) : options_(std::move(options)) {
  // The record of an admission no settlement follows only has to stop a retry of its call from
  // charging it twice: a retry comes within one timeout of the first attempt.
  short_record_ttl_ms_ = std::to_string(std::max<int64_t>(1000, 4 * options_.timeout.count()));
  idle_margin_ms_ = std::to_string(std::max<int64_t>(0, options_.idle_margin.count()));
}

// The lanes' threads first: a batch that follows another (Drain, on a lane's thread) may still
// be taking its shard's next calls from shards_, which goes before lanes_ does.
RedisStore::~RedisStore() { Shutdown(); }

std::unique_ptr<RedisStore> RedisStore::Create(RedisStoreOptions options, std::string* error,
                                               std::span<asio::io_context* const> io_threads) {
  // A connection that has not answered for this long is dead (a paused or partitioned server).
  options.client.stale_after =
      std::max(options.client.stale_after, std::chrono::milliseconds(10 * options.timeout));
  std::unique_ptr<RedisStore> store(new RedisStore(options));
  for (size_t i = 0; i <= io_threads.size(); ++i) {
    auto lane = std::make_unique<Lane>();
    lane->client = redis::RedisClient::Create(options.client, error);
    if (!lane->client) return nullptr;
    lane->batch = &lane->client->AddScript(redis::kBatchScript);
    if (i == 0) lane->read = &lane->client->AddScript(redis::kReadScript);  // Read uses lane 0
    if (i > 0) {
      lane->client->RunOn(*io_threads[i - 1]);
      lane->io_thread = io_threads[i - 1];
    }
    store->lanes_.push_back(std::move(lane));
  }
  for (auto& lane : store->lanes_) lane->client->Start();
  return store;
}

void RedisStore::Shutdown() {
  for (auto& lane : lanes_) lane->client->Shutdown();
}

RedisStore::Lane& RedisStore::LaneFor(const asio::any_io_executor& executor) {
  if (lanes_.size() > 1) {
    const asio::execution_context* context = &asio::query(executor, asio::execution::context);
    for (auto& lane : lanes_) {
      if (lane->io_thread == context) return *lane;
    }
  }
  return *lanes_.front();
}

std::string RedisStore::ShardPrefix(std::string_view shard_key) const {
  std::string prefix = options_.key_prefix;
  prefix += '{';
  AppendTag(shard_key, prefix);
  prefix += "}:";
  return prefix;
}

std::string RedisStore::NowArg(int64_t now_micros) const {
  return options_.server_time ? std::string("0") : std::to_string(std::max<int64_t>(now_micros, 1));
}

void RedisStore::Observe(Op op, std::chrono::steady_clock::time_point start, bool ok) const {
  if (!observer_) return;
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  observer_(op, took.count(), ok);
}

// At most one line a second: a Redis outage must not flood the log.
void RedisStore::LogFailure(Op op, const Result& result) const {
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::steady_clock::now().time_since_epoch())
                    .count();
  int64_t last = last_log_.load(std::memory_order_relaxed);
  if (now <= last || !last_log_.compare_exchange_strong(last, now)) return;
  std::string why;
  switch (result.status) {
    case ResultStatus::kTimeout:
      why = "no answer within " + std::to_string(options_.timeout.count()) + " ms";
      break;
    case ResultStatus::kUnavailable:
      why = "Redis unavailable";
      break;
    case ResultStatus::kOk:
      why = result.reply && redis::IsError(result.reply.get())
                ? std::string(redis::ReplyText(*result.reply))
                : std::string("unexpected reply");
      break;
  }
  spdlog::warn("store {} failed: {}", OpName(op), why);
}

asio::awaitable<AdmitResult> RedisStore::Admit(const AdmitRequest& request) {
  if (request.charges.empty()) {
    AdmitResult result;
    result.admitted = true;
    result.now_micros = request.now_micros;
    co_return result;
  }
  Waiter w;
  w.shard_key = request.shard_key;
  w.admit = &request;
  w.start = std::chrono::steady_clock::now();
  co_await Batched(LaneFor(co_await asio::this_coro::executor), w);
  Observe(Op::kAdmit, w.start, w.admitted.status == StoreStatus::kOk);
  co_return std::move(w.admitted);
}

void RedisStore::SettleDetached(const SettleRequest& request, const asio::any_io_executor& executor,
                                SettleCompletion& done) {
  if (request.settlements.empty() && !request.outcome_unknown) {
    done.Settled(StoreStatus::kOk);
    return;
  }
  auto w = std::make_unique<Waiter>();
  w->shard_key = request.shard_key;
  w->settle = &request;
  w->start = std::chrono::steady_clock::now();
  w->detached = &done;
  bool queued = false;
  {
    std::lock_guard lock(mutex_);
    queued = Enqueue(*w);
  }
  if (queued) {
    static_cast<void>(w.release());  // Send completes and deletes it
    return;
  }
  asio::co_spawn(executor, Lead(LaneFor(executor), w.release()), asio::detached);
}

bool RedisStore::Enqueue(Waiter& w) {
  auto it = shards_.find(w.shard_key);
  if (it == shards_.end()) {
    shards_.try_emplace(std::string(w.shard_key));
    return false;
  }
  Queue& q = it->second;
  (q.tail ? q.tail->next : q.head) = &w;
  q.tail = &w;
  return true;
}

asio::awaitable<void> RedisStore::Batched(Lane& lane, Waiter& w) {
  enum class Way { kLead, kQueue, kBeside } way = Way::kLead;
  {
    std::lock_guard lock(mutex_);
    auto it = shards_.find(w.shard_key);
    if (it == shards_.end()) {
      shards_.try_emplace(std::string(w.shard_key));
    } else if (w.admit && it->second.open && !it->second.head) {
      it->second.open = false;
      way = Way::kBeside;
    } else {
      way = Way::kQueue;
    }
  }
  if (way == Way::kBeside) {  // the shard's batches are its leader's to follow, not this call's
    co_await Send(lane, &w);
    co_return;
  }
  if (way == Way::kQueue) {
    co_await asio::async_initiate<const asio::use_awaitable_t<>&, void()>(
        [this, &w](auto handler) {
          std::unique_lock lock(mutex_);
          w.executor = asio::get_associated_executor(handler);
          w.resume.emplace(std::move(handler));
          if (Enqueue(w)) return;
          // The shard's call ended meanwhile: this call goes now.
          lock.unlock();
          asio::post(w.executor, [&w] { (*w.resume)(); });  // (a called handler is empty)
        },
        asio::use_awaitable);
    if (w.done) co_return;
  }
  co_await Lead(lane, &w);
}

asio::awaitable<void> RedisStore::Lead(Lane& lane, Waiter* w) {
  std::string shard(w->shard_key);  // a detached settlement's request is gone after Send
  co_await Send(lane, w);
  Waiter* next = nullptr;
  {
    std::lock_guard lock(mutex_);
    next = TakeBatch(shard);
  }
  // The calls that queued meanwhile go on without this caller, which returns now: on this
  // lane's thread, so that each batch follows the last as soon as its reply is in.
  if (!next) co_return;
  auto drain = Drain(lane, std::move(shard), next);
  if (lane.client->Running()) {
    asio::co_spawn(lane.client->Executor(), std::move(drain), asio::detached);
  } else {  // shutting down: every call fails at once, here
    auto here = co_await asio::this_coro::executor;
    asio::co_spawn(here, std::move(drain), asio::detached);
  }
}

RedisStore::Waiter* RedisStore::TakeBatch(std::string_view shard) {
  auto it = shards_.find(shard);
  Queue& q = it->second;
  if (!q.head) {
    shards_.erase(it);
    return nullptr;
  }
  q.open = false;  // until the next call is on its connection
  Waiter* batch = q.head;
  Waiter* last = batch;
  for (size_t taken = 1; taken < kMaxBatch && last->next; ++taken) last = last->next;
  q.head = last->next;
  if (!q.head) q.tail = nullptr;
  last->next = nullptr;
  return batch;
}

asio::awaitable<void> RedisStore::Drain(Lane& lane, std::string shard, Waiter* batch) {
  while (batch) {
    co_await Send(lane, batch);
    std::lock_guard lock(mutex_);
    batch = TakeBatch(shard);
  }
}

asio::awaitable<void> RedisStore::Send(Lane& lane, Waiter* batch) {
  co_await Call(lane, batch);
  // The queued callers, resumed with one post per executor (I/O thread), not one per caller.
  struct Resumption {
    asio::any_io_executor executor;
    Waiter* head = nullptr;
    Waiter* tail = nullptr;
  };
  boost::container::small_vector<Resumption, 4> resumptions;
  for (Waiter* w = batch; w;) {
    Waiter* next = w->next;  // `w` may be gone once completed
    w->done = true;
    if (w->detached) {
      Observe(Op::kSettle, w->start, w->settled == StoreStatus::kOk);
      w->detached->Settled(w->settled);
      delete w;
    } else if (w->resume && *w->resume) {  // queued, not yet resumed
      auto it = std::find_if(resumptions.begin(), resumptions.end(),
                             [w](const Resumption& r) { return r.executor == w->executor; });
      if (it == resumptions.end()) it = resumptions.insert(resumptions.end(), {w->executor});
      w->next = nullptr;
      (it->tail ? it->tail->next : it->head) = w;
      it->tail = w;
    }
    w = next;
  }
  for (Resumption& r : resumptions) {
    asio::post(r.executor, [head = r.head] {
      for (Waiter* w = head; w;) {
        Waiter* next = w->next;
        // (In place: Boost 1.81's any_completion_handler wraps itself when move-assigned.)
        (*w->resume)();
        w = next;
      }
    });
  }
}

asio::awaitable<void> RedisStore::Call(Lane& lane, Waiter* batch) {
  redis::BatchCall call(ShardPrefix(batch->shard_key), kMaxBatch);
  for (Waiter* w = batch; w; w = w->next) {
    if (w->settle) {
      call.AddSettlement(*w->settle);
    } else {
      call.AddAdmission(*w->admit);
    }
  }
  std::vector<std::string> args = call.TakeArgs(
      lane.batch->sha, NowArg(batch->admit ? batch->admit->now_micros : batch->settle->now_micros),
      short_record_ttl_ms_, idle_margin_ms_);
  std::string routing = args[3];  // the records' prefix: the shard's slot
  // A batch is in arrival order: its first call has the earliest deadline (to within the µs
  // between a caller taking its start time and queuing).
  const auto deadline = batch->start + options_.timeout;
  // Only now, with its command about to be on the connection (Execute queues it before it
  // first waits), may an admission go beside a call that only settles, and be queued after it.
  if (call.Admissions() == 0) OpenBeside(batch->shard_key);
  Result r =
      co_await lane.client->Execute(std::move(args), std::move(routing), deadline, lane.batch);
  bool ok =
      r.Ok() && r.reply->type == REDIS_REPLY_STRING && call.ReadReply(redis::ReplyText(*r.reply));
  for (Waiter* w = batch; ok && w; w = w->next) {
    if (w->admit) ok = call.Replay(*w->admit, w->admitted);
  }
  if (!ok) LogFailure(batch->admit ? Op::kAdmit : Op::kSettle, r);
  for (Waiter* w = batch; w; w = w->next) {
    if (w->settle) {
      w->settled = ok ? StoreStatus::kOk : StoreStatus::kError;
    } else if (!ok) {
      w->admitted = AdmitResult{};
      w->admitted.status = StoreStatus::kError;
    }
  }
}

void RedisStore::OpenBeside(std::string_view shard) {
  std::lock_guard lock(mutex_);
  auto it = shards_.find(shard);
  if (it != shards_.end()) it->second.open = true;
}

asio::awaitable<ReadResult> RedisStore::Read(const BucketsRequest& request) {
  const auto start = std::chrono::steady_clock::now();
  const size_t n = request.buckets.size();
  ReadResult result;
  result.now_micros = request.now_micros;
  if (n == 0) co_return result;
  const std::string prefix = ShardPrefix(request.shard_key);
  std::vector<std::string> args;
  args.reserve(5 + n);
  args.emplace_back("EVALSHA");
  Lane& lane = *lanes_.front();
  args.push_back(lane.read->sha);
  args.push_back(std::to_string(n));
  for (const BucketSpec& spec : request.buckets) args.push_back(prefix + spec.ref.Id());
  args.push_back(NowArg(request.now_micros));
  std::string& specs = args.emplace_back();
  for (const BucketSpec& spec : request.buckets) redis::PackSpec(specs, spec);
  std::string routing = args[3];
  Result r = co_await lane.client->Execute(std::move(args), std::move(routing),
                                           start + options_.timeout, lane.read);
  bool ok = IsArray(r, 1 + 4 * n) && IntAt(*r.reply, 0, result.now_micros);
  if (ok) {
    result.states.resize(n);
    for (size_t i = 0; ok && i < n; ++i) {
      BucketState& s = result.states[i];
      s.fits = true;
      ok = IntAt(*r.reply, 1 + 4 * i, s.level.level) && IntAt(*r.reply, 2 + 4 * i, s.level.frac) &&
           IntAt(*r.reply, 3 + 4 * i, s.level.stamp) && IntAt(*r.reply, 4 + 4 * i, s.in_use);
      if (request.buckets[i].ref.kind != LimitKind::kConcurrent) {
        s.level.capacity = std::max<int64_t>(request.buckets[i].capacity, 0);
      }
    }
  }
  if (!ok) {
    LogFailure(Op::kRead, r);
    result = ReadResult{};
    result.status = StoreStatus::kError;
  }
  Observe(Op::kRead, start, ok);
  co_return result;
}

asio::awaitable<StoreStatus> RedisStore::Reset(const BucketsRequest& request) {
  const auto start = std::chrono::steady_clock::now();
  // A missing bucket key is a full bucket: resetting is deleting (leases are kept).
  const std::string prefix = ShardPrefix(request.shard_key);
  std::vector<std::string> args;
  args.emplace_back("DEL");
  for (const BucketSpec& spec : request.buckets) {
    if (spec.ref.kind != LimitKind::kConcurrent) args.push_back(prefix + spec.ref.Id());
  }
  if (args.size() == 1) co_return StoreStatus::kOk;
  std::string routing = args[1];
  Result r =
      co_await Client().Execute(std::move(args), std::move(routing), start + options_.timeout);
  const bool ok = r.Ok() && r.reply->type == REDIS_REPLY_INTEGER;
  if (!ok) LogFailure(Op::kReset, r);
  Observe(Op::kReset, start, ok);
  co_return ok ? StoreStatus::kOk : StoreStatus::kError;
}

}  // namespace trl
