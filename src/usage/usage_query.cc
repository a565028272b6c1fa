// GET /admin/v1/usage's query string and the RFC 3339 times in it.
#include <boost/url/params_view.hpp>
#include <boost/url/parse_query.hpp>
#include <chrono>
#include <cstdio>

#include "usage/usage.h"

namespace trl {
namespace {

namespace urls = boost::urls;
using std::chrono::day;
using std::chrono::month;
using std::chrono::year;
using std::chrono::year_month_day;

constexpr int64_t kDaySeconds = 86'400;
constexpr int64_t kMaxRangeSeconds = 400 * kDaySeconds;
// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the times FormatRfc3339 writes in four digits.
constexpr int64_t kFirstSecond = -62'167'219'200;
constexpr int64_t kLastSecond = 253'402'300'799;

int64_t DayStart(int64_t unix_seconds) {
  int64_t rem = unix_seconds % kDaySeconds;
  return unix_seconds - (rem < 0 ? rem + kDaySeconds : rem);
}

// A cursor over the text: each step consumes what it accepts and fails on anything else.
class Cursor {
 public:
  explicit Cursor(std::string_view text) : text_(text) {}

  bool Digits(size_t count, int* value) {
    if (text_.size() < count) return false;
    int v = 0;
    for (size_t i = 0; i < count; ++i) {
      char c = text_[i];
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    text_.remove_prefix(count);
    *value = v;
    return true;
  }
  bool Char(char a, char b) {
    if (text_.empty() || (text_[0] != a && text_[0] != b)) return false;
    text_.remove_prefix(1);
    return true;
  }
  bool Char(char a) { return Char(a, a); }
  // After '.': one or more digits; says whether any of them is not zero.
  bool Fraction(bool* nonzero) {
    size_t n = 0;
    *nonzero = false;
    while (n < text_.size() && text_[n] >= '0' && text_[n] <= '9') {
      *nonzero = *nonzero || text_[n] != '0';
      ++n;
    }
    text_.remove_prefix(n);
    return n > 0;
  }
  bool Done() const { return text_.empty(); }

 private:
  std::string_view text_;
};

UsageParamError Error(std::string_view param, std::string message) {
  return {std::string(param), std::move(message)};
}

}  // namespace

std::optional<int64_t> ParseRfc3339(std::string_view text, bool round_up) {
  Cursor in(text);
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (!in.Digits(4, &y) || !in.Char('-') || !in.Digits(2, &mo) || !in.Char('-') ||
      !in.Digits(2, &d) || !in.Char('T', 't') || !in.Digits(2, &h) || !in.Char(':') ||
      !in.Digits(2, &mi) || !in.Char(':') || !in.Digits(2, &s)) {
    return std::nullopt;
  }
  bool fraction = false;
  if (in.Char('.') && !in.Fraction(&fraction)) return std::nullopt;
  int offset_seconds = 0;
  if (!in.Char('Z', 'z')) {
    int sign = in.Char('+') ? 1 : in.Char('-') ? -1 : 0;
    int oh = 0, om = 0;
    if (sign == 0 || !in.Digits(2, &oh) || !in.Char(':') || !in.Digits(2, &om) || oh > 23 ||
        om > 59) {
      return std::nullopt;
    }
    offset_seconds = sign * (oh * 3600 + om * 60);
  }
  if (!in.Done()) return std::nullopt;
  // Leap seconds (:60) are refused: Unix time has no name for them.
  const year_month_day date{year(y), month(static_cast<unsigned>(mo)),
                            day(static_cast<unsigned>(d))};
  if (!date.ok() || h > 23 || mi > 59 || s > 59) return std::nullopt;
  const int64_t days = std::chrono::sys_days(date).time_since_epoch().count();
  int64_t seconds = days * kDaySeconds + int64_t{h} * 3600 + int64_t{mi} * 60 + s - offset_seconds;
  if (fraction && round_up) ++seconds;
  // An offset (or rounding up) can leave the years 0000-9999, which the answer could not write.
  if (seconds < kFirstSecond || seconds > kLastSecond) return std::nullopt;
  return seconds;
}

std::string FormatRfc3339(int64_t unix_seconds) {
  const int64_t day_start = DayStart(unix_seconds);
  const year_month_day date{std::chrono::sys_days(std::chrono::days(day_start / kDaySeconds))};
  const int64_t in_day = unix_seconds - day_start;
  char out[32];
  std::snprintf(out, sizeof(out), "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                static_cast<int>(in_day / 3600), static_cast<int>(in_day % 3600 / 60),
                static_cast<int>(in_day % 60));
  return out;
}

namespace {

// The parameters as sent, each at most once; an empty value ("key=") as none.
struct UsageParams {
  std::optional<std::string> key, tenant, model, from, to, granularity, format, group_by;
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
  const std::pair<std::string_view, std::optional<std::string>*> known[] = {
      {"key", &params.key},       {"tenant", &params.tenant},
      {"model", &params.model},   {"from", &params.from},
      {"to", &params.to},         {"granularity", &params.granularity},
      {"format", &params.format}, {"group_by", &params.group_by}};
  for (const urls::param& p : view) {
    if (p.key.empty() && !p.has_value) continue;  // "a=1&&b=2", a trailing '&'
    std::optional<std::string>* slot = nullptr;
    for (const auto& [name, target] : known) {
      if (p.key == name) slot = target;
    }
    if (slot == nullptr) {
      return Error(p.key,
                   "unknown parameter (expected key, tenant, model, from, to, granularity, "
                   "format or group_by)");
    }
    if (slot->has_value()) return Error(p.key, "given more than once");
    *slot = p.value;
  }
  // An empty value is the same as no parameter: no filter, or the default.
  for (const auto& [name, slot] : known) {
    if (slot->has_value() && (*slot)->empty()) slot->reset();
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

// group_by: a comma-separated list of distinct key, tenant and model (default: all three).
std::optional<UsageParamError> ReadGroupBy(const UsageParams& params, UsageQuery& query) {
  if (!params.group_by) return std::nullopt;
  query.group_by = {.key = false, .tenant = false, .model = false};
  std::string_view rest = *params.group_by;
  while (true) {
    const size_t comma = rest.find(',');
    const std::string_view name = rest.substr(0, comma);
    bool* slot = name == "key"      ? &query.group_by.key
                 : name == "tenant" ? &query.group_by.tenant
                 : name == "model"  ? &query.group_by.model
                                    : nullptr;
    if (!slot) {
      return Error("group_by",
                   "expected key, tenant or model, or several of them separated by commas");
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
  parsed.query = std::move(query);
  return parsed;
}

}  // namespace trl
