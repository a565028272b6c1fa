#include <gtest/gtest.h>

#include "usage/usage.h"

namespace trl {
namespace {

constexpr int64_t kNow = 1'795'873'510;    // 2026-11-28T13:45:10Z
constexpr int64_t kToday = 1'795'824'000;  // 2026-11-28T00:00:00Z
constexpr int64_t kNoon = 1'795'867'200;   // 2026-11-28T12:00:00Z

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

TEST(ParseUsageQueryTest, RefusesTimesOutsideTheYearsItWrites) {
  ParsedUsageQuery parsed =
      ParseUsageQuery("from=0000-01-01T00:00:00%2B23:59&to=0000-01-01T12:00:00Z", kNow);
  ASSERT_TRUE(parsed.error.has_value());
  EXPECT_EQ(parsed.error->param, "from");
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
  EXPECT_EQ(ParseOk("group_by=user").group_by, (UsageQuery::GroupBy{false, false, false, true}));
  EXPECT_EQ(ParseOk("group_by=key,tenant,model,user").group_by,
            (UsageQuery::GroupBy{true, true, true, true}));
}

// user= is a filter of its own: absent, any user; empty, the rows without a user.
TEST(ParseUsageQueryTest, UserFilterWhereEmptyMeansNoUser) {
  EXPECT_EQ(ParseOk("").user, std::nullopt);
  EXPECT_EQ(ParseOk("user=alice%7C1").user, "alice|1");
  EXPECT_EQ(ParseOk("user=").user, "");
  EXPECT_EQ(ParseOk("key=&user=").key, std::nullopt);
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
  ExpectError("group_by=hour", "group_by", "key, tenant, model or user");
  ExpectError("group_by=key,", "group_by", "key, tenant, model or user");
  ExpectError("group_by=user,user", "group_by", "user twice");
  ExpectError("user=a&user=b", "user", "more than once");
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
