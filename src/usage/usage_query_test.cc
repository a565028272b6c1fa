#include <gtest/gtest.h>

#include "usage/usage.h"

namespace trl {
namespace {

constexpr int64_t kNow = 1'795'873'510;    // 2026-11-28T13:45:10Z
constexpr int64_t kToday = 1'795'824'000;  // 2026-11-28T00:00:00Z
constexpr int64_t kNoon = 1'795'867'200;   // 2026-11-28T12:00:00Z

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
  ParsedUsageQuery parsed =
      ParseUsageQuery("from=0000-01-01T00:00:00%2B23:59&to=0000-01-01T12:00:00Z", kNow);
  ASSERT_TRUE(parsed.error.has_value());
  EXPECT_EQ(parsed.error->param, "from");
}

UsageQuery ParseOk(std::string_view text) {
  ParsedUsageQuery parsed = ParseUsageQuery(text, kNow);
  EXPECT_FALSE(parsed.error) << text << ": " << parsed.error->param << ": "
                             << parsed.error->message;
  return parsed.query.value_or(UsageQuery{});
}

UsageParamError ParseError(std::string_view text) {
  ParsedUsageQuery parsed = ParseUsageQuery(text, kNow);
  EXPECT_FALSE(parsed.query) << text;
  EXPECT_TRUE(parsed.error) << text;
  return parsed.error.value_or(UsageParamError{});
}

void ExpectDefaults(const UsageQuery& q) {
  EXPECT_EQ(q.key, std::nullopt);
  EXPECT_EQ(q.tenant, std::nullopt);
  EXPECT_EQ(q.model, std::nullopt);
  EXPECT_EQ(q.from, kToday);
  EXPECT_EQ(q.to, kNow);
  EXPECT_EQ(q.granularity, UsageGranularity::kHour);
  EXPECT_FALSE(q.csv);
  EXPECT_EQ(q.group_by, (UsageQuery::GroupBy{true, true, true}));
}

TEST(ParseUsageQueryTest, Defaults) { ExpectDefaults(ParseOk("")); }

TEST(ParseUsageQueryTest, DefaultsAtMidnightAreAnEmptyRangeNotAnError) {
  ParsedUsageQuery parsed = ParseUsageQuery("", kToday);
  ASSERT_TRUE(parsed.query);
  EXPECT_EQ(parsed.query->from, kToday);
  EXPECT_EQ(parsed.query->to, kToday);
}

TEST(ParseUsageQueryTest, EveryParameter) {
  UsageQuery q = ParseOk(
      "key=team-a&tenant=acme&model=llama-3&from=2026-11-28T12:00:00Z&to=2026-11-28T14:00:00%2B01:"
      "00"
      "&granularity=day&format=csv");
  EXPECT_EQ(q.key, "team-a");
  EXPECT_EQ(q.tenant, "acme");
  EXPECT_EQ(q.model, "llama-3");
  EXPECT_EQ(q.from, kNoon);
  EXPECT_EQ(q.to, kNoon + 3600);
  EXPECT_EQ(q.granularity, UsageGranularity::kDay);
  EXPECT_TRUE(q.csv);
  q = ParseOk("granularity=hour&format=json");
  EXPECT_EQ(q.granularity, UsageGranularity::kHour);
  EXPECT_FALSE(q.csv);
}

TEST(ParseUsageQueryTest, GroupByNamesTheIdentitiesKeptApart) {
  EXPECT_EQ(ParseOk("group_by=tenant").group_by, (UsageQuery::GroupBy{false, true, false}));
  EXPECT_EQ(ParseOk("group_by=model,key").group_by, (UsageQuery::GroupBy{true, false, true}));
  EXPECT_EQ(ParseOk("group_by=key%2Ctenant%2Cmodel").group_by,
            (UsageQuery::GroupBy{true, true, true}));
  EXPECT_EQ(ParseOk("group_by=").group_by, (UsageQuery::GroupBy{true, true, true}));
}

TEST(ParseUsageQueryTest, PercentDecodesAndKeepsPlusAsPlus) {
  UsageQuery q = ParseOk("key=a%20b%7Cc%25&model=x%2Fy&from=2026-11-28T13:00:00+01:00");
  EXPECT_EQ(q.key, "a b|c%");
  EXPECT_EQ(q.model, "x/y");
  EXPECT_EQ(q.from, kNoon);
  EXPECT_EQ(ParseOk("key=a+b").key, "a+b");
}

TEST(ParseUsageQueryTest, EmptyValuesAreNoFilterAndDefaults) {
  ExpectDefaults(ParseOk("key=&tenant=&model&from=&to=&granularity=&format=&"));
  EXPECT_EQ(ParseOk("&&key=a&&").key, "a");
}

TEST(ParseUsageQueryTest, FractionalToRoundsUp) {
  EXPECT_EQ(ParseOk("from=2026-11-28T12:00:00.9Z&to=2026-11-28T12:00:00.1Z").to, kNoon + 1);
  EXPECT_EQ(ParseOk("from=2026-11-28T12:00:00.9Z&to=2026-11-28T12:00:00.1Z").from, kNoon);
}

TEST(ParseUsageQueryTest, ExactlyFourHundredDaysIsAllowed) {
  UsageQuery q = ParseOk("from=2025-10-24T13:45:10Z");
  EXPECT_EQ(q.to - q.from, 400 * 86'400);
}

void ExpectError(std::string_view text, std::string_view param, std::string_view fragment) {
  UsageParamError e = ParseError(text);
  EXPECT_EQ(e.param, param) << text;
  EXPECT_NE(e.message.find(fragment), std::string::npos) << text << ": " << e.message;
}

TEST(ParseUsageQueryTest, EveryErrorNamesItsParameter) {
  ExpectError("keys=a", "keys", "unknown parameter");
  ExpectError("key=a&Key=b", "Key", "unknown parameter");
  ExpectError("=x", "", "unknown parameter");
  ExpectError("key=a&key=b", "key", "more than once");
  ExpectError("key=&key=b", "key", "more than once");
  ExpectError("tenant=a&tenant=a", "tenant", "more than once");
  ExpectError("model=a&model=b", "model", "more than once");
  ExpectError("from=2026-11-28T12:00:00Z&from=2026-11-28T12:00:00Z", "from", "more than once");
  ExpectError("to=2026-11-28T12:00:00Z&to=2026-11-28T12:00:00Z", "to", "more than once");
  ExpectError("granularity=day&granularity=day", "granularity", "more than once");
  ExpectError("format=csv&format=csv", "format", "more than once");
  ExpectError("from=yesterday", "from", "RFC 3339");
  ExpectError("from=2026-11-28T12:00:00", "from", "RFC 3339");
  ExpectError("to=2026-11-28", "to", "RFC 3339");
  ExpectError("to=2026-11-28T12:00:00Z&from=2026-11-28T12:00:00Z", "to", "before");
  ExpectError("from=2026-11-28T13:00:00Z&to=2026-11-28T12:00:00Z", "to", "before");
  ExpectError("from=2026-11-28T14:00:00Z", "from", "before");  // after now
  ExpectError("to=2026-11-27T12:00:00Z", "to", "before");      // before today's start
  ExpectError("from=2025-10-24T13:45:09Z", "from", "400 days");
  ExpectError("from=2020-01-01T00:00:00Z&to=2026-11-28T12:00:00Z", "to", "400 days");
  ExpectError("granularity=week", "granularity", "hour or day");
  ExpectError("granularity=Hour", "granularity", "hour or day");
  ExpectError("format=xml", "format", "json or csv");
  ExpectError("group_by=user", "group_by", "key, tenant or model");
  ExpectError("group_by=key,", "group_by", "key, tenant or model");
  ExpectError("group_by=key,key", "group_by", "key twice");
  ExpectError("group_by=tenant&group_by=key", "group_by", "more than once");
  ExpectError("key=%zz", "query", "percent-encoding");
  ExpectError("key=%4", "query", "percent-encoding");
}

}  // namespace
}  // namespace trl

namespace trl {
namespace {

// The admin API passes a view into the request target: not NUL-terminated, or null when empty.
TEST(UsageQueryTest, ReadsOnlyItsView) {
  const std::string target = "model=m&tenant=acme";
  ParsedUsageQuery parsed = ParseUsageQuery(std::string_view(target).substr(0, 7), 1'800'000'000);
  ASSERT_TRUE(parsed.query);
  EXPECT_EQ(parsed.query->model, "m");
  EXPECT_FALSE(parsed.query->tenant);
  parsed = ParseUsageQuery(std::string_view(), 1'800'000'000);
  ASSERT_TRUE(parsed.query);
  EXPECT_FALSE(parsed.query->model);
}

}  // namespace
}  // namespace trl
