// BatchCall without Redis: what it packs for the batch script, and how it reads a reply back
// into each admission's outcome (lua_scripts.h describes both).
#include "redis_store/batch_call.h"

#include <gtest/gtest.h>

#include <array>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

#include "redis_store/packed.h"

namespace trl::redis {
namespace {

constexpr int64_t kMinute = 60'000'000;
constexpr int64_t kNow = 1'800'000'000'000'000;

const BucketSpec kTokens{{ScopeKind::kKey, "k", "", LimitKind::kTokens, kMinute, false}, 100};
const BucketSpec kSlots{{ScopeKind::kKey, "k", "", LimitKind::kConcurrent, 0, false}, 2};

AdmitRequest Admission(std::span<const Charge> charges, uint64_t id) {
  AdmitRequest r;
  r.shard_key = "k";
  r.charges = charges;
  r.now_micros = kNow;
  r.lease_ttl_micros = kMinute;
  r.id = id;
  r.settles = true;
  return r;
}

// The reply of a batch: now, a flag and a replay mark per admission, then each bucket's state.
std::string Reply(std::string_view flags, std::string_view replays,
                  std::initializer_list<std::array<int64_t, 3>> buckets) {
  std::string out;
  PutInt(out, kNow, 8);
  out += flags;
  out += replays;
  for (const auto& b : buckets) {
    for (int64_t v : b) PutInt(out, v, 8);
  }
  return out;
}

TEST(BatchCallTest, PacksKeysOnceAndTheTotalsWhenEveryChargeCanGoTogether) {
  const std::vector<Charge> a{{kTokens, 30}};
  const std::vector<Charge> b{{kTokens, 50}};
  const AdmitRequest first = Admission(a, 1), second = Admission(b, 2);
  BatchCall call("trl:{k}:", 64);
  call.AddAdmission(first);
  call.AddAdmission(second);
  EXPECT_EQ(call.Admissions(), 2u);
  std::vector<std::string> args = call.TakeArgs("sha", "0", "1000", "1000");
  ASSERT_EQ(args.size(), 12u);
  EXPECT_EQ(args[0], "EVALSHA");
  EXPECT_EQ(args[1], "sha");
  EXPECT_EQ(args[2], "2");  // the records' prefix and the one bucket
  EXPECT_EQ(args[3], "trl:{k}:r:");
  EXPECT_EQ(args[4], "trl:{k}:" + kTokens.ref.Id());
  EXPECT_EQ(args[8].size(), 18u);  // one spec
  EXPECT_TRUE(args[9].empty());    // no settlement
  EXPECT_EQ(args[10].size(), 2 * (19 + 10u));
  PackedReader totals(args[11]);
  EXPECT_EQ(totals.Int(2), 2);   // admissions
  EXPECT_EQ(totals.Int(8), 80);  // their total on the bucket
  EXPECT_TRUE(totals.AtEnd());
}

TEST(BatchCallTest, ConcurrencyOrASettlementAloneSendsNoTotals) {
  const std::vector<Charge> a{{kTokens, 30}, {kSlots, 1}};
  const std::vector<Charge> b{{kTokens, 10}};
  const AdmitRequest first = Admission(a, 1), second = Admission(b, 2);
  const std::vector<Settlement> settlements{{kTokens, -5, 0}};
  SettleRequest settle;
  settle.settlements = settlements;
  settle.id = 3;
  BatchCall call("trl:{k}:", 64);
  call.AddSettlement(settle);
  call.AddAdmission(first);
  call.AddAdmission(second);
  std::vector<std::string> args = call.TakeArgs("sha", "0", "1000", "1000");
  ASSERT_EQ(args.size(), 13u);
  EXPECT_EQ(args[2], "3");             // the records' prefix and two buckets
  EXPECT_EQ(args[9].size(), 2 * 18u);  // two specs
  EXPECT_EQ(args[10].size(), 19 + 10u);
  EXPECT_TRUE(args[12].empty());
}

TEST(BatchCallTest, ReplaysTheVerdictsOnTheStatesTheBucketsStartedFrom) {
  const std::vector<Charge> a{{kTokens, 30}, {kSlots, 1}};
  const std::vector<Charge> b{{kTokens, 50}, {kSlots, 1}};
  const std::vector<Charge> c{{kTokens, 40}, {kSlots, 1}};
  const AdmitRequest first = Admission(a, 1), second = Admission(b, 2), third = Admission(c, 3);
  BatchCall call("trl:{k}:", 64);
  call.AddAdmission(first);
  call.AddAdmission(second);
  call.AddAdmission(third);
  call.TakeArgs("sha", "0", "1000", "1000");
  // 100 tokens and 1 slot in use before: the first fits, the second has no slot left, the
  // third neither.
  const std::string reply = Reply("100", "000", {{100, 0, kNow}, {1, 0, 0}});
  ASSERT_TRUE(call.ReadReply(reply));
  AdmitResult r1, r2, r3;
  ASSERT_TRUE(call.Replay(first, r1));
  ASSERT_TRUE(call.Replay(second, r2));
  ASSERT_TRUE(call.Replay(third, r3));
  EXPECT_TRUE(r1.admitted);
  EXPECT_EQ(r1.now_micros, kNow);
  EXPECT_EQ(r1.states[0].level.level, 70);
  EXPECT_EQ(r1.states[1].in_use, 2);
  EXPECT_FALSE(r2.admitted);
  EXPECT_TRUE(r2.states[0].fits);
  EXPECT_FALSE(r2.states[1].fits);
  EXPECT_EQ(r2.states[0].level.level, 70);  // nothing charged
  EXPECT_FALSE(r3.admitted);
}

TEST(BatchCallTest, AReplyThatDoesNotAddUpFails) {
  const std::vector<Charge> a{{kTokens, 30}};
  const AdmitRequest first = Admission(a, 1);
  {
    BatchCall call("trl:{k}:", 64);
    call.AddAdmission(first);
    call.TakeArgs("sha", "0", "1000", "1000");
    EXPECT_FALSE(call.ReadReply(Reply("1", "0", {})));  // a bucket's state is missing
  }
  {
    BatchCall call("trl:{k}:", 64);
    call.AddAdmission(first);
    call.TakeArgs("sha", "0", "1000", "1000");
    const std::string reply = Reply("1", "0", {{10, 0, kNow}});
    ASSERT_TRUE(call.ReadReply(reply));
    AdmitResult r;
    EXPECT_FALSE(call.Replay(first, r));  // admitted, but 30 tokens do not fit in 10
  }
  {
    BatchCall call("trl:{k}:", 64);
    call.AddAdmission(first);
    call.TakeArgs("sha", "0", "1000", "1000");
    const std::string reply = Reply("?", "0", {{100, 0, kNow}});
    ASSERT_TRUE(call.ReadReply(reply));
    AdmitResult r;
    EXPECT_FALSE(call.Replay(first, r));  // not a flag
  }
}

TEST(BatchCallTest, AnAdmissionAppliedByAnEarlierCopyIsNotChargedAgain) {
  const std::vector<Charge> a{{kTokens, 30}};
  const AdmitRequest first = Admission(a, 1);
  BatchCall call("trl:{k}:", 64);
  call.AddAdmission(first);
  call.TakeArgs("sha", "0", "1000", "1000");
  const std::string reply = Reply("1", "1", {{20, 0, kNow}});
  ASSERT_TRUE(call.ReadReply(reply));
  AdmitResult r;
  ASSERT_TRUE(call.Replay(first, r));
  EXPECT_TRUE(r.admitted);
  EXPECT_EQ(r.states[0].level.level, 20);
}

}  // namespace
}  // namespace trl::redis
