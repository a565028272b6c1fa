// The usage API's two formats: JSON (Boost.JSON) and CSV (RFC 4180 quoting).
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "usage/usage.h"

namespace trl {
namespace {

namespace json = boost::json;

// The counters of a row or of the total, in the order the API documents.
void AddCounters(const UsageCounts& c, json::object& out) {
  out["requests"] = c.requests;
  out["prompt_tokens"] = c.prompt_tokens;
  out["completion_tokens"] = c.completion_tokens;
  out["rejected"] = c.Rejected();
  json::object by;
  by["tokens"] = c.rejected_tokens;
  by["requests"] = c.rejected_requests;
  by["concurrency"] = c.rejected_concurrency;
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

void AppendCsvLine(std::string_view key, std::string_view tenant, std::string_view model,
                   std::string_view start, const UsageCounts& c, std::string& out) {
  for (std::string_view field : {key, tenant, model, start}) {
    AppendCsvField(field, out);
    out += ',';
  }
  for (int64_t n : {c.requests, c.prompt_tokens, c.completion_tokens, c.Rejected(),
                    c.rejected_tokens, c.rejected_requests, c.rejected_concurrency}) {
    out += std::to_string(n);
    out += ',';
  }
  out.back() = '\n';
}

}  // namespace

std::string RenderUsageJson(const UsageQuery& query, const UsageResult& result) {
  json::array data;
  data.reserve(result.rows.size());
  for (const UsageRow& row : result.rows) {
    json::object o;
    o["key"] = row.key;
    o["tenant"] = row.tenant;
    o["model"] = row.model;
    o["start"] = FormatRfc3339(row.start);
    AddCounters(row.counts, o);
    data.push_back(std::move(o));
  }
  json::object total;
  AddCounters(result.total, total);
  json::object body;
  body["data"] = std::move(data);
  body["total"] = std::move(total);
  body["from"] = FormatRfc3339(query.from);
  body["to"] = FormatRfc3339(query.to);
  body["granularity"] = GranularityName(query.granularity);
  return json::serialize(body);
}

std::string RenderUsageCsv(const UsageQuery& query, const UsageResult& result) {
  // Lines end in "\n" rather than RFC 4180's "\r\n": what shell tools expect, and every CSV
  // reader accepts it.
  std::string out =
      "key,tenant,model,start,requests,prompt_tokens,completion_tokens,rejected,"
      "rejected_tokens,rejected_requests,rejected_concurrency\n";
  for (const UsageRow& row : result.rows) {
    AppendCsvLine(row.key, row.tenant, row.model, FormatRfc3339(row.start), row.counts, out);
  }
  AppendCsvLine("total", "", "", "", result.total, out);
  return out;
}

}  // namespace trl
