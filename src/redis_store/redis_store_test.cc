// RedisStore against real redis-server processes: the same results as MemoryStore, bit for bit
// (a differential test on a fake clock), and the behaviour that only a networked store has:
// NOSCRIPT, dropped connections, a paused server, lease expiry by the server's clock, Redis
// Cluster with a slot migrating under load.
#include "redis_store/redis_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <future>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "fakes/bucket_builders.h"
#include "fakes/redis_server.h"
#include "fakes/run_awaitable.h"
#include "fakes/settle_awaited.h"
#include "limits/memory_store.h"
#include "redis/cluster_slots.h"
#include "redis_store/lua_scripts.h"
#include "redis_store/packed.h"

namespace trl {
namespace {

using namespace std::chrono_literals;
using testing::Concurrent;
using testing::RedisCluster;
using testing::RedisServer;
using testing::Requests;
using testing::Tokens;

constexpr int64_t kSecond = 1'000'000;
constexpr int64_t kMinute = 60 * kSecond;
constexpr int64_t kDay = 86'400 * kSecond;
constexpr int64_t kT0 = 1'700'000'000 * kSecond;

template <typename Vector>
auto AsSpan(const Vector& v) {
  return std::span<const typename Vector::value_type>(v.data(), v.size());
}

RedisStoreOptions Options(std::vector<std::string> urls, bool server_time = false) {
  RedisStoreOptions o;
  o.client.urls = std::move(urls);
  o.timeout = 2000ms;  // semantics tests: a loaded machine must not turn into failures
  o.server_time = server_time;
  o.idle_margin = 3'600'000ms;  // fake time runs ahead of Redis's expiry clock
  o.key_prefix = "trl-test:";
  return o;
}

// Every admission gets an id of its own (the Limiter's reservation ids are unique): the store
// keeps its record under it.
std::atomic<uint64_t> next_id{1};
AdmitRequest Req(std::string_view shard, const std::vector<Charge>& charges, int64_t now,
                 int64_t lease_ttl = kMinute, bool settles = true) {
  return {shard, AsSpan(charges), "r", now, lease_ttl, next_id.fetch_add(1), settles};
}
SettleRequest Set(std::string_view shard, const std::vector<Settlement>& settlements, int64_t now,
                  uint64_t id, bool outcome_unknown = false) {
  return {shard, AsSpan(settlements), now, id, outcome_unknown, kMinute};
}

std::unique_ptr<RedisStore> MakeStore(RedisStoreOptions options) {
  std::string error;
  auto store = RedisStore::Create(std::move(options), &error);
  EXPECT_TRUE(store) << error;
  return store;
}

class RedisStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { server_ = testing::StartRedis(); }

  // Sets last_id_ to the admission's id.
  AdmitResult Admit(Store& store, std::string_view shard, const std::vector<Charge>& charges,
                    int64_t now, int64_t lease_ttl = 10 * kMinute) {
    AdmitRequest request = Req(shard, charges, now, lease_ttl);
    last_id_ = request.id;
    return RunAwaitable(store.Admit(request));
  }
  StoreStatus Settle(Store& store, std::string_view shard,
                     const std::vector<Settlement>& settlements, int64_t now, uint64_t id) {
    const SettleRequest request = Set(shard, settlements, now, id);
    return RunAwaitable(testing::SettleAwaited(store, request));
  }
  ReadResult Read(Store& store, std::string_view shard, const std::vector<BucketSpec>& specs,
                  int64_t now) {
    return RunAwaitable(store.Read({shard, AsSpan(specs), now}));
  }

  // `callers` admissions of `charges` on shard "a", started together: they share script calls
  // (ExpectFewCalls). `ids`, if given, gets each one's id.
  std::vector<AdmitResult> AdmitTogether(Store& store, const std::vector<Charge>& charges,
                                         int callers, std::vector<uint64_t>* ids = nullptr) {
    std::vector<AdmitResult> results(callers);
    std::vector<AdmitRequest> requests;
    for (int i = 0; i < callers; ++i) requests.push_back(Req("a", charges, kT0));
    boost::asio::io_context io;
    for (int i = 0; i < callers; ++i) {
      boost::asio::co_spawn(
          io,
          [&, i]() -> boost::asio::awaitable<void> {
            results[i] = co_await store.Admit(requests[i]);
          },
          boost::asio::detached);
    }
    io.run();
    if (ids) {
      for (const AdmitRequest& r : requests) ids->push_back(r.id);
    }
    return results;
  }

  // EVALSHA calls since the last CONFIG RESETSTAT (INFO commandstats); -1 if none.
  int EvalshaCalls() {
    std::string stats = server_->CommandText({"INFO", "commandstats"});
    size_t at = stats.find("cmdstat_evalsha:calls=");
    return at == std::string::npos ? -1 : std::atoi(stats.c_str() + at + 22);
  }

  // That 64 concurrent callers of one shard shared the calls made since `before` (EvalshaCalls).
  // The first that finds the shard idle goes alone (or joins the shard's last batch, if that is
  // still being followed) and those queued behind a call go together in the next, so how many
  // calls they take depends on how their arrivals fall around the calls' round trips: a few,
  // never one each.
  void ExpectFewCalls(int before) {
    const int calls = EvalshaCalls() - std::max(before, 0);
    EXPECT_GE(calls, 1);
    EXPECT_LE(calls, 8);
  }

