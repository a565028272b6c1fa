#include "common/rfc3339.h"

#include <gtest/gtest.h>

namespace trl {
namespace {

constexpr int64_t kNow = 1'795'873'510;   // 2026-11-28T13:45:10Z
constexpr int64_t kNoon = 1'795'867'200;  // 2026-11-28T12:00:00Z

TEST(Rfc3339Test, ParsesUtcAndOffsets) {
  EXPECT_EQ(ParseRfc3339("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(ParseRfc3339("2000-03-01T00:00:00Z"), 951'868'800);
  EXPECT_EQ(ParseRfc3339("2026-11-28T13:45:10Z"), kNow);
  EXPECT_EQ(ParseRfc3339("2026-11-28t13:45:10z"), kNow);
  EXPECT_EQ(ParseRfc3339("2026-11-28T14:45:10+01:00"), kNow);
  EXPECT_EQ(ParseRfc3339("2026-11-28T08:15:10-05:30"), kNow);
  EXPECT_EQ(ParseRfc3339("2026-11-28T13:45:10+00:00"), kNow);
  EXPECT_EQ(ParseRfc3339("2026-11-28T13:45:10-00:00"), kNow);
  EXPECT_EQ(ParseRfc3339("2026-11-29T00:45:10+11:00"), kNow);  // the day before, in UTC
  EXPECT_EQ(ParseRfc3339("2024-02-29T23:59:59Z"), 1'709'251'199);
  EXPECT_EQ(ParseRfc3339("2000-02-29T00:00:00Z"), 951'782'400);
}

TEST(Rfc3339Test, FractionsTruncateOrRoundUp) {
  EXPECT_EQ(ParseRfc3339("2026-11-28T13:45:10.999Z"), kNow);
  EXPECT_EQ(ParseRfc3339("2026-11-28T13:45:10.5Z", /*round_up=*/true), kNow + 1);
  EXPECT_EQ(ParseRfc3339("2026-11-28T13:45:10.000000Z", /*round_up=*/true), kNow);
  EXPECT_EQ(ParseRfc3339("2026-11-28T14:45:10.123456789+01:00"), kNow);
}

TEST(Rfc3339Test, RefusesEverythingElse) {
  for (const char* bad : {
           "",
           "2026-11-28",                 // a date alone
           "2026-11-28T13:45:10",        // no offset
           "2026-11-28 13:45:10Z",       // a space for T
           "2026-11-28T13:45Z",          // no seconds
           "2026-11-28T13:45:10.Z",      // a dot without digits
           "2026-11-28T13:45:10+0100",   // offset without a colon
           "2026-11-28T13:45:10+01",     // offset without minutes
           "2026-11-28T13:45:10+24:00",  // offset hour out of range
           "2026-11-28T13:45:10+01:60",  // offset minute out of range
           "2026-11-28T13:45:10ZZ",      // trailing text
           "2026-11-28T13:45:10Z ",      // trailing space
           " 2026-11-28T13:45:10Z",      // leading space
           "26-11-28T13:45:10Z",         // two-digit year
           "2026-1-28T13:45:10Z",        // one-digit month
           "2026-13-01T00:00:00Z",       // month 13
           "2026-00-01T00:00:00Z",       // month 0
           "2026-11-00T00:00:00Z",       // day 0
           "2026-11-31T00:00:00Z",       // November has 30 days
           "2023-02-29T00:00:00Z",       // not a leap year
           "1900-02-29T00:00:00Z",       // a century that is not a leap year
           "2026-11-28T24:00:00Z",       // hour 24
           "2026-11-28T23:60:00Z",       // minute 60
           "2026-11-28T23:59:60Z",       // leap second
           "2026-11-28T13:45:1OZ",       // a letter O
           "+2026-11-28T13:45:10Z",      // a sign
           "1795873510",                 // Unix seconds
       }) {
    EXPECT_EQ(ParseRfc3339(bad), std::nullopt) << bad;
  }
}

TEST(Rfc3339Test, FormatsUtc) {
  EXPECT_EQ(FormatRfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(kNow), "2026-11-28T13:45:10Z");
  EXPECT_EQ(FormatRfc3339(1'709'251'199), "2024-02-29T23:59:59Z");
  EXPECT_EQ(ParseRfc3339(FormatRfc3339(kNoon)), kNoon);
}

TEST(Rfc3339Test, RefusesTimesOutsideTheYearsItWrites) {
  // An offset moves a time of year 0000 or 9999 out of 0000-9999 in UTC, where FormatRfc3339
  // (the usage API's answer) would write "-001-12-31T..." or a five-digit year.
  EXPECT_EQ(ParseRfc3339("0000-01-01T00:00:00+00:01"), std::nullopt);
  EXPECT_EQ(ParseRfc3339("9999-12-31T23:59:59-00:01"), std::nullopt);
  EXPECT_EQ(ParseRfc3339("9999-12-31T23:59:59.5Z", /*round_up=*/true), std::nullopt);
  EXPECT_EQ(ParseRfc3339("0000-01-01T00:00:00Z"), -62'167'219'200);
  EXPECT_EQ(ParseRfc3339("9999-12-31T23:59:59Z"), 253'402'300'799);
  EXPECT_EQ(FormatRfc3339(-62'167'219'200), "0000-01-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(253'402'300'799), "9999-12-31T23:59:59Z");
}

}  // namespace
}  // namespace trl
