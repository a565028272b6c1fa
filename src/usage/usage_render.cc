// The usage API's two formats: JSON (Boost.JSON) and CSV (RFC 4180 quoting).
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <string_view>
#include <vector>

#include "common/money.h"
#include "usage/usage.h"

namespace trl {
namespace {

namespace json = boost::json;

// The counters of a row or of the total, in the order the API documents.
void AddCounters(const UsageCounts& c, json::object& out) {
  out["requests"] = c.requests;
  out["prompt_tokens"] = c.prompt_tokens;
  out["completion_tokens"] = c.completion_tokens;
  out["cached_tokens"] = c.cached_tokens;
  // A string, exact to the nano: a JSON number would be read as a binary double.
  out["cost"] = FormatMoney(c.cost);
  out["rejected"] = c.Rejected();
  json::object by;
  by["tokens"] = c.rejected_tokens;
  by["requests"] = c.rejected_requests;
  by["concurrency"] = c.rejected_concurrency;
  by["spend"] = c.rejected_spend;
  out["rejected_by"] = std::move(by);
}

std::string_view GranularityName(UsageGranularity g) {
  return g == UsageGranularity::kDay ? "day" : "hour";
}

// RFC 4180 quoting; a name that a spreadsheet would run as a formula (starting with =, +, -, @,
// a tab or a carriage return) gets a leading ' so that it stays text (OWASP's CSV injection
// advice).
void AppendCsvField(std::string_view field, std::string& out) {
  const bool formula =
      !field.empty() && std::string_view("=+-@\t\r").find(field[0]) != std::string_view::npos;
  if (!formula && field.find_first_of(",\"\r\n") == std::string_view::npos) {
    out += field;
    return;
  }
  out += '"';
  if (formula) out += '\'';
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

// The identities a query groups by, in the API's order, with their values in `row`.
template <typename Visit>
void ForEachGrouped(const UsageQuery::GroupBy& group, const UsageRow& row, Visit visit) {
  if (group.key) visit("key", row.key);
  if (group.tenant) visit("tenant", row.tenant);
  if (group.model) visit("model", row.model);
  if (group.user) visit("user", row.user);
}

// One CSV line: the grouped identities' `fields`, `start`, then the counters (the columns added
// since the first version last, so that a reader of those columns by position still reads them).
void AppendCsvLine(const std::vector<std::string_view>& fields, std::string_view start,
                   const UsageCounts& c, std::string& out) {
  for (std::string_view field : fields) {
    AppendCsvField(field, out);
    out += ',';
  }
  AppendCsvField(start, out);
  out += ',';
  for (int64_t n :
       {c.requests, c.prompt_tokens, c.completion_tokens, c.Rejected(), c.rejected_tokens,
        c.rejected_requests, c.rejected_concurrency, c.cached_tokens}) {
    out += std::to_string(n);
    out += ',';
  }
  out += FormatMoney(c.cost);
  out += ',';
  out += std::to_string(c.rejected_spend);
  out += '\n';
}

}  // namespace

std::string RenderUsageJson(const UsageQuery& query, const UsageResult& result,
                            std::string_view currency) {
  json::array data;
  data.reserve(result.rows.size());
  for (const UsageRow& row : result.rows) {
    json::object o;
    ForEachGrouped(query.group_by, row,
                   [&o](std::string_view name, const std::string& value) { o[name] = value; });
    o["start"] = FormatRfc3339(row.start);
    AddCounters(row.counts, o);
    data.push_back(std::move(o));
  }
  json::object total;
  AddCounters(result.total, total);
  json::object body;
  body["data"] = std::move(data);
  body["total"] = std::move(total);
  body["currency"] = currency;
  body["from"] = FormatRfc3339(query.from);
  body["to"] = FormatRfc3339(query.to);
  body["granularity"] = GranularityName(query.granularity);
  json::array& group_by = body["group_by"].emplace_array();
  ForEachGrouped(query.group_by, UsageRow{},
                 [&group_by](std::string_view name, const std::string&) {
                   group_by.push_back(json::string(name));
                 });
  return json::serialize(body);
}

std::string RenderUsageCsv(const UsageQuery& query, const UsageResult& result) {
  // Lines end in "\n" rather than RFC 4180's "\r\n": what shell tools expect, and every CSV
  // reader accepts it.
  std::string out;
  std::vector<std::string_view> names;
  ForEachGrouped(query.group_by, UsageRow{},
                 [&names](std::string_view name, const std::string&) { names.push_back(name); });
  for (std::string_view name : names) out.append(name).append(",");
  out +=
      "start,requests,prompt_tokens,completion_tokens,rejected,rejected_tokens,"
      "rejected_requests,rejected_concurrency,cached_tokens,cost,rejected_spend\n";
  for (const UsageRow& row : result.rows) {
    std::vector<std::string_view> fields;
    ForEachGrouped(query.group_by, row, [&fields](std::string_view, const std::string& value) {
      fields.push_back(value);
    });
    AppendCsvLine(fields, FormatRfc3339(row.start), row.counts, out);
  }
  // "total" in the first column, the other identities and start empty.
  std::vector<std::string_view> total(names.size(), "");
  if (!total.empty()) total[0] = "total";
  AppendCsvLine(total, "", result.total, out);
  return out;
}

}  // namespace trl