  // Polls (bounded) until the store admits `charges` again.
  bool WaitUntilAdmitting(Store& store, const std::vector<Charge>& charges) {
    for (int i = 0; i < 400; ++i) {
      AdmitResult r = Admit(store, "probe", charges, kT0);
      if (r.status == StoreStatus::kOk) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  std::unique_ptr<RedisServer> server_;
  uint64_t last_id_ = 0;
};

// Random admissions, settlements, reads and resets on both stores at the same (fake) times:
// every result must be identical, including the exact fractions of refills, the debt calendar
// windows carry over, and levels across changes of a limit's value. The capacities and periods
// include ones whose refill products exceed 2^53 (the scripts' long arithmetic).
TEST_F(RedisStoreTest, SameResultsAsMemoryStore) {
  auto redis = MakeStore(Options({server_->Url()}));
  MemoryStore memory;
  std::vector<BucketSpec> specs = {
      Tokens("a", 100, kMinute),
      Tokens("a", 1'000'003, kDay),               // prime capacity: cap × dt > 2^53
      Tokens("a", 4'999'999'999'989, 30 * kDay),  // huge budget, long period
      Tokens("a", 1000, 3600 * kSecond, true),    // calendar hour
      Requests("a", 10, kSecond),
      Concurrent("a", 3),
      Tokens("b", 7, 7 * kSecond),
  };
  std::mt19937_64 rng(42);
  auto uniform = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  struct Outstanding {
    std::vector<Charge> charges;
    std::vector<int64_t> stamps;
    uint64_t id = 0;  // the same admission's on both stores
  };
  std::vector<Outstanding> outstanding;
  int64_t now = kT0;
  int admitted = 0, refused = 0, settled = 0;
  for (int step = 0; step < 1500; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    switch (uniform(0, 9)) {
      case 0:
        now += uniform(0, 10) * kSecond;
        break;
      case 1:
        now += uniform(0, 3) * kDay + uniform(0, kDay);
        break;
      default:
        now += uniform(0, 2 * kSecond);
    }
    if (uniform(0, 9) == 0) {  // a reload or the admin API changes two limits' values
      specs[0].capacity = std::vector<int64_t>{100, 60, 150}[uniform(0, 2)];
      specs[3].capacity = std::vector<int64_t>{1000, 400, 2500}[uniform(0, 2)];
    }
    int action = static_cast<int>(uniform(0, 19));
    if (action < 12) {
      std::vector<Charge> charges;
      for (const BucketSpec& spec : specs) {
        if (uniform(0, 2) != 0) continue;
        int64_t amount = spec.ref.kind == LimitKind::kTokens
                             ? uniform(0, std::max<int64_t>(spec.capacity / 3, 1))
                             : 1;
        charges.push_back({spec, amount});
      }
      if (charges.empty()) continue;
      const AdmitRequest request = Req("a", charges, now, 10 * kMinute);
      AdmitResult m = memory.AdmitNow(request);
      AdmitResult r = RunAwaitable(redis->Admit(request));
      ASSERT_EQ(r.status, StoreStatus::kOk);
      ASSERT_EQ(m.admitted, r.admitted);
      ASSERT_EQ(r.now_micros, now);
      ASSERT_EQ(m.states.size(), r.states.size());
      for (size_t i = 0; i < charges.size(); ++i) {
        ASSERT_EQ(m.states[i].fits, r.states[i].fits) << i;
        if (charges[i].bucket.ref.kind != LimitKind::kConcurrent) {
          ASSERT_EQ(m.states[i].level, r.states[i].level) << i;
        }
      }
      if (r.admitted) {
        ++admitted;
        Outstanding o{charges, {}, request.id};
        for (const BucketState& s : r.states) o.stamps.push_back(s.level.stamp);
        outstanding.push_back(std::move(o));
      } else {
        ++refused;
      }
    } else if (action < 17 && !outstanding.empty()) {
      size_t pick = static_cast<size_t>(uniform(0, static_cast<int64_t>(outstanding.size()) - 1));
      Outstanding o = std::move(outstanding[pick]);
      outstanding.erase(outstanding.begin() + static_cast<std::ptrdiff_t>(pick));
      std::vector<Settlement> settlements;
      for (size_t i = 0; i < o.charges.size(); ++i) {
        const Charge& c = o.charges[i];
        if (c.bucket.ref.kind == LimitKind::kRequests) continue;
        Settlement s{c.bucket, uniform(-c.amount, c.amount / 2 + 3), o.stamps[i]};
        if (c.bucket.ref.kind == LimitKind::kConcurrent) s.delta = 0;
        settlements.push_back(s);
      }
      ASSERT_EQ(memory.SettleNow(Set("a", settlements, now, o.id)), StoreStatus::kOk);
      ASSERT_EQ(Settle(*redis, "a", settlements, now, o.id), StoreStatus::kOk);
      ++settled;
    } else if (action == 19) {
      ASSERT_EQ(memory.ResetNow({"a", AsSpan(specs), now}), StoreStatus::kOk);
      ASSERT_EQ(RunAwaitable(redis->Reset({"a", AsSpan(specs), now})), StoreStatus::kOk);
    }
    ReadResult m = Read(memory, "a", specs, now);
    ReadResult r = Read(*redis, "a", specs, now);
    ASSERT_EQ(r.status, StoreStatus::kOk);
    for (size_t i = 0; i < specs.size(); ++i) {
      ASSERT_EQ(m.states[i].level, r.states[i].level) << i;
      ASSERT_EQ(m.states[i].in_use, r.states[i].in_use) << i;
    }
  }
  EXPECT_GT(admitted, 100);
  EXPECT_GT(refused, 100);
  EXPECT_GT(settled, 100);
}

TEST_F(RedisStoreTest, KeysOfAShardShareOneHashTag) {
  auto store = MakeStore(Options({server_->Url()}));
  std::vector<Charge> charges = {{Tokens("we{ird}%", 10, kMinute), 1},
                                 {Concurrent("we{ird}%", 2), 1}};
  ASSERT_TRUE(Admit(*store, "ten{ant", charges, kT0).admitted);
  testing::TestReply keys = server_->Command({"KEYS", "*"});
  ASSERT_TRUE(keys);
  ASSERT_EQ(keys->elements, 3u);  // two buckets and the admission's record
  for (size_t i = 0; i < keys->elements; ++i) {
    std::string key(keys->element[i]->str, keys->element[i]->len);
    EXPECT_EQ(key.rfind("trl-test:{ten%7Bant}:", 0), 0u) << key;
    EXPECT_EQ(redis::KeySlot(key), redis::KeySlot("ten%7Bant")) << key;
  }
}

TEST_F(RedisStoreTest, JudgesByTheServersClock) {
  auto store = MakeStore(Options({server_->Url()}, /*server_time=*/true));
  std::vector<Charge> charges = {{Tokens("a", 10, kMinute), 1}};
  const int64_t before = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  AdmitResult r = Admit(*store, "a", charges, /*now=*/1);  // an absurd caller clock is ignored
  ASSERT_EQ(r.status, StoreStatus::kOk);
  EXPECT_GE(r.now_micros, before - 60 * kSecond);  // the same machine's clock, not ours
  EXPECT_EQ(r.states[0].level.stamp, r.now_micros);
}

TEST_F(RedisStoreTest, NoScriptAfterScriptFlushIsNeverAFailedDecision) {
  auto store = MakeStore(Options({server_->Url()}));
  std::vector<Charge> charges = {{Tokens("a", 100, kMinute), 1}, {Concurrent("a", 5), 1}};
  AdmitResult first = Admit(*store, "a", charges, kT0);
  ASSERT_TRUE(first.admitted);
  ASSERT_EQ(server_->CommandText({"SCRIPT", "FLUSH"}), "OK");
  AdmitResult second = Admit(*store, "a", charges, kT0);
  ASSERT_EQ(second.status, StoreStatus::kOk);
  EXPECT_EQ(second.states[0].level.level, 98);
  ASSERT_EQ(server_->CommandText({"SCRIPT", "FLUSH"}), "OK");
  std::vector<Settlement> settle = {{charges[0].bucket, -1, kT0}, {charges[1].bucket, 0, 0}};
  EXPECT_EQ(Settle(*store, "a", settle, kT0, last_id_), StoreStatus::kOk);
  ASSERT_EQ(server_->CommandText({"SCRIPT", "FLUSH"}), "OK");
  std::vector<BucketSpec> specs = {charges[0].bucket, charges[1].bucket};
  ReadResult read = Read(*store, "a", specs, kT0);
  ASSERT_EQ(read.status, StoreStatus::kOk);
  EXPECT_EQ(read.states[0].level.level, 99);
  EXPECT_EQ(read.states[1].in_use, 1);
  EXPECT_EQ(store->Client().Stats().noscript, 3u);
}

// A record's name as the script makes it: the prefix and the id's 8 bytes.
std::string RecordKey(std::string_view prefix, uint64_t id) {
  std::string key(prefix);
  redis::PutInt(key, static_cast<int64_t>(id), 8);
  return key;
}

// The batch script sent twice (its reply was lost with the connection): the second run applies
// the settlement no more (its record is gone), does not charge the admission it applied (its
// record is there: answered "admitted", marked a replay), and judges the one it refused afresh.
// The settlement (a refund of 2 tokens of admission 5) comes first; then both admissions, judged
// in order: the first takes 7 of the 10 tokens and the concurrency slot, so the second (3 tokens
// and a slot) is refused for the slot alone.
TEST_F(RedisStoreTest, BatchScriptReplayChargesOnce) {
  // Specs of p:t (10 tokens a minute) and p:c (one slot).
  std::string specs = "t";
  specs += '\0';
  redis::PutInt(specs, 10, 8);
  redis::PutInt(specs, kMinute, 8);
  specs += "c";
  specs += '\0';
  redis::PutInt(specs, 1, 8);
  redis::PutInt(specs, 0, 8);
  auto head = [](std::string& out, int64_t id, int flag, int count) {
    redis::PutInt(out, id, 8);
    redis::PutInt(out, kMinute, 8);  // lease TTL
    redis::PutInt(out, flag, 1);
    redis::PutInt(out, count, 2);
  };
  std::string settlements;
  head(settlements, 5, 0, 1);
  redis::PutInt(settlements, 2, 2);  // p:t
  redis::PutInt(settlements, -2, 8);
  std::string admissions;
  for (auto [id, tokens] : {std::pair{7, 7}, std::pair{9, 3}}) {
    head(admissions, id, 1, 2);
    redis::PutInt(admissions, 2, 2);  // p:t
    redis::PutInt(admissions, tokens, 8);
    redis::PutInt(admissions, 3, 2);  // p:c
    redis::PutInt(admissions, 1, 8);
  }
  // Before: 8 tokens left (so the refund brings the bucket back to 10), admission 5's record.
  const std::string now = std::to_string(kT0);
  ASSERT_EQ(server_->CommandText({"SET", "p:t", "8 0 " + now + " 10"}), "OK");
  ASSERT_EQ(server_->CommandText({"SET", RecordKey("p:r:", 5), now}), "OK");
  auto batch = [&] {
    return server_->Command({"EVAL", redis::kBatchScript, "3", "p:r:", "p:t", "p:c", now, "1000",
                             "0", specs, settlements, admissions});
  };
  for (int run = 0; run < 2; ++run) {
    testing::TestReply r = batch();
    ASSERT_TRUE(r);
    ASSERT_EQ(r->type, REDIS_REPLY_STRING) << redis::ReplyText(*r);
    const std::string_view reply = redis::ReplyText(*r);
    redis::PackedReader now(reply.substr(0, 8));
    EXPECT_EQ(now.Int(8), kT0);
    // Admitted, then refused (the 3 tokens would fit, the slot does not); on the retry the
    // first is a replay, not judged or charged again.
    EXPECT_EQ(reply.substr(8, 2), "10") << run;
    EXPECT_EQ(reply.substr(10, 2), run == 0 ? "00" : "10") << run;
    redis::PackedReader in(reply.substr(12));
    EXPECT_EQ(in.Int(8), run == 0 ? 10 : 3) << run;  // p:t before the admissions: 8 + 2, then 3
    EXPECT_EQ(in.Int(8), 0) << run;                  // no fraction left over
    EXPECT_EQ(in.Int(8), kT0) << run;                // its stamp
    EXPECT_EQ(in.Int(8), run == 0 ? 0 : 1) << run;   // p:c: slots in use before
    EXPECT_EQ(in.Int(8), 0) << run;
    EXPECT_EQ(in.Int(8), 0) << run;
    EXPECT_TRUE(in.AtEnd()) << run;
  }
  EXPECT_EQ(server_->CommandText({"GET", "p:t"}), "3 0 " + now + " 10");
  EXPECT_EQ(server_->Command({"ZCARD", "p:c"})->integer, 1);
  std::string lease7;
  redis::PutInt(lease7, 7, 8);
  EXPECT_EQ(server_->Command({"ZSCORE", "p:c", lease7})->type, REDIS_REPLY_STRING);
  EXPECT_EQ(server_->CommandText({"GET", RecordKey("p:r:", 7)}), now);
  EXPECT_EQ(server_->Command({"EXISTS", RecordKey("p:r:", 9)})->integer, 0);  // refused
  EXPECT_EQ(server_->Command({"EXISTS", RecordKey("p:r:", 5)})->integer, 0);  // settled
  EXPECT_GT(server_->Command({"PTTL", RecordKey("p:r:", 7)})->integer, 0);
}

// A settlement for an admission whose reply was lost: when the admission was applied, its
// charge is replaced by the real cost once, however often the settlement is sent; when it was
// not, a tombstone keeps a late copy of it (still in flight on a dead connection) from applying.
TEST_F(RedisStoreTest, ASettlementAppliesOnceAndKeepsALateAdmissionOut) {
  auto store = MakeStore(Options({server_->Url()}));
  const BucketSpec tokens = Tokens("a", 100, kMinute);
  const BucketSpec slots = Concurrent("a", 1);
  std::vector<Charge> charges = {{tokens, 30}, {slots, 1}};
  ASSERT_TRUE(Admit(*store, "a", charges, kT0).admitted);
  const uint64_t applied = last_id_;
  std::vector<Settlement> cost = {{tokens, -20, kT0}, {slots, 0, 0}};  // it cost 10
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(RunAwaitable(
                  testing::SettleAwaited(*store, Set("a", cost, kT0, applied, /*unknown=*/true))),
              StoreStatus::kOk);
  }
  ReadResult read = Read(*store, "a", {tokens, slots}, kT0);
  EXPECT_EQ(read.states[0].level.level, 90);
  EXPECT_EQ(read.states[1].in_use, 0);

  // Never applied: the settlement (cost 0) leaves a tombstone, and the admission arriving late
  // is not charged.
  AdmitRequest late = Req("a", charges, kT0);
  std::vector<Settlement> nothing = {{tokens, -30, kT0}, {slots, 0, 0}};
  EXPECT_EQ(RunAwaitable(
                testing::SettleAwaited(*store, Set("a", nothing, kT0, late.id, /*unknown=*/true))),
            StoreStatus::kOk);
  AdmitResult r = RunAwaitable(store->Admit(late));
  EXPECT_EQ(r.status, StoreStatus::kError);  // its caller gave it up long ago
  read = Read(*store, "a", {tokens, slots}, kT0);
  EXPECT_EQ(read.states[0].level.level, 90);
  EXPECT_EQ(read.states[1].in_use, 0);
  EXPECT_EQ(server_->CommandText({"GET", RecordKey(store->ShardPrefix("a") + "r:", late.id)}), "x");
  // A settlement whose admission's outcome was known leaves no tombstone.
  AdmitRequest refused = Req("a", {{tokens, 1000}}, kT0);
  EXPECT_EQ(RunAwaitable(testing::SettleAwaited(*store, Set("a", nothing, kT0, refused.id))),
            StoreStatus::kOk);
  EXPECT_EQ(
      server_->Command({"EXISTS", RecordKey(store->ShardPrefix("a") + "r:", refused.id)})->integer,
      0);
}

// Concurrent admissions of one shard share script calls, and each is judged exactly as alone:
// 100 tokens, 64 callers taking 3 each, so exactly 33 are admitted. Settlements share calls
// with admissions.
TEST_F(RedisStoreTest, ConcurrentCallsOfOneShardAreBatchedExactly) {
  auto store = MakeStore(Options({server_->Url()}));
  const BucketSpec bucket = Tokens("a", 100, kDay, true);
  const BucketSpec slots = Concurrent("a", 40);
  ASSERT_EQ(Admit(*store, "a", {{bucket, 0}}, kT0).status, StoreStatus::kOk);  // connected
  ASSERT_EQ(server_->CommandText({"CONFIG", "RESETSTAT"}), "OK");
  constexpr int kCallers = 64;
  std::vector<uint64_t> ids;
  const std::vector<AdmitResult> results =
      AdmitTogether(*store, {{bucket, 3}, {slots, 1}}, kCallers, &ids);
  int admitted = 0;
  std::multiset<std::pair<int64_t, int64_t>> states;  // after each admission: tokens, slots
  for (const AdmitResult& r : results) {
    ASSERT_EQ(r.status, StoreStatus::kOk);
    ASSERT_EQ(r.states.size(), 2u);
    admitted += r.admitted ? 1 : 0;
    EXPECT_EQ(r.states[0].fits, r.admitted);
    EXPECT_TRUE(r.states[1].fits);
    if (r.admitted) {
      states.insert({r.states[0].level.level, r.states[1].in_use});
    } else {  // as the last admission left them
      EXPECT_EQ(r.states[0].level.level, 1);
      EXPECT_EQ(r.states[1].in_use, 33);
    }
  }
  EXPECT_EQ(admitted, 33);
  ExpectFewCalls(0);
  const int before = EvalshaCalls();
  // Each admission saw the bucket as the ones before it in its batch left it.
  std::multiset<std::pair<int64_t, int64_t>> expected;
  for (int k = 1; k <= 33; ++k) expected.insert({100 - 3 * k, k});
  EXPECT_EQ(states, expected);

  // Then the 33 refunds of 1 and 31 new admissions of 1, all at once, sharing calls: the
  // refunds go before the admissions (which need them: the bucket has 1 token left).
  std::vector<Settlement> refund = {{bucket, -1, results[0].states[0].level.stamp}};
  std::vector<uint64_t> admitted_ids;
  for (int i = 0; i < kCallers; ++i) {
    if (results[i].admitted) admitted_ids.push_back(ids[i]);
  }
  std::vector<Charge> one = {{bucket, 1}};
  int settled = 0, admitted_after = 0;
  boost::asio::io_context io;
  for (int i = 0; i < kCallers; ++i) {
    boost::asio::co_spawn(
        io,
        [&, i]() -> boost::asio::awaitable<void> {
          if (i < admitted) {
            StoreStatus status =
                co_await testing::SettleAwaited(*store, Set("a", refund, kT0, admitted_ids[i]));
            settled += status == StoreStatus::kOk ? 1 : 0;
          } else {
            AdmitResult r = co_await store->Admit(Req("a", one, kT0));
            admitted_after += r.status == StoreStatus::kOk && r.admitted ? 1 : 0;
          }
        },
        boost::asio::detached);
  }
  io.run();
  EXPECT_EQ(settled, 33);
  EXPECT_EQ(admitted_after, 31);
  ExpectFewCalls(before);
  ReadResult read = Read(*store, "a", {bucket}, kT0);
  ASSERT_EQ(read.status, StoreStatus::kOk);
  EXPECT_EQ(read.states[0].level.level, 100 - 33 * 3 + 33 - 31);
}

// Admissions of a batch whose total fits every bucket they charge are judged at once (the script
// checks and charges each bucket once), and each still gets the state it would have had one by
// one; when the total does not fit, they are judged one by one.
TEST_F(RedisStoreTest, AdmissionsThatAllFitAreJudgedAtOnceExactly) {
  auto store = MakeStore(Options({server_->Url()}));
  const BucketSpec tokens = Tokens("a", 100, kMinute);
  const BucketSpec requests = Requests("a", 1000, kMinute);
  constexpr int kCallers = 64;
  ASSERT_EQ(Admit(*store, "a", {{tokens, 0}}, kT0).status, StoreStatus::kOk);  // connected
  ASSERT_EQ(server_->CommandText({"CONFIG", "RESETSTAT"}), "OK");

  // One token and one request each: 64 tokens of the 100 fit, however the 64 share their calls.
  // Each admission's states are the ones before it in its batch left.
  std::multiset<std::pair<int64_t, int64_t>> states, expected;
  for (const AdmitResult& r : AdmitTogether(*store, {{tokens, 1}, {requests, 1}}, kCallers)) {
    ASSERT_EQ(r.status, StoreStatus::kOk);
    ASSERT_EQ(r.states.size(), 2u);
    EXPECT_TRUE(r.admitted);
    EXPECT_TRUE(r.states[0].fits && r.states[1].fits);
    states.insert({r.states[0].level.level, r.states[1].level.level});
  }
  for (int k = 1; k <= kCallers; ++k) expected.insert({100 - k, 1000 - k});
  EXPECT_EQ(states, expected);
  ExpectFewCalls(0);
  const int before = EvalshaCalls();

  // Two tokens each, 36 left: 18 are admitted and 46 refused, with the bucket as the last
  // admission left it, however the callers share their calls (a batch whose total does not fit
  // is judged one by one).
  int admitted = 0;
  std::multiset<int64_t> levels, expected_levels;
  for (const AdmitResult& r : AdmitTogether(*store, {{tokens, 2}}, kCallers)) {
    ASSERT_EQ(r.status, StoreStatus::kOk);
    EXPECT_EQ(r.states[0].fits, r.admitted);
    if (r.admitted) {
      ++admitted;
      levels.insert(r.states[0].level.level);
    } else {
      EXPECT_EQ(r.states[0].level.level, 0);
    }
  }
  EXPECT_EQ(admitted, 18);
  for (int k = 1; k <= 18; ++k) expected_levels.insert(36 - 2 * k);
  EXPECT_EQ(levels, expected_levels);
  ExpectFewCalls(before);
}

// The script alone: admissions judged at once are recorded like any others, so a retry of the
// call charges nothing twice.
TEST_F(RedisStoreTest, AdmissionsJudgedAtOnceAreChargedOnceOnARetry) {
  std::string specs = "t";
  specs += '\0';
  redis::PutInt(specs, 10, 8);
  redis::PutInt(specs, kMinute, 8);
  std::string admissions;
  for (int id : {7, 9}) {
    redis::PutInt(admissions, id, 8);
    redis::PutInt(admissions, kMinute, 8);  // lease TTL
    redis::PutInt(admissions, 0, 1);        // no settlement follows: a short record
    redis::PutInt(admissions, 1, 2);        // charges
    redis::PutInt(admissions, 2, 2);        // p:t
    redis::PutInt(admissions, 2, 8);
  }
  std::string all_at_once;
  redis::PutInt(all_at_once, 2, 2);  // admissions
  redis::PutInt(all_at_once, 4, 8);  // p:t's total
  const std::string now = std::to_string(kT0);
  for (int run = 0; run < 2; ++run) {
    testing::TestReply r = server_->Command({"EVAL", redis::kBatchScript, "2", "p:r:", "p:t", now,
                                             "1000", "0", specs, "", admissions, all_at_once});
    ASSERT_TRUE(r);
    ASSERT_EQ(r->type, REDIS_REPLY_STRING) << redis::ReplyText(*r);
    const std::string_view reply = redis::ReplyText(*r);
    EXPECT_EQ(reply.substr(8, 4), run == 0 ? "1100" : "1111") << run;
    redis::PackedReader in(reply.substr(12));
    // p:t before the admissions (the 4 would fit again: the retry must not charge them).
    EXPECT_EQ(in.Int(8), run == 0 ? 10 : 6) << run;
  }
  EXPECT_EQ(server_->CommandText({"GET", "p:t"}), "6 0 " + now + " 10");
  EXPECT_EQ(server_->CommandText({"GET", RecordKey("p:r:", 7)}), now);
  const int64_t ttl = server_->Command({"PTTL", RecordKey("p:r:", 7)})->integer;
  EXPECT_GT(ttl, 0);
  EXPECT_LE(ttl, 1000);
}

// Counts the outcomes reported to a detached settlement's completion.
class CountingCompletion final : public SettleCompletion {
 public:
  void Settled(StoreStatus status) override { (status == StoreStatus::kOk ? ok : error) += 1; }
  std::atomic<int> ok{0}, error{0};
};

// A settlement nobody waits for: alone, it goes at once; behind a call in flight, it joins the
// shard's queue (no coroutine of its own) and goes in the next batch, before the admissions
// that came after it. Each reports once.
TEST_F(RedisStoreTest, DetachedSettlementsGoInTheShardsNextBatch) {
  auto store = MakeStore(Options({server_->Url()}));
  const BucketSpec bucket = Tokens("a", 100, kDay, true);
  uint64_t ids[3];
  int64_t stamp = 0;
  for (uint64_t& id : ids) {
    AdmitResult r = Admit(*store, "a", {{bucket, 10}}, kT0);
    ASSERT_TRUE(r.admitted);
    id = last_id_;
    stamp = r.states[0].level.stamp;
  }
  ASSERT_EQ(server_->CommandText({"CONFIG", "RESETSTAT"}), "OK");
  std::vector<Settlement> refund = {{bucket, -4, stamp}};
  const SettleRequest requests[3] = {Set("a", refund, kT0, ids[0]), Set("a", refund, kT0, ids[1]),
                                     Set("a", refund, kT0, ids[2])};
  CountingCompletion lone, queued;
  boost::asio::io_context io;
  boost::asio::post(io, [&] { store->SettleDetached(requests[0], io.get_executor(), lone); });
  io.run();
  EXPECT_EQ(lone.ok, 1);
  EXPECT_EQ(EvalshaCalls(), 1);  // 74 left

  // The first admission takes all 74 and is in flight while the two refunds and the second
  // admission queue: the second admission fits only if the refunds go before it.
  std::vector<Charge> all = {{bucket, 74}}, eight = {{bucket, 8}};
  AdmitResult lead, after;
  io.restart();
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> { lead = co_await store->Admit(Req("a", all, kT0)); },
      boost::asio::detached);
  boost::asio::post(io, [&] {
    store->SettleDetached(requests[1], io.get_executor(), queued);
    store->SettleDetached(requests[2], io.get_executor(), queued);
    EXPECT_EQ(queued.ok + queued.error, 0);  // in the queue, not done
  });
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        after = co_await store->Admit(Req("a", eight, kT0));
      },
      boost::asio::detached);
  io.run();
  EXPECT_TRUE(lead.admitted);
  EXPECT_EQ(queued.ok, 2);
  EXPECT_EQ(queued.error, 0);
  EXPECT_TRUE(after.admitted);
  EXPECT_EQ(after.states[0].level.level, 0);
  EXPECT_EQ(EvalshaCalls(), 3);

  // Redis down: the outcome is an error, reported once, within the timeout.
  RedisStoreOptions fast = Options({server_->Url()});
  fast.timeout = 50ms;
  auto failing = MakeStore(fast);
  server_->Kill();
  CountingCompletion failed;
  io.restart();
  boost::asio::post(io, [&] { failing->SettleDetached(requests[0], io.get_executor(), failed); });
  io.run();
  EXPECT_EQ(failed.ok, 0);
  EXPECT_EQ(failed.error, 1);
}

