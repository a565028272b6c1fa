#include "redis/redis_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <random>

#include "redis/lua_scripts.h"

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

void AddSpec(std::vector<std::string>& args, const BucketSpec& spec) {
  args.emplace_back(1, KindCode(spec.ref.kind));
  args.push_back(std::to_string(std::max<int64_t>(spec.capacity, 0)));
  args.push_back(std::to_string(spec.ref.period_micros));
  args.emplace_back(spec.ref.calendar ? "1" : "0");
}

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
  // Unique across instances without coordination: a random start, then a counter.
  std::random_device rd;
  uint64_t seed = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  next_op_.store(seed | 1, std::memory_order_relaxed);
  // A retry comes within one timeout of the first attempt; the marker outlives that amply.
  marker_ttl_ms_ = std::to_string(std::max<int64_t>(1000, 4 * options_.timeout.count()));
  idle_margin_ms_ = std::to_string(std::max<int64_t>(0, options_.idle_margin.count()));
}

RedisStore::~RedisStore() = default;

std::unique_ptr<RedisStore> RedisStore::Create(RedisStoreOptions options, std::string* error) {
  // A connection that has not answered for this long is dead (a paused or partitioned server).
  options.client.stale_after =
      std::max(options.client.stale_after, std::chrono::milliseconds(10 * options.timeout));
  std::unique_ptr<RedisStore> store(new RedisStore(options));
  store->client_ = redis::RedisClient::Create(options.client, error);
  if (!store->client_) return nullptr;
  store->admit_ = &store->client_->AddScript(redis::kAdmitScript);
  store->settle_ = &store->client_->AddScript(redis::kSettleScript);
  store->read_ = &store->client_->AddScript(redis::kReadScript);
  store->client_->Start();
  return store;
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

std::string RedisStore::NextOpId() {
  uint64_t id = next_op_.fetch_add(2, std::memory_order_relaxed);  // odd: never 0
  return std::to_string(id);
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
  const auto start = std::chrono::steady_clock::now();
  const size_t n = request.charges.size();
  AdmitResult result;
  result.now_micros = request.now_micros;
  if (n == 0) {
    result.admitted = true;
    co_return result;
  }
  const std::string prefix = ShardPrefix(request.shard_key);
  const std::string op = NextOpId();
  std::vector<std::string> args;
  args.reserve(9 + 6 * n);
  args.emplace_back("EVALSHA");
  args.push_back(admit_->sha);
  args.push_back(std::to_string(n + 1));
  args.push_back(prefix + "op:" + op);
  for (const Charge& c : request.charges) args.push_back(prefix + c.bucket.ref.Id());
  args.push_back(NowArg(request.now_micros));
  args.push_back(std::to_string(std::max<int64_t>(request.lease_ttl_micros, 1)));
  args.push_back(op);
  args.push_back(marker_ttl_ms_);
  args.push_back(idle_margin_ms_);
  for (const Charge& c : request.charges) {
    AddSpec(args, c.bucket);
    args.push_back(std::to_string(c.amount));
  }
  std::string routing = args[3];
  Result r = co_await client_->Execute(std::move(args), std::move(routing),
                                       start + options_.timeout, admit_);
  bool ok = IsArray(r, 3 + 5 * n);
  if (ok) {
    const redisReply& a = *r.reply;
    int64_t admitted = 0;
    ok = IntAt(a, 0, admitted) && IntAt(a, 1, result.now_micros) &&
         a.element[2]->type == REDIS_REPLY_STRING;
    if (ok) {
      std::string_view lease = redis::ReplyText(*a.element[2]);
      auto [ptr, ec] = std::from_chars(lease.data(), lease.data() + lease.size(), result.lease);
      ok = ec == std::errc() && ptr == lease.data() + lease.size();
      result.admitted = admitted == 1;
    }
    result.states.resize(n);
    for (size_t i = 0; ok && i < n; ++i) {
      BucketState& s = result.states[i];
      int64_t fits = 0;
      ok = IntAt(a, 3 + 5 * i, fits) && IntAt(a, 4 + 5 * i, s.level.level) &&
           IntAt(a, 5 + 5 * i, s.level.frac) && IntAt(a, 6 + 5 * i, s.level.stamp) &&
           IntAt(a, 7 + 5 * i, s.in_use);
      s.fits = fits == 1;
    }
  }
  if (!ok) {
    LogFailure(Op::kAdmit, r);
    result = AdmitResult{};
    result.status = StoreStatus::kError;
  }
  Observe(Op::kAdmit, start, ok);
  co_return result;
}

asio::awaitable<StoreStatus> RedisStore::Settle(const SettleRequest& request) {
  const auto start = std::chrono::steady_clock::now();
  const size_t n = request.settlements.size();
  if (n == 0) co_return StoreStatus::kOk;
  const std::string prefix = ShardPrefix(request.shard_key);
  std::vector<std::string> args;
  args.reserve(7 + 8 * n);
  args.emplace_back("EVALSHA");
  args.push_back(settle_->sha);
  args.push_back(std::to_string(n + 1));
  args.push_back(prefix + "op:" + NextOpId());
  for (const Settlement& s : request.settlements) args.push_back(prefix + s.bucket.ref.Id());
  args.push_back(NowArg(request.now_micros));
  args.push_back(marker_ttl_ms_);
  args.push_back(idle_margin_ms_);
  for (const Settlement& s : request.settlements) {
    AddSpec(args, s.bucket);
    args.push_back(std::to_string(s.delta));
    args.push_back(std::to_string(s.admitted_stamp));
    args.push_back(std::to_string(s.lease));
  }
  std::string routing = args[3];
  Result r = co_await client_->Execute(std::move(args), std::move(routing),
                                       start + options_.timeout, settle_);
  const bool ok = r.ok() && r.reply->type == REDIS_REPLY_INTEGER;
  if (!ok) LogFailure(Op::kSettle, r);
  Observe(Op::kSettle, start, ok);
  co_return ok ? StoreStatus::kOk : StoreStatus::kError;
}

asio::awaitable<ReadResult> RedisStore::Read(const BucketsRequest& request) {
  const auto start = std::chrono::steady_clock::now();
  const size_t n = request.buckets.size();
  ReadResult result;
  result.now_micros = request.now_micros;
  if (n == 0) co_return result;
  const std::string prefix = ShardPrefix(request.shard_key);
  std::vector<std::string> args;
  args.reserve(4 + 5 * n);
  args.emplace_back("EVALSHA");
  args.push_back(read_->sha);
  args.push_back(std::to_string(n));
  for (const BucketSpec& spec : request.buckets) args.push_back(prefix + spec.ref.Id());
  args.push_back(NowArg(request.now_micros));
  for (const BucketSpec& spec : request.buckets) AddSpec(args, spec);
  std::string routing = args[3];
  Result r = co_await client_->Execute(std::move(args), std::move(routing),
                                       start + options_.timeout, read_);
  bool ok = IsArray(r, 1 + 4 * n) && IntAt(*r.reply, 0, result.now_micros);
  if (ok) {
    result.states.resize(n);
    for (size_t i = 0; ok && i < n; ++i) {
      BucketState& s = result.states[i];
      s.fits = true;
      ok = IntAt(*r.reply, 1 + 4 * i, s.level.level) && IntAt(*r.reply, 2 + 4 * i, s.level.frac) &&
           IntAt(*r.reply, 3 + 4 * i, s.level.stamp) && IntAt(*r.reply, 4 + 4 * i, s.in_use);
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
      co_await client_->Execute(std::move(args), std::move(routing), start + options_.timeout);
  const bool ok = r.ok() && r.reply->type == REDIS_REPLY_INTEGER;
  if (!ok) LogFailure(Op::kReset, r);
  Observe(Op::kReset, start, ok);
  co_return ok ? StoreStatus::kOk : StoreStatus::kError;
}

}  // namespace trl
