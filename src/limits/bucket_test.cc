#include "limits/bucket.h"

#include <gtest/gtest.h>

#include "fakes/micros.h"

namespace trl {
namespace {

using testing::kDay;
using testing::kMinute;
using testing::kSecond;
using testing::kT0;

BucketParams Rolling(int64_t capacity, int64_t period) {
  return {LimitKind::kTokens, capacity, period, false};
}
BucketParams Calendar(int64_t capacity, int64_t period) {
  return {LimitKind::kTokens, capacity, period, true};
}

TEST(BucketTest, StartsFull) {
  BucketLevel s = FullLevel(Rolling(100, kMinute), kT0);
  EXPECT_EQ(s.level, 100);
  EXPECT_EQ(s.frac, 0);
  EXPECT_EQ(s.stamp, kT0);
  BucketLevel c = FullLevel(Calendar(100, kDay), kT0 + 123);
  EXPECT_EQ(c.level, 100);
  EXPECT_EQ(c.stamp % kDay, 0);
  EXPECT_LE(c.stamp, kT0 + 123);
  EXPECT_GT(c.stamp + kDay, kT0 + 123);
}

TEST(BucketTest, RollingRefillIsExactAtUnitBoundaries) {
  BucketParams p = Rolling(60, kMinute);  // one token per second
  BucketLevel s = FullLevel(p, kT0);
  Spend(p, 60, s);
  ASSERT_EQ(s.level, 0);
  Refresh(p, kT0 + kSecond - 1, s);
  EXPECT_EQ(s.level, 0);
  EXPECT_EQ(s.frac, 60 * (kSecond - 1));
  Refresh(p, kT0 + kSecond, s);
  EXPECT_EQ(s.level, 1);
  EXPECT_EQ(s.frac, 0);
  Refresh(p, kT0 + 30 * kSecond, s);
  EXPECT_EQ(s.level, 30);
}

TEST(BucketTest, ManySmallRefreshesEqualOneLargeOne) {
  // 7 tokens per 3 s: the rate is not a whole number of tokens per microsecond or per second.
  BucketParams p = Rolling(7, 3 * kSecond);
  BucketLevel stepped = FullLevel(p, kT0);
  Spend(p, 7, stepped);
  BucketLevel once = stepped;
  int64_t t = kT0;
  for (int i = 0; i < 2000; ++i) {
    t += 997;  // a prime step, so steps never line up with unit boundaries
    Refresh(p, t, stepped);
  }
  Refresh(p, t, once);
  EXPECT_EQ(stepped, once);
  // 2000 * 997 us = 1.994 s -> 7 * 1.994 / 3 = 4.652... tokens
  EXPECT_EQ(once.level, 4);
}

TEST(BucketTest, RefillNeverExceedsCapacity) {
  BucketParams p = Rolling(100, kMinute);
  BucketLevel s = FullLevel(p, kT0);
  Spend(p, 10, s);
  Refresh(p, kT0 + 10 * kMinute, s);
  EXPECT_EQ(s.level, 100);
  EXPECT_EQ(s.frac, 0);
  Spend(p, -50, s);  // refund on a full bucket
  EXPECT_EQ(s.level, 100);
}

TEST(BucketTest, DebtIsRepaidByRefill) {
  BucketParams p = Rolling(100, kMinute);  // 0.6 s per token
  BucketLevel s = FullLevel(p, kT0);
  Spend(p, 150, s);
  EXPECT_EQ(s.level, -50);
  EXPECT_EQ(MicrosUntil(p, s, 0, kT0), 30 * kSecond);
  EXPECT_EQ(MicrosUntil(p, s, 10, kT0), 36 * kSecond);
  Refresh(p, kT0 + 30 * kSecond, s);
  EXPECT_EQ(s.level, 0);
  EXPECT_EQ(MicrosUntil(p, s, 0, kT0 + 30 * kSecond), 0);
}

TEST(BucketTest, MicrosUntilRoundsUpAndCountsTheFraction) {
  BucketParams p = Rolling(3, kSecond);  // a token every 333333.33 us
  BucketLevel s = FullLevel(p, kT0);
  Spend(p, 3, s);
  EXPECT_EQ(MicrosUntil(p, s, 1, kT0), 333'334);
  EXPECT_EQ(MicrosUntil(p, s, 3, kT0), kSecond);
  Refresh(p, kT0 + 333'333, s);
  EXPECT_EQ(s.level, 0);
  EXPECT_EQ(MicrosUntil(p, s, 1, kT0 + 333'333), 1);
  Refresh(p, kT0 + 333'334, s);
  EXPECT_EQ(s.level, 1);
}

TEST(BucketTest, CalendarWindowStartsFullButCarriesDebt) {
  BucketParams p = Calendar(1000, kDay);
  const int64_t midnight = 19'676 * kDay;  // 2023-11-15T00:00:00Z
  BucketLevel s = FullLevel(p, midnight - kSecond / 2);
  EXPECT_EQ(s.stamp, midnight - kDay);
  Spend(p, 1200, s);
  EXPECT_EQ(s.level, -200);
  EXPECT_EQ(MicrosUntil(p, s, 1, midnight - kSecond / 2), kSecond / 2);
  Refresh(p, midnight - 1, s);
  EXPECT_EQ(s.level, -200);  // no refill inside a window
  Refresh(p, midnight, s);
  EXPECT_EQ(s.level, 800);  // the new day pays yesterday's 200 first
  EXPECT_EQ(s.frac, 200);
  EXPECT_EQ(s.stamp, midnight);
  Refresh(p, midnight + kDay, s);
  EXPECT_EQ(s.level, 1000);
  EXPECT_EQ(s.frac, 0);
}

TEST(BucketTest, ADebtLargerThanAWindowTakesSeveralWindows) {
  BucketParams p = Calendar(1000, kDay);
  const int64_t midnight = 19'676 * kDay;
  BucketLevel s = FullLevel(p, midnight + kSecond);
  Spend(p, 3500, s);  // -2500
  // Windows start at -1500, -500, then 500: the third one admits.
  EXPECT_EQ(MicrosUntil(p, s, 1, midnight + kSecond), 3 * kDay - kSecond);
  EXPECT_EQ(MicrosUntil(p, s, 500, midnight + kSecond), 3 * kDay - kSecond);
  EXPECT_EQ(MicrosUntil(p, s, 501, midnight + kSecond), 4 * kDay - kSecond);
  Refresh(p, midnight + 2 * kDay, s);  // two windows on, untouched in between
  EXPECT_EQ(s.level, -500);
  EXPECT_EQ(s.frac, 1500);
  Refresh(p, midnight + 3 * kDay + 5, s);
  EXPECT_EQ(s.level, 500);
  EXPECT_EQ(s.frac, 500);
}

TEST(BucketTest, ALateRefundGivesBackOnlyTheDebtItCaused) {
  BucketParams p = Calendar(1000, kDay);
  const int64_t midnight = 19'676 * kDay;
  BucketLevel s = FullLevel(p, midnight - kSecond);
  const int64_t admitted = s.stamp;
  Spend(p, 1100, s);  // reserved 1100 just before midnight: -100
  Refresh(p, midnight + kSecond, s);
  ASSERT_EQ(s.level, 900);
  // It cost 500: had the refund of 600 come in time, the day would have ended at 500 and the
  // new one started full.
  SettleDelta(p, -600, admitted, s);
  EXPECT_EQ(s.level, 1000);
  EXPECT_EQ(s.frac, 0);
  // A refund in the window it was charged in applies whole; an extra charge always applies.
  const int64_t today = s.stamp;
  Spend(p, 300, s);
  SettleDelta(p, -200, today, s);
  EXPECT_EQ(s.level, 900);
  SettleDelta(p, 50, admitted, s);
  EXPECT_EQ(s.level, 850);
  // Nothing was carried over: a late refund gives nothing back.
  SettleDelta(p, -400, admitted, s);
  EXPECT_EQ(s.level, 850);
}

TEST(BucketTest, ALateRefundLargerThanTheCarriedDebtStopsThere) {
  BucketParams p = Calendar(1000, kDay);
  const int64_t midnight = 19'676 * kDay;
  BucketLevel s = FullLevel(p, midnight - kSecond);
  const int64_t admitted = s.stamp;
  Spend(p, 1050, s);  // -50
  Refresh(p, midnight, s);
  Spend(p, 400, s);  // 950 - 400 = 550 today
  SettleDelta(p, -1000, admitted, s);
  EXPECT_EQ(s.level, 600);  // 50 back, not 1000
  EXPECT_EQ(s.frac, 0);
}

TEST(BucketTest, CalendarHourAlignsToTheTopOfTheHour) {
  BucketParams p = Calendar(10, 3600 * kSecond);
  BucketLevel s = FullLevel(p, kT0 + 1234 * kSecond);
  EXPECT_EQ(s.stamp % (3600 * kSecond), 0);
  Spend(p, 10, s);
  int64_t now = kT0 + 1234 * kSecond;
  EXPECT_EQ(MicrosUntil(p, s, 1, now), s.stamp + 3600 * kSecond - now);
}

TEST(BucketTest, AChangedCapacityKeepsWhatWasUsed) {
  // A daily quota of 100000 with 43 used, lowered to 100: 57 left, 29 after a 28-token request.
  BucketLevel s = FullLevel(Calendar(100'000, kDay), kT0);
  Spend(Calendar(100'000, kDay), 43, s);
  Refresh(Calendar(100, kDay), kT0 + kSecond, s);
  EXPECT_EQ(s.level, 57);
  EXPECT_EQ(s.capacity, 100);
  Spend(Calendar(100, kDay), 28, s);
  EXPECT_EQ(s.level, 29);
  // Raised again mid-day: the 71 used stay used.
  Refresh(Calendar(100'000, kDay), kT0 + 2 * kSecond, s);
  EXPECT_EQ(s.level, 99'929);
  // Rolling buckets alike; lowered below what was used, the bucket is in debt.
  BucketLevel r = FullLevel(Rolling(100, kMinute), kT0);
  Spend(Rolling(100, kMinute), 70, r);  // 30 left
  Refresh(Rolling(50, kMinute), kT0, r);
  EXPECT_EQ(r.level, -20);
  Refresh(Rolling(200, kMinute), kT0, r);
  EXPECT_EQ(r.level, 130);
}

TEST(BucketTest, ClockGoingBackwardsChangesNothing) {
  BucketParams p = Rolling(60, kMinute);
  BucketLevel s = FullLevel(p, kT0);
  Spend(p, 60, s);
  Refresh(p, kT0 + 10 * kSecond, s);
  BucketLevel before = s;
  Refresh(p, kT0 + 5 * kSecond, s);
  EXPECT_EQ(s, before);
}

TEST(BucketTest, HugeCapacitiesAndGapsDoNotOverflow) {
  BucketParams p = Rolling(4'000'000'000'000'000'000, kDay);
  BucketLevel s = FullLevel(p, kT0);
  Spend(p, p.capacity, s);
  Refresh(p, kT0 + 3650 * kDay, s);
  EXPECT_EQ(s.level, p.capacity);
  Spend(p, p.capacity, s);
  Refresh(p, kT0 + 3650 * kDay + kDay / 2, s);
  EXPECT_EQ(s.level, p.capacity / 2);
}

TEST(BucketTest, CeilMillis) {
  EXPECT_EQ(CeilMillis(0), 0);
  EXPECT_EQ(CeilMillis(1), 1);
  EXPECT_EQ(CeilMillis(1000), 1);
  EXPECT_EQ(CeilMillis(1001), 2);
  EXPECT_EQ(CeilMillis(-5), 0);
}

}  // namespace
}  // namespace trl