// The settlements of a batch are applied one by one, in the order they came, each once (its
// admission's record): a bucket ends as they would leave it one after the other, capped at its
// capacity; a refund for a calendar window that has ended gives back only the debt it carried.
TEST_F(RedisStoreTest, SettlementsOfABatchEndAsAppliedOneByOne) {
  auto store = MakeStore(Options({server_->Url()}));
  const BucketSpec day = Tokens("a", 100, kDay, true);
  const BucketSpec minute = Tokens("a", 1000, kMinute);
  std::vector<Charge> ten = {{day, 10}, {minute, 10}};
  // Yesterday's admission, and four of today's: day 100 - 40 = 60, minute 1000 - 40 = 960.
  ASSERT_TRUE(Admit(*store, "a", ten, kT0 - kDay).admitted);
  const uint64_t yesterday = last_id_;
  uint64_t today[4];
  int64_t window = 0;
  for (uint64_t& id : today) {
    AdmitResult r = Admit(*store, "a", ten, kT0);
    ASSERT_TRUE(r.admitted);
    id = last_id_;
    window = r.states[0].level.stamp;
  }
  ASSERT_EQ(server_->CommandText({"CONFIG", "RESETSTAT"}), "OK");

  // A lead admission of 50 is in flight (10 and 910 left) while the settlements queue.
  const std::vector<std::vector<Settlement>> settlements = {
      {{day, -5, window}, {minute, -5, 0}},         // 15, 915
      {{day, 30, window}, {minute, 30, 0}},         // -15, 885
      {{day, -8, window - kDay}, {minute, -8, 0}},  // an ended window, no debt: -15, 893
      {{day, -30, window}, {minute, 0, 0}},         // 15, 893
      {{day, 0, window}, {minute, -200, 0}},        // 15, 1000 (capped)
  };
  const uint64_t owners[5] = {today[0], today[1], yesterday, today[2], today[3]};
  std::vector<Charge> lead_charges = {{day, 50}, {minute, 50}}, one = {{day, 1}, {minute, 1}};
  AdmitResult lead, after;
  CountingCompletion settled;
  boost::asio::io_context io;
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        lead = co_await store->Admit(Req("a", lead_charges, kT0));
      },
      boost::asio::detached);
  std::vector<SettleRequest> requests;
  for (size_t i = 0; i < settlements.size(); ++i) {
    requests.push_back(Set("a", settlements[i], kT0, owners[i]));
  }
  boost::asio::post(io, [&] {
    for (const SettleRequest& r : requests) store->SettleDetached(r, io.get_executor(), settled);
  });
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> { after = co_await store->Admit(Req("a", one, kT0)); },
      boost::asio::detached);
  io.run();
  ASSERT_TRUE(lead.admitted);
  EXPECT_EQ(settled.ok, 5);
  EXPECT_EQ(EvalshaCalls(), 2);  // the lead, then the settlements and `after` together
  ASSERT_TRUE(after.admitted);
  EXPECT_EQ(after.states[0].level.level, 14);
  EXPECT_EQ(after.states[1].level.level, 999);
  ReadResult read = Read(*store, "a", {day, minute}, kT0);
  ASSERT_EQ(read.status, StoreStatus::kOk);
  EXPECT_EQ(read.states[0].level.level, 14);
  EXPECT_EQ(read.states[1].level.level, 999);
}

