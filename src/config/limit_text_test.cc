#include "config/limit_text.h"

#include <gtest/gtest.h>

namespace trl {
namespace {

using std::chrono::milliseconds;

TEST(LimitTextTest, KindNamesRoundTrip) {
  for (LimitKind kind : {LimitKind::kTokens, LimitKind::kRequests, LimitKind::kConcurrent}) {
    EXPECT_EQ(ParseLimitKind(LimitKindName(kind)), kind);
  }
  EXPECT_EQ(LimitKindName(LimitKind::kTokens), "tokens");
  EXPECT_EQ(LimitKindName(LimitKind::kRequests), "requests");
  EXPECT_EQ(LimitKindName(LimitKind::kConcurrent), "concurrent");
  EXPECT_FALSE(ParseLimitKind("token"));
  EXPECT_FALSE(ParseLimitKind("concurrency"));
  EXPECT_FALSE(ParseLimitKind(""));
}

// The rate-limited metric's `limit` label (trl_ratelimit_rejections_total) says "concurrency".
TEST(LimitTextTest, MetricLabels) {
  EXPECT_EQ(LimitKindLabel(LimitKind::kTokens), "tokens");
  EXPECT_EQ(LimitKindLabel(LimitKind::kRequests), "requests");
  EXPECT_EQ(LimitKindLabel(LimitKind::kConcurrent), "concurrency");
}

TEST(LimitTextTest, PeriodsInTheLargestUnitThatDividesThem) {
  EXPECT_EQ(FormatPeriod(milliseconds(60'000)), "1m");
  EXPECT_EQ(FormatPeriod(milliseconds(86'400'000)), "1d");
  EXPECT_EQ(FormatPeriod(milliseconds(7'200'000)), "2h");
  EXPECT_EQ(FormatPeriod(milliseconds(90'000)), "90s");
  EXPECT_EQ(FormatPeriod(milliseconds(250)), "250ms");
  EXPECT_EQ(FormatPeriod(milliseconds(0)), "0ms");
}

}  // namespace
}  // namespace trl
