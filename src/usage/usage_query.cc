// GET /admin/v1/usage's query string.
#include <algorithm>
#include <boost/url/params_view.hpp>
#include <boost/url/parse_query.hpp>

#include "usage/usage.h"

namespace trl {
namespace {

namespace urls = boost::urls;

constexpr int64_t kDaySeconds = 86'400;
constexpr int64_t kMaxRangeSeconds = 400 * kDaySeconds;

UsageParamError Error(std::string_view param, std::string message) {
  return {std::string(param), std::move(message)};
}

// The parameters as sent, each at most once; an empty value ("key=") as none, but for user
// ("user=": the rows without a user).
struct UsageParams {
  std::optional<std::string> key, tenant, model, from, to, granularity, format, group_by, user;
};

// `query_string` into `params`: every parameter known and given once.
std::optional<UsageParamError> ReadParams(std::string_view query_string, UsageParams& params) {
  // A NUL-terminated copy: Boost.URL 1.81's parse_query measures its input with strlen (seen in
  // a debugger), and the query is a view into the request target, not NUL-terminated (or null
  // when empty). The admin path can afford the copy.
  const std::string query_copy(query_string);
  const urls::string_view query_text(query_copy.c_str(), query_copy.size());
  // Checked first, so that params_view (which throws on bad input) cannot throw.
  if (!urls::parse_query(query_text)) {
    return Error("query", "not a valid query string (check its percent-encoding)");
  }
  // '+' is a plus sign, not a space (RFC 3986): "+01:00" offsets work without encoding.
  urls::encoding_opts opts;
  opts.space_as_plus = false;
  const urls::params_view view(query_text, opts);
  // In the order of kUsageParams.
  const std::array<std::optional<std::string>*, kUsageParams.size()> slots = {
      &params.key,         &params.tenant, &params.model,    &params.from, &params.to,
      &params.granularity, &params.format, &params.group_by, &params.user};
  for (const urls::param& p : view) {
    if (p.key.empty() && !p.has_value) continue;  // "a=1&&b=2", a trailing '&'
    const auto known = std::find(kUsageParams.begin(), kUsageParams.end(), p.key);
    if (known == kUsageParams.end()) {
      return Error(p.key,
                   "unknown parameter (expected key, tenant, model, user, from, to, "
                   "granularity, format or group_by)");
    }
    std::optional<std::string>* slot = slots[known - kUsageParams.begin()];
    if (slot->has_value()) return Error(p.key, "given more than once");
    *slot = p.value;
  }
  // An empty value is the same as no parameter: no filter, or the default. Not for user: ""
  // is a user of its own, none (a key, tenant or model always has a name).
  for (std::optional<std::string>* slot : slots) {
    if (slot != &params.user && slot->has_value() && (*slot)->empty()) slot->reset();
  }
  return std::nullopt;
}

// from (default: the start of today) and to (default: now), into `query`.
std::optional<UsageParamError> ReadRange(const UsageParams& params, int64_t now_unix,
                                         UsageQuery& query) {
  constexpr const char* kTimeExpected =
      "not an RFC 3339 time (like 2026-11-28T13:00:00Z or +01:00)";
  query.from = DayStart(now_unix);
  query.to = now_unix;
  if (params.from) {
    std::optional<int64_t> from = ParseRfc3339(*params.from, /*round_up=*/false);
    if (!from) return Error("from", kTimeExpected);
    query.from = *from;
  }
  if (params.to) {
    // `to` is exclusive: 13:00:00.5 still includes 13:00:00.
    std::optional<int64_t> to = ParseRfc3339(*params.to, /*round_up=*/true);
    if (!to) return Error("to", kTimeExpected);
    query.to = *to;
  }
  // The parameter the caller wrote is the one at fault (by default, both are today's).
  const char* blame = params.to ? "to" : "from";
  if ((params.from || params.to) && query.from >= query.to) {
    return Error(blame, "from must be before to");
  }
  if (query.to - query.from > kMaxRangeSeconds) {
    return Error(blame, "the range from..to must not exceed 400 days");
  }
  return std::nullopt;
}

// granularity (hour or day) and format (json or csv), into `query`.
std::optional<UsageParamError> ReadShape(const UsageParams& params, UsageQuery& query) {
  if (params.granularity && *params.granularity == "day") {
    query.granularity = UsageGranularity::kDay;
  } else if (params.granularity && *params.granularity != "hour") {
    return Error("granularity", "expected hour or day");
  }
  if (params.format && *params.format == "csv") {
    query.csv = true;
  } else if (params.format && *params.format != "json") {
    return Error("format", "expected json or csv");
  }
  return std::nullopt;
}

// group_by: a comma-separated list of distinct key, tenant, model and user (default: key, tenant
// and model).
std::optional<UsageParamError> ReadGroupBy(const UsageParams& params, UsageQuery& query) {
  if (!params.group_by) return std::nullopt;
  query.group_by = {.key = false, .tenant = false, .model = false, .user = false};
  std::string_view rest = *params.group_by;
  while (true) {
    const size_t comma = rest.find(',');
    const std::string_view name = rest.substr(0, comma);
    bool* slot = name == "key"      ? &query.group_by.key
                 : name == "tenant" ? &query.group_by.tenant
                 : name == "model"  ? &query.group_by.model
                 : name == "user"   ? &query.group_by.user
                                    : nullptr;
    if (!slot) {
      return Error("group_by",
                   "expected key, tenant, model or user, or several of them separated by commas");
    }
    if (*slot) return Error("group_by", "names " + std::string(name) + " twice");
    *slot = true;
    if (comma == std::string_view::npos) return std::nullopt;
    rest.remove_prefix(comma + 1);
  }
}

}  // namespace

ParsedUsageQuery ParseUsageQuery(std::string_view query_string, int64_t now_unix) {
  ParsedUsageQuery parsed;
  UsageParams params;
  UsageQuery query;
  std::optional<UsageParamError> error = ReadParams(query_string, params);
  if (!error) error = ReadRange(params, now_unix, query);
  if (!error) error = ReadShape(params, query);
  if (!error) error = ReadGroupBy(params, query);
  if (error) {
    parsed.error = std::move(error);
    return parsed;
  }
  query.key = std::move(params.key);
  query.tenant = std::move(params.tenant);
  query.model = std::move(params.model);
  query.user = std::move(params.user);
  parsed.query = std::move(query);
  return parsed;
}

}  // namespace trl