// A lone settlement in flight holds nobody up: an admission that finds only it goes at once,
// behind it on the same connection, and still sees its refund (Redis runs a connection's
// commands in order). Redis is stopped meanwhile, so both calls in flight at once shows that the
// admission did not wait for the settlement's reply.
TEST_F(RedisStoreTest, AnAdmissionGoesBesideASettlementInFlight) {
  auto store = MakeStore(Options({server_->Url()}));
  const BucketSpec bucket = Tokens("a", 10, kDay, true);
  AdmitResult first = Admit(*store, "a", {{bucket, 10}}, kT0);
  ASSERT_TRUE(first.admitted);  // none left
  std::vector<Settlement> refund = {{bucket, -10, first.states[0].level.stamp}};
  const SettleRequest request = Set("a", refund, kT0, last_id_);
  std::vector<Charge> all = {{bucket, 10}};
  const AdmitRequest again = Req("a", all, kT0);
  CountingCompletion settled;
  AdmitResult after;
  server_->Pause();
  boost::asio::io_context io;
  boost::asio::post(io, [&] { store->SettleDetached(request, io.get_executor(), settled); });
  boost::asio::co_spawn(
      io, [&]() -> boost::asio::awaitable<void> { after = co_await store->Admit(again); },
      boost::asio::detached);
  std::thread caller([&] { io.run(); });
  bool both_in_flight = false;
  for (int i = 0; i < 500 && !both_in_flight; ++i) {  // bounded: 1 s, half the store's timeout
    both_in_flight = store->Client().Stats().in_flight == 2;
    if (!both_in_flight) std::this_thread::sleep_for(2ms);
  }
  server_->Resume();
  caller.join();
  EXPECT_TRUE(both_in_flight);
  EXPECT_EQ(settled.ok, 1);
  ASSERT_EQ(after.status, StoreStatus::kOk);
  EXPECT_TRUE(after.admitted);
  EXPECT_EQ(after.states[0].level.level, 0);
}

