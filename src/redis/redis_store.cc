#include "redis/redis_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/container/small_vector.hpp>
#include <iterator>
#include <tuple>
#include <utility>

#include "redis/lua_scripts.h"
#include "redis/packed.h"

namespace trl {
namespace {

using redis::Result;
using redis::ResultStatus;

char KindCode(LimitKind kind) {
  switch (kind) {
    case LimitKind::kTokens:
      return 't';
    case LimitKind::kRequests:
      return 'r';
    case LimitKind::kConcurrent:
      return 'c';
  }
  return '?';
}

// The Redis Cluster hash tag of a shard: '{', '}' (which would end or confuse the tag) and '%'
// percent-encoded; "" (an empty tag would make Redis hash the whole key) becomes "%".
std::string EncodeTag(std::string_view shard_key) {
  if (shard_key.empty()) return "%";
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(shard_key.size());
  for (char c : shard_key) {
    if (c == '{' || c == '}' || c == '%') {
      out += '%';
      out += kHex[(static_cast<unsigned char>(c) >> 4) & 0xF];
      out += kHex[static_cast<unsigned char>(c) & 0xF];
    } else {
      out += c;
    }
  }
  return out;
}

// A spec record (lua_scripts.h): '<c1Bi8i8' kind, calendar, capacity, period.
void PackSpec(std::string& out, const BucketSpec& spec) {
  out.push_back(KindCode(spec.ref.kind));
  out.push_back(spec.ref.calendar ? 1 : 0);
  redis::PutInt(out, std::max<int64_t>(spec.capacity, 0), 8);
  redis::PutInt(out, spec.ref.period_micros, 8);
}

// The buckets of a batch's call: KEYS (the records' prefix first), the bucket behind each key after it
// (so that a bucket named by many calls of the batch is found without building its name), and
// their specs, packed (each bucket's first).
struct BatchKeys {
  std::vector<std::string> keys;
  std::vector<const BucketSpec*> buckets;  // buckets[i] is keys[i + 1]'s
  std::string specs;

