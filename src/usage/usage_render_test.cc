#include <gtest/gtest.h>

#include "usage/usage.h"

namespace trl {
namespace {

constexpr int64_t kRowHour = 1'795'867'200;  // 2026-11-28T12:00:00Z

UsageQuery Query() {
  UsageQuery q;
  q.from = kRowHour;
  q.to = kRowHour + 7200;
  return q;
}

UsageResult Result() {
  UsageResult r;
  r.ok = true;
  r.rows.push_back(
      {"team-a", "acme", "llama-3", kRowHour, {3, 100, 20, 1, 2, 3, 40, 1'234'567'891, 4}});
  r.rows.push_back({"b,\"quoted\"", "", "m", kRowHour + 3600, {1, 5, 6, 0, 0, 0, 0, 1'500}});
  r.total = {4, 105, 26, 1, 2, 3, 40, 1'234'569'391, 4};
  return r;
}

// Costs are exact decimal strings (nanos: 1'500 is "0.0000015"), in the currency named once.
TEST(RenderUsageTest, Json) {
  EXPECT_EQ(RenderUsageJson(Query(), Result(), "EUR"),
            R"({"data":[)"
            R"({"key":"team-a","tenant":"acme","model":"llama-3","start":"2026-11-28T12:00:00Z",)"
            R"("requests":3,"prompt_tokens":100,"completion_tokens":20,"cached_tokens":40,)"
            R"("cost":"1.234567891","rejected":10,)"
            R"("rejected_by":{"tokens":1,"requests":2,"concurrency":3,"spend":4}},)"
            R"({"key":"b,\"quoted\"","tenant":"","model":"m","start":"2026-11-28T13:00:00Z",)"
            R"("requests":1,"prompt_tokens":5,"completion_tokens":6,"cached_tokens":0,)"
            R"("cost":"0.0000015","rejected":0,)"
            R"("rejected_by":{"tokens":0,"requests":0,"concurrency":0,"spend":0}}],)"
            R"("total":{"requests":4,"prompt_tokens":105,"completion_tokens":26,)"
            R"("cached_tokens":40,"cost":"1.234569391","rejected":10,)"
            R"("rejected_by":{"tokens":1,"requests":2,"concurrency":3,"spend":4}},)"
            R"("currency":"EUR",)"
            R"("from":"2026-11-28T12:00:00Z","to":"2026-11-28T14:00:00Z","granularity":"hour",)"
            R"("group_by":["key","tenant","model"]})");
}

TEST(RenderUsageTest, JsonOfNothingByDay) {
  UsageQuery q = Query();
  q.granularity = UsageGranularity::kDay;
  UsageResult empty;
  empty.ok = true;
  EXPECT_EQ(
      RenderUsageJson(q, empty, "USD"),
      R"({"data":[],"total":{"requests":0,"prompt_tokens":0,"completion_tokens":0,)"
      R"("cached_tokens":0,"cost":"0.00","rejected":0,)"
      R"("rejected_by":{"tokens":0,"requests":0,"concurrency":0,"spend":0}},)"
      R"("currency":"USD","from":"2026-11-28T12:00:00Z","to":"2026-11-28T14:00:00Z","granularity":"day",)"
      R"("group_by":["key","tenant","model"]})");
}

// group_by=tenant: the rows carry the tenant alone, and the answer says how it is grouped.
TEST(RenderUsageTest, GroupedLeavesOutTheIdentitiesSummedOver) {
  UsageQuery q = Query();
  q.group_by = {.key = false, .tenant = true, .model = false};
  UsageResult r;
  r.ok = true;
  r.rows.push_back({"", "acme", "", kRowHour, {3, 100, 20, 0, 0, 0, 0, 600'000}});
  r.total = r.rows[0].counts;
  EXPECT_EQ(
      RenderUsageJson(q, r, "USD"),
      R"({"data":[{"tenant":"acme","start":"2026-11-28T12:00:00Z",)"
      R"("requests":3,"prompt_tokens":100,"completion_tokens":20,"cached_tokens":0,)"
      R"("cost":"0.0006","rejected":0,)"
      R"("rejected_by":{"tokens":0,"requests":0,"concurrency":0,"spend":0}}],)"
      R"("total":{"requests":3,"prompt_tokens":100,"completion_tokens":20,)"
      R"("cached_tokens":0,"cost":"0.0006","rejected":0,)"
      R"("rejected_by":{"tokens":0,"requests":0,"concurrency":0,"spend":0}},)"
      R"("currency":"USD","from":"2026-11-28T12:00:00Z","to":"2026-11-28T14:00:00Z","granularity":"hour",)"
      R"("group_by":["tenant"]})");
  EXPECT_EQ(RenderUsageCsv(q, r),
            "tenant,start,requests,prompt_tokens,completion_tokens,rejected,"
            "rejected_tokens,rejected_requests,rejected_concurrency,cached_tokens,cost,"
            "rejected_spend\n"
            "acme,2026-11-28T12:00:00Z,3,100,20,0,0,0,0,0,0.0006,0\n"
            "total,,3,100,20,0,0,0,0,0,0.0006,0\n");
}

// group_by with user: each row carries its user ("" for none) after the other identities, in
// JSON and in CSV's identity columns.
TEST(RenderUsageTest, GroupedByUserCarriesTheUser) {
  UsageQuery q = Query();
  q.group_by = {.key = true, .tenant = false, .model = false, .user = true};
  UsageResult r;
  r.ok = true;
  r.rows.push_back({"k", "", "", kRowHour, {1, 10, 2}});
  r.rows.push_back({"k", "", "", kRowHour, {2, 20, 4}, "al,ice"});
  r.total = {3, 30, 6};
  const std::string json = RenderUsageJson(q, r, "USD");
  EXPECT_NE(json.find(R"({"data":[{"key":"k","user":"","start":"2026-11-28T12:00:00Z",)"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find(R"({"key":"k","user":"al,ice","start":)"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("group_by":["key","user"]})"), std::string::npos) << json;
  EXPECT_EQ(RenderUsageCsv(q, r),
            "key,user,start,requests,prompt_tokens,completion_tokens,rejected,"
            "rejected_tokens,rejected_requests,rejected_concurrency,cached_tokens,cost,"
            "rejected_spend\n"
            "k,,2026-11-28T12:00:00Z,1,10,2,0,0,0,0,0,0.00,0\n"
            "k,\"al,ice\",2026-11-28T12:00:00Z,2,20,4,0,0,0,0,0,0.00,0\n"
            "total,,,3,30,6,0,0,0,0,0,0.00,0\n");
}

// The columns added with spend limits come after the first version's, in the same order.
TEST(RenderUsageTest, Csv) {
  EXPECT_EQ(RenderUsageCsv(Query(), Result()),
            "key,tenant,model,start,requests,prompt_tokens,completion_tokens,rejected,"
            "rejected_tokens,rejected_requests,rejected_concurrency,cached_tokens,cost,"
            "rejected_spend\n"
            "team-a,acme,llama-3,2026-11-28T12:00:00Z,3,100,20,10,1,2,3,40,1.234567891,4\n"
            "\"b,\"\"quoted\"\"\",,m,2026-11-28T13:00:00Z,1,5,6,0,0,0,0,0,0.0000015,0\n"
            "total,,,,4,105,26,10,1,2,3,40,1.234569391,4\n");
}

TEST(RenderUsageTest, CsvQuotesLineBreaks) {
  UsageResult r;
  r.ok = true;
  r.rows.push_back({"a\nb", "c\rd", "plain", kRowHour, {}});
  EXPECT_EQ(RenderUsageCsv(Query(), r),
            "key,tenant,model,start,requests,prompt_tokens,completion_tokens,rejected,"
            "rejected_tokens,rejected_requests,rejected_concurrency,cached_tokens,cost,"
            "rejected_spend\n"
            "\"a\nb\",\"c\rd\",plain,2026-11-28T12:00:00Z,0,0,0,0,0,0,0,0,0.00,0\n"
            "total,,,,0,0,0,0,0,0,0,0,0.00,0\n");
}

// Names a spreadsheet would take for formulas are written as text.
TEST(RenderUsageTest, CsvKeepsFormulasAsText) {
  UsageResult r;
  r.ok = true;
  r.rows.push_back({"-team", "=1+2", "@sum", kRowHour, {}});
  r.rows.push_back({"+a", "\tb", "m-1", kRowHour, {}});
  EXPECT_EQ(RenderUsageCsv(Query(), r),
            "key,tenant,model,start,requests,prompt_tokens,completion_tokens,rejected,"
            "rejected_tokens,rejected_requests,rejected_concurrency,cached_tokens,cost,"
            "rejected_spend\n"
            "\"'-team\",\"'=1+2\",\"'@sum\",2026-11-28T12:00:00Z,0,0,0,0,0,0,0,0,0.00,0\n"
            "\"'+a\",\"'\tb\",m-1,2026-11-28T12:00:00Z,0,0,0,0,0,0,0,0,0.00,0\n"
            "total,,,,0,0,0,0,0,0,0,0,0.00,0\n");
}

}  // namespace
}  // namespace trl