// Shards do not wait for each other: the first call of each goes at once, and the callers
// queued behind each go in one call of their own shard.
// The gateway's I/O threads, each running an io_context, for stores with lanes.
class IoThreads {
 public:
  explicit IoThreads(int n) {
    for (int i = 0; i < n; ++i) contexts_.push_back(std::make_unique<boost::asio::io_context>());
    for (auto& io : contexts_) {
      guards_.push_back(boost::asio::make_work_guard(*io));
      threads_.emplace_back([ctx = io.get()] { ctx->run(); });
    }
  }
  ~IoThreads() {
    guards_.clear();
    for (auto& t : threads_) t.join();
  }
  boost::asio::io_context& operator[](size_t i) { return *contexts_[i]; }
  std::vector<boost::asio::io_context*> Pointers() {
    std::vector<boost::asio::io_context*> out;
    for (auto& io : contexts_) out.push_back(io.get());
    return out;
  }
  // Runs `task` on context `i` and waits for it.
  template <typename T>
  T Run(size_t i, boost::asio::awaitable<T> task) {
    std::promise<T> done;
    boost::asio::co_spawn(*contexts_[i], std::move(task), [&done](std::exception_ptr e, T value) {
      if (e) {
        done.set_exception(e);
      } else {
        done.set_value(std::move(value));
      }
    });
    return done.get_future().get();
  }