  // The 1-based index in KEYS of `spec`'s key, added when new.
  size_t IndexOf(std::string_view prefix, const BucketSpec& spec) {
    for (size_t i = 0; i < buckets.size(); ++i) {
      if (buckets[i]->ref == spec.ref) return i + 2;
    }
    keys.push_back(std::string(prefix) + spec.ref.Id());
    buckets.push_back(&spec);
    PackSpec(specs, spec);
    return keys.size();
  }
};

// A bucket's index in KEYS, as packed ('H').
void PutIndex(std::string& out, size_t index) { redis::PutInt(out, static_cast<int64_t>(index), 2); }

// A settlement's or an admission's head ('<c8i8BH'): its id (the 8 bytes of its record's name
// and of its concurrency leases), lease TTL µs, flags, number of records that follow.
void PutHead(std::string& out, uint64_t id, int64_t ttl_micros, bool flag, size_t count) {
  redis::PutInt(out, static_cast<int64_t>(id), 8);
  redis::PutInt(out, std::max<int64_t>(ttl_micros, 1), 8);
  redis::PutInt(out, flag ? 1 : 0, 1);
  redis::PutInt(out, static_cast<int64_t>(count), 2);
}

// The packed records' sizes (lua_scripts.h): a settlement's or an admission's head '<c8i8BH',
// each of their entries '<Hi8'; in the reply, a bucket's '<i8i8i8'.
constexpr size_t kHeadSize = 8 + 8 + 1 + 2;
constexpr size_t kChargeSize = 2 + 8;
constexpr size_t kBucketReplySize = 8 + 8 + 8;

// A bucket of a batch as its admissions leave it: the reply gives the state each started from
// and the admissions' outcomes, and the states after each admission are worked out here, by the
// rules the batch script applies (bucket.h's), so that Redis does not have to pack them.
struct Replayed {
  BucketParams params;  // capacity as packed for the script (never negative)
  BucketLevel level;    // kTokens/kRequests
  int64_t in_use = 0;   // kConcurrent
};

bool IntAt(const redisReply& array, size_t i, int64_t& out) {
  if (i >= array.elements || array.element[i]->type != REDIS_REPLY_INTEGER) return false;
  out = array.element[i]->integer;
  return true;
}

bool IsArray(const Result& r, size_t size) {
  return r.ok() && r.reply->type == REDIS_REPLY_ARRAY && r.reply->elements == size;
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
  prefix += EncodeTag(shard_key);
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

asio::awaitable<StoreStatus> RedisStore::Settle(const SettleRequest& request) {
  if (request.settlements.empty() && !request.outcome_unknown) co_return StoreStatus::kOk;
  Waiter w;
  w.shard_key = request.shard_key;
  w.settle = &request;
  w.start = std::chrono::steady_clock::now();
  co_await Batched(LaneFor(co_await asio::this_coro::executor), w);
  Observe(Op::kSettle, w.start, w.settled == StoreStatus::kOk);
  co_return w.settled;
}

void RedisStore::SettleDetached(const SettleRequest& request,
                                const asio::any_io_executor& executor, SettleCompletion& done) {
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
    w.release();  // Send completes and deletes it
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
  const std::string prefix = ShardPrefix(batch->shard_key);
  BatchKeys keys;
  keys.keys.push_back(prefix + "r:");
  std::string settlements, admissions;
  settlements.reserve(kMaxBatch * (kHeadSize + 3 * kChargeSize));
  admissions.reserve(kMaxBatch * (kHeadSize + 3 * kChargeSize));
  size_t admitting = 0;
  boost::container::small_vector<uint16_t, 64> charge_keys;  // each charge's index in KEYS
  boost::container::small_vector<int64_t, 8> demand;  // by bucket, from KEYS[2]; -1: none
  bool together = true;  // every charge on a token or request bucket, none negative
  for (Waiter* w = batch; w; w = w->next) {
    if (w->settle) {
      const SettleRequest& r = *w->settle;
      PutHead(settlements, r.id, r.lease_ttl_micros, r.outcome_unknown, r.settlements.size());
      for (const Settlement& st : r.settlements) {
        PutIndex(settlements, keys.IndexOf(prefix, st.bucket));
        redis::PutInt(settlements, st.delta, 8);
      }
      continue;
    }
    const AdmitRequest& r = *w->admit;
    ++admitting;
    PutHead(admissions, r.id, r.lease_ttl_micros, r.settles, r.charges.size());
    for (const Charge& c : r.charges) {
      const size_t index = keys.IndexOf(prefix, c.bucket);
      charge_keys.push_back(static_cast<uint16_t>(index));
      PutIndex(admissions, index);
      redis::PutInt(admissions, c.amount, 8);
      demand.resize(keys.buckets.size(), -1);
      demand[index - 2] = std::max<int64_t>(demand[index - 2], 0) + c.amount;
      together = together && c.bucket.ref.kind != LimitKind::kConcurrent && c.amount >= 0;
    }
  }
  const size_t buckets = keys.buckets.size();
  std::string all_at_once;
  if (together && admitting > 1) {
    redis::PutInt(all_at_once, static_cast<int64_t>(admitting), 2);
    demand.resize(buckets, -1);
    for (int64_t d : demand) redis::PutInt(all_at_once, d, 8);
  }
  boost::container::small_vector<Replayed, 8> replayed(buckets);
  for (size_t i = 0; i < buckets; ++i) {
    replayed[i].params = keys.buckets[i]->Params();
    replayed[i].params.capacity = std::max<int64_t>(replayed[i].params.capacity, 0);
    replayed[i].level.capacity = replayed[i].params.capacity;  // the script refreshed it to that
  }
  std::vector<std::string> args;
  args.reserve(10 + keys.keys.size());
  args.emplace_back("EVALSHA");
  args.push_back(lane.batch->sha);
  args.push_back(std::to_string(keys.keys.size()));
  std::move(keys.keys.begin(), keys.keys.end(), std::back_inserter(args));
  args.push_back(NowArg(batch->admit ? batch->admit->now_micros : batch->settle->now_micros));
  args.push_back(short_record_ttl_ms_);
  args.push_back(idle_margin_ms_);
  args.push_back(std::move(keys.specs));
  args.push_back(std::move(settlements));
  args.push_back(std::move(admissions));
  args.push_back(std::move(all_at_once));
  std::string routing = args[3];  // the records' prefix: the shard's slot
  // A batch is in arrival order: its first call has the earliest deadline (to within the µs
  // between a caller taking its start time and queuing).
  const auto deadline = batch->start + options_.timeout;
  if (admitting == 0) {
    // Only now, with its command about to be on the connection (Execute queues it before it
    // first waits), may an admission go beside it, and be queued after it.
    std::lock_guard lock(mutex_);
    auto it = shards_.find(batch->shard_key);
    if (it != shards_.end()) it->second.open = true;
  }
  Result r =
      co_await lane.client->Execute(std::move(args), std::move(routing), deadline, lane.batch);
  // The reply: now, each admission's flag ('1' admitted, '0' refused, 'x' given up by its
  // caller), whether each was applied by an earlier copy of this call ('1'), then each bucket's
  // starting state.
  const size_t base_size = 8 + 2 * admitting + kBucketReplySize * buckets;
  bool ok = r.ok() && r.reply->type == REDIS_REPLY_STRING && r.reply->len == base_size;
  const std::string_view reply = ok ? redis::ReplyText(*r.reply) : std::string_view();
  redis::PackedReader in(reply);
  const int64_t now = in.Int(8);
  const std::string_view flags = ok ? reply.substr(8, admitting) : std::string_view();
  const std::string_view replays = ok ? reply.substr(8 + admitting, admitting) : std::string_view();
  redis::PackedReader tail(ok ? reply.substr(reply.size() - kBucketReplySize * buckets)
                              : std::string_view());
  for (Replayed& b : replayed) {
    if (b.params.kind == LimitKind::kConcurrent) {
      b.in_use = tail.Int(8);
    } else {
      b.level.level = tail.Int(8);
    }
    b.level.frac = tail.Int(8);
    b.level.stamp = tail.Int(8);
  }
  ok = ok && in.ok() && tail.AtEnd();
  const uint16_t* charge_key = charge_keys.data();
  size_t a = 0;
  for (Waiter* w = batch; ok && w; w = w->next) {
    if (w->settle) continue;
    AdmitResult& result = w->admitted;
    result.admitted = flags[a] == '1';
    const bool replay = replays[a] == '1';
    const bool given_up = flags[a] == 'x';
    ++a;
    if (given_up) {  // (only a copy of a call whose caller has had its answer: nobody reads this)
      result.status = StoreStatus::kError;
      charge_key += w->admit->charges.size();
      continue;
    }
    ok = result.admitted || flags[a - 1] == '0';
    result.now_micros = now;
    const auto& charges = w->admit->charges;
    result.states.resize(charges.size());
    bool all = true;
    for (size_t i = 0; i < charges.size(); ++i) {
      const Replayed& b = replayed[charge_key[i] - 2];
      const bool concurrent = b.params.kind == LimitKind::kConcurrent;
      const bool fits = replay || (concurrent ? b.in_use < b.params.capacity
                                              : b.level.level >= charges[i].amount);
      result.states[i].fits = fits;
      all = all && fits;
    }
    ok = ok && all == result.admitted;  // the script's verdict, by the same rules
    // (An admission the first try of a retried call applied is not charged again.)
    for (size_t i = 0; result.admitted && !replay && i < charges.size(); ++i) {
      Replayed& b = replayed[charge_key[i] - 2];
      if (b.params.kind == LimitKind::kConcurrent) {
        ++b.in_use;
      } else {
        Spend(b.params, charges[i].amount, b.level);
      }
    }
    // Every charge's state after the whole admission (two charges may share a bucket).
    for (size_t i = 0; i < charges.size(); ++i, ++charge_key) {
      const Replayed& b = replayed[*charge_key - 2];
      result.states[i].level = b.level;
      result.states[i].in_use = b.in_use;
    }
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
  for (const BucketSpec& spec : request.buckets) PackSpec(specs, spec);
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
  const bool ok = r.ok() && r.reply->type == REDIS_REPLY_INTEGER;
  if (!ok) LogFailure(Op::kReset, r);
  Observe(Op::kReset, start, ok);
  co_return ok ? StoreStatus::kOk : StoreStatus::kError;
}

}  // namespace trl