 private:
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guards_;
  std::vector<std::thread> threads_;
};

// With lanes, a call made on an I/O thread goes to Redis on that thread's own connection, and
// the shard's queue is still one for all threads: the decisions and levels are exactly those of
// one queue (the same counts as ConcurrentCallsOfOneShardAreBatchedExactly).
TEST_F(RedisStoreTest, LanesOnIoThreadsKeepOneExactQueuePerShard) {
  IoThreads io(2);
  std::string error;
  const auto contexts = io.Pointers();
  auto store = RedisStore::Create(Options({server_->Url()}), &error, contexts);
  ASSERT_TRUE(store) << error;
  const BucketSpec bucket = Tokens("a", 100, kDay, true);
  std::vector<Charge> none = {{bucket, 0}};
  // A lone call from each thread: each goes on its own thread's connection, so two of the
  // three connections (the first lane's has sent no script call) last ran EVALSHA.
  for (size_t i = 0; i < 2; ++i) {
    AdmitResult r = io.Run(i, store->Admit(Req("a", none, kT0)));
    ASSERT_EQ(r.status, StoreStatus::kOk);
  }
  std::istringstream clients(server_->CommandText({"CLIENT", "LIST"}));
  int evalsha = 0;
  for (std::string line; std::getline(clients, line);) {
    evalsha += line.find(" cmd=evalsha ") != std::string::npos ? 1 : 0;
  }
  EXPECT_EQ(evalsha, 2);

  // 64 admissions of 3 from both threads at once, then 33 refunds of 1 and 31 admissions of 1.
  constexpr int kCallers = 64;
  std::vector<Charge> three = {{bucket, 3}}, one = {{bucket, 1}};
  std::atomic<int> admitted{0}, settled{0}, admitted_after{0}, failed{0};
  std::mutex ids_mu;
  std::vector<uint64_t> admitted_ids;
  auto all = [&](auto call) {
    std::atomic<int> left{kCallers};
    std::promise<void> done;
    for (int i = 0; i < kCallers; ++i) {
      boost::asio::co_spawn(
          io[i % 2],
          [&, i]() -> boost::asio::awaitable<void> {
            co_await call(i);
            if (--left == 0) done.set_value();
          },
          boost::asio::detached);
    }
    done.get_future().wait();
  };
  all([&](int) -> boost::asio::awaitable<void> {
    const AdmitRequest request = Req("a", three, kT0);
    AdmitResult r = co_await store->Admit(request);
    failed += r.status == StoreStatus::kOk ? 0 : 1;
    admitted += r.admitted ? 1 : 0;
    if (r.admitted) {
      std::lock_guard lock(ids_mu);
      admitted_ids.push_back(request.id);
    }
  });
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(admitted, 33);
  std::vector<Settlement> refund = {{bucket, -1, 0}};
  refund[0].admitted_stamp =
      RunAwaitable(store->Read({"a", AsSpan(std::vector<BucketSpec>{bucket}), kT0}))
          .states[0]
          .level.stamp;
  all([&](int i) -> boost::asio::awaitable<void> {
    if (i < 33) {
      const SettleRequest request = Set("a", refund, kT0, admitted_ids[i]);
      StoreStatus status = co_await testing::SettleAwaited(*store, request);
      settled += status == StoreStatus::kOk ? 1 : 0;
    } else {
      const AdmitRequest request = Req("a", one, kT0);
      AdmitResult r = co_await store->Admit(request);
      failed += r.status == StoreStatus::kOk ? 0 : 1;
      admitted_after += r.admitted ? 1 : 0;
    }
  });
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(settled, 33);
  ReadResult read = Read(*store, "a", {bucket}, kT0);
  ASSERT_EQ(read.status, StoreStatus::kOk);
  // The refunds and admissions interleave by arrival, so how many of the 31 fit depends on the
  // order; the level is exact whatever it was.
  EXPECT_EQ(read.states[0].level.level, 100 - 33 * 3 + 33 - admitted_after);

  // Shutdown while the threads run: calls made after it fail at once, on their own threads.
  store->Shutdown();
  AdmitResult after = io.Run(1, store->Admit(Req("a", one, kT0)));
  EXPECT_EQ(after.status, StoreStatus::kError);
}

// An admission made right after a settlement on the same thread (the next request of a client
// connection whose bytes are already in) is judged after it and sees its refund: it goes beside
// the settlement only once the settlement's command is on the connection, and queues behind it
// before (were SettleDetached to start its call later, as it does for a caller on another
// thread, the admission would otherwise reach Redis first).
TEST_F(RedisStoreTest, AnAdmissionRightAfterASettlementOnItsThreadSeesTheRefund) {
  IoThreads io(1);
  std::string error;
  const auto contexts = io.Pointers();
  auto store = RedisStore::Create(Options({server_->Url()}), &error, contexts);
  ASSERT_TRUE(store) << error;
  const BucketSpec bucket = Tokens("a", 10, kDay, true);
  std::vector<Charge> all = {{bucket, 10}};
  const AdmitRequest first_request = Req("a", all, kT0);
  AdmitResult first = io.Run(0, store->Admit(first_request));
  ASSERT_TRUE(first.admitted);  // none left
  std::vector<Settlement> refund = {{bucket, -10, first.states[0].level.stamp}};
  const SettleRequest request = Set("a", refund, kT0, first_request.id);
  const AdmitRequest again = Req("a", all, kT0);
  CountingCompletion settled;
  AdmitResult after = io.Run(0, [&]() -> boost::asio::awaitable<AdmitResult> {
    store->SettleDetached(request, co_await boost::asio::this_coro::executor, settled);
    co_return co_await store->Admit(again);
  }());
  EXPECT_EQ(settled.ok, 1);
  ASSERT_EQ(after.status, StoreStatus::kOk);
  EXPECT_TRUE(after.admitted);
  store->Shutdown();
}

TEST_F(RedisStoreTest, ShardsAreBatchedApart) {
  auto store = MakeStore(Options({server_->Url()}));
  const BucketSpec a = Tokens("a", 100, kDay, true), b = Tokens("b", 100, kDay, true);
  ASSERT_EQ(Admit(*store, "a", {{a, 0}}, kT0).status, StoreStatus::kOk);  // connected
  ASSERT_EQ(server_->CommandText({"CONFIG", "RESETSTAT"}), "OK");
  std::vector<Charge> on_a = {{a, 3}}, on_b = {{b, 3}};
  int admitted_a = 0, admitted_b = 0;
  boost::asio::io_context io;
  for (int i = 0; i < 64; ++i) {
    const bool first = i % 2 == 0;
    boost::asio::co_spawn(
        io,
        [&, first]() -> boost::asio::awaitable<void> {
          const AdmitRequest request = first ? Req("a", on_a, kT0) : Req("b", on_b, kT0);
          AdmitResult r = co_await store->Admit(request);
          if (r.admitted) ++(first ? admitted_a : admitted_b);
        },
        boost::asio::detached);
  }
  io.run();
  EXPECT_EQ(admitted_a, 32);
  EXPECT_EQ(admitted_b, 32);
  std::string stats = server_->CommandText({"INFO", "commandstats"});
  EXPECT_NE(stats.find("cmdstat_evalsha:calls=4,"), std::string::npos) << stats;
  EXPECT_EQ(Read(*store, "a", {a}, kT0).states[0].level.level, 4);
  EXPECT_EQ(Read(*store, "b", {b}, kT0).states[0].level.level, 4);
}

// Connections killed by the server mid-load (callers on two threads): every decision still
// succeeds, and none is applied twice (each admission charges exactly once even when it had to
// be sent again).
TEST_F(RedisStoreTest, ClientKillMidLoadLosesNoDecisionAndChargesOnce) {
  auto store = MakeStore(Options({server_->Url()}));
  const BucketSpec bucket = Tokens("a", 1'000'000'000, kDay, true);
  constexpr int kWorkers = 64, kPerWorker = 150;
  std::atomic<int> done{0}, failed{0}, admitted{0};
  boost::asio::io_context io;
  for (int w = 0; w < kWorkers; ++w) {
    boost::asio::co_spawn(
        io,
        [&]() -> boost::asio::awaitable<void> {
          std::vector<Charge> charges = {{bucket, 3}};
          for (int i = 0; i < kPerWorker; ++i) {
            const AdmitRequest request = Req("a", charges, kT0);
            AdmitResult r = co_await store->Admit(request);
            if (r.status != StoreStatus::kOk) ++failed;
            if (r.admitted) ++admitted;
            int n = ++done;
            if (n % (kWorkers * kPerWorker / 4) == 0) {
              server_->CommandText({"CLIENT", "KILL", "TYPE", "normal"});
            }
          }
        },
        boost::asio::detached);
  }
  // Two threads run the callers, so batches resume callers on both.
  std::thread second([&io] { io.run(); });
  io.run();
  second.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(admitted.load(), kWorkers * kPerWorker);
  EXPECT_GE(store->Client().Stats().drops, 3u);
  std::vector<BucketSpec> specs = {bucket};
  EXPECT_EQ(Read(*store, "a", specs, kT0).states[0].level.level,
            1'000'000'000 - 3 * kWorkers * kPerWorker);
}

TEST_F(RedisStoreTest, PausedServerIsAnErrorWithinTheTimeout) {
  RedisStoreOptions options = Options({server_->Url()});
  options.timeout = 50ms;
  auto store = MakeStore(options);
  std::vector<Charge> charges = {{Tokens("a", 100, kMinute), 1}};
  ASSERT_TRUE(WaitUntilAdmitting(*store, charges));
  server_->Pause();
  const auto start = std::chrono::steady_clock::now();
  AdmitResult r = Admit(*store, "a", charges, kT0);
  const auto took = std::chrono::steady_clock::now() - start;
  // Redis is stopped: this answer came from the deadline, not from Redis.
  EXPECT_EQ(r.status, StoreStatus::kError);
  EXPECT_GE(took, 50ms);
  std::vector<BucketSpec> specs = {charges[0].bucket};
  EXPECT_EQ(Read(*store, "a", specs, kT0).status, StoreStatus::kError);
  server_->Resume();
  EXPECT_TRUE(WaitUntilAdmitting(*store, charges));
}

TEST_F(RedisStoreTest, RedisDownFailsFastAndRecovers) {
  RedisStoreOptions options = Options({server_->Url()});
  options.timeout = 50ms;
  auto store = MakeStore(options);
  std::vector<Charge> charges = {{Tokens("a", 100, kMinute), 1}};
  ASSERT_TRUE(WaitUntilAdmitting(*store, charges));
  server_->Kill();
  EXPECT_EQ(Admit(*store, "a", charges, kT0).status, StoreStatus::kError);
  EXPECT_EQ(Admit(*store, "a", charges, kT0).status, StoreStatus::kError);
  std::string error;
  ASSERT_TRUE(server_->Restart(&error)) << error;
  EXPECT_TRUE(WaitUntilAdmitting(*store, charges));  // the scripts reload by themselves
}

// A lease nobody releases (a crashed instance) lapses by the server's clock: the store stamps it
// with Redis's TIME plus its TTL and compares Redis's TIME with that stamp, never the caller's
// clock (kT0 here, years behind the server's). No time is waited for: the lease's stamp is set
// to a moment the server's clock has already passed, as if its TTL had run out.
TEST_F(RedisStoreTest, LeasesExpireByTheServersClock) {
  auto store = MakeStore(Options({server_->Url()}, /*server_time=*/true));
  std::vector<Charge> charges = {{Concurrent("a", 1), 1}};
  constexpr int64_t kTtl = 10 * kMinute;
  AdmitResult held = Admit(*store, "a", charges, kT0, kTtl);
  ASSERT_TRUE(held.admitted);
  EXPECT_GT(held.now_micros, kT0);  // the server's time
  std::string lease;
  redis::PutInt(lease, last_id_, 8);
  const std::string leases = store->ShardPrefix("a") + charges[0].bucket.ref.Id();
  EXPECT_EQ(server_->CommandText({"ZSCORE", leases, lease}),
            std::to_string(held.now_micros + kTtl));

  AdmitResult refused = Admit(*store, "a", charges, kT0, kTtl);
  ASSERT_EQ(refused.status, StoreStatus::kOk);
  EXPECT_FALSE(refused.admitted);
  EXPECT_EQ(refused.states[0].in_use, 1);

  // The lease's end, moved to a time the server has passed.
  ASSERT_EQ(server_->CommandText({"ZADD", leases, "XX", std::to_string(refused.now_micros), lease}),
            "0");
  AdmitResult freed = Admit(*store, "a", charges, kT0, kTtl);
  ASSERT_EQ(freed.status, StoreStatus::kOk);
  EXPECT_TRUE(freed.admitted);
  // The lease set itself expires after its last lease (plus the margin).
  EXPECT_GT(std::stoll(server_->CommandText({"PTTL", leases})), 0);
}

TEST(RedisStoreCreateTest, BadUrlIsAnErrorAtStartup) {
  std::string error;
  RedisStoreOptions options;
  options.client.urls = {"redis://:secret@host:notaport"};
  EXPECT_FALSE(RedisStore::Create(options, &error));
  EXPECT_EQ(error, "URL #1: bad port");
}

// Three masters; load on many shards, one of whose slots migrates to another master in the
// middle: no decision fails and every charge is counted once.
TEST(RedisClusterStoreTest, SlotMigrationUnderLoadFailsNoDecision) {
  auto cluster = testing::StartRedisCluster();
  if (!cluster) return;
  auto store = MakeStore(Options(cluster->Urls()));

  const std::string shards[] = {"acme", "globex", "initech", "umbrella", "hooli", "stark"};
  std::vector<BucketSpec> buckets;
  for (const std::string& shard : shards) buckets.push_back(Tokens(shard, 1'000'000, kDay));

  const std::string moving = store->ShardPrefix("acme");
  const int slot = redis::KeySlot(moving);
  const int from = cluster->OwnerOf(slot);
  ASSERT_GE(from, 0);
  const int to = (from + 1) % 3;
  RedisServer& source = cluster->node(from);
  RedisServer& target = cluster->node(to);

  // The load runs until the migration is over (and at least kPerWorker calls per worker).
  constexpr int kWorkers = 24, kPerWorker = 100;
  std::atomic<int> done{0}, failed{0};
  std::atomic<bool> migrate{false}, migrated{false};
  boost::asio::io_context io;
  for (int w = 0; w < kWorkers; ++w) {
    boost::asio::co_spawn(
        io,
        [&, w]() -> boost::asio::awaitable<void> {
          const size_t b = static_cast<size_t>(w) % buckets.size();
          std::vector<Charge> charges = {{buckets[b], 1}};
          for (int i = 0; i < kPerWorker || !migrated.load(); ++i) {
            const AdmitRequest request = Req(shards[b], charges, kT0);
            AdmitResult r = co_await store->Admit(request);
            if (r.status != StoreStatus::kOk || !r.admitted) ++failed;
            if (++done == kWorkers * kPerWorker / 3) migrate = true;
          }
        },
        boost::asio::detached);
  }
  std::thread migrator([&] {
    while (!migrate.load()) std::this_thread::yield();
    const std::string s = std::to_string(slot);
    const std::string source_id = cluster->NodeId(from), target_id = cluster->NodeId(to);
    target.CommandText({"CLUSTER", "SETSLOT", s, "IMPORTING", source_id});
    source.CommandText({"CLUSTER", "SETSLOT", s, "MIGRATING", target_id});
    for (;;) {
      testing::TestReply keys = source.Command({"CLUSTER", "GETKEYSINSLOT", s, "100"});
      if (!keys || keys->elements == 0) break;
      std::vector<std::string> migrate_cmd = {
          "MIGRATE", "127.0.0.1", std::to_string(target.port()), "", "0", "5000", "KEYS"};
      for (size_t i = 0; i < keys->elements; ++i) {
        migrate_cmd.emplace_back(keys->element[i]->str, keys->element[i]->len);
      }
      source.Command(migrate_cmd);
    }
    for (size_t n = 0; n < cluster->size(); ++n) {
      cluster->node(n).CommandText({"CLUSTER", "SETSLOT", s, "NODE", target_id});
    }
    migrated = true;
  });
  io.run();
  migrator.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(cluster->OwnerOf(slot), to);
  redis::ClientStats stats = store->Client().Stats();
  EXPECT_GE(stats.slot_refreshes, 1u);
  EXPECT_GE(stats.moved + stats.ask, 1u);  // the client did see the slot move
  std::printf("calls %d: MOVED %llu, ASK %llu, TRYAGAIN %llu, slot map loads %llu\n", done.load(),
              static_cast<unsigned long long>(stats.moved),
              static_cast<unsigned long long>(stats.ask),
              static_cast<unsigned long long>(stats.tryagain),
              static_cast<unsigned long long>(stats.slot_refreshes));
  // Every admission charged exactly once, wherever its keys ended up.
  int64_t total = 0;
  for (size_t b = 0; b < buckets.size(); ++b) {
    std::vector<BucketSpec> one = {buckets[b]};
    ReadResult r = RunAwaitable(store->Read({shards[b], AsSpan(one), kT0}));
    ASSERT_EQ(r.status, StoreStatus::kOk);
    total += 1'000'000 - r.states[0].level.level;
  }
  EXPECT_EQ(total, done.load());
}

}  // namespace
}  // namespace trl
