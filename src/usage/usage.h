// Usage accounting (docs/usage.md): every settled or refused request adds to counters
// of its (key, tenant, model, end user, hour). The I/O threads add to an in-memory aggregate
// (UsageRecorder, no I/O, a short lock); a scheduled task takes the pending rows every second
// and writes them in one batch to a UsageSink (embedded: SQLite in data_dir; Redis: one hash per
// key/tenant/model/hour with a retention period); the admin API queries the sink.
#pragma once

#include <array>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/rfc3339.h"
#include "config/config.h"

namespace trl {

namespace asio = boost::asio;

constexpr int64_t kSecondsPerHour = 3600;

// The start of the UTC hour holding `unix_seconds`, the hour a usage row counts in: floor, not
// truncation, so an hour always starts at or before the instant it holds.
inline int64_t HourOf(int64_t unix_seconds) {
  const int64_t rem = unix_seconds % kSecondsPerHour;
  return unix_seconds - (rem < 0 ? rem + kSecondsPerHour : rem);
}

// Counters of one (key, tenant, model, hour). Rejections are counted by the kind of limit that
// refused (tokens, requests, concurrency, spend); `requests` counts admitted requests only.
// The counters added since the first version come last, so that a positional {...} of the first
// six still means what it did.
struct UsageCounts {
  int64_t requests = 0;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t rejected_tokens = 0;
  int64_t rejected_requests = 0;
  int64_t rejected_concurrency = 0;
  int64_t cached_tokens = 0;  // of prompt_tokens, those the backend served from its prefix cache
  int64_t cost = 0;           // nanos of the config's currency (common/money.h)
  int64_t rejected_spend = 0;

  int64_t Rejected() const {
    return rejected_tokens + rejected_requests + rejected_concurrency + rejected_spend;
  }
  void Add(const UsageCounts& other);
  bool operator==(const UsageCounts&) const = default;
};

// Every counter of UsageCounts under its stored name (SQLite column, Redis hash field), in the
// order journal records hold them: the first kUsageCountersV1 are all a record of the first
// version has. One list, so that no place that stores or adds counters can forget one.
struct UsageCounter {
  std::string_view name;
  int64_t UsageCounts::*field;
};
inline constexpr std::array<UsageCounter, 9> kUsageCounters = {{
    {"requests", &UsageCounts::requests},
    {"prompt_tokens", &UsageCounts::prompt_tokens},
    {"completion_tokens", &UsageCounts::completion_tokens},
    {"rejected_tokens", &UsageCounts::rejected_tokens},
    {"rejected_requests", &UsageCounts::rejected_requests},
    {"rejected_concurrency", &UsageCounts::rejected_concurrency},
    {"cached_tokens", &UsageCounts::cached_tokens},
    {"cost", &UsageCounts::cost},
    {"rejected_spend", &UsageCounts::rejected_spend},
}};
inline constexpr size_t kUsageCountersV1 = 6;

struct UsageRow {
  std::string key;     // the key's name
  std::string tenant;  // "" when the key has none
  std::string model;   // canonical model name
  int64_t start = 0;   // Unix seconds: the start of the hour (or of the day, in day queries)
  UsageCounts counts;
  // The end user (the OpenAI `user` field or identity.user_header); "" = none. Last, so that a
  // positional {key, tenant, model, start, counts} still means a row without a user.
  std::string user = {};
};

class Journal;

// Aggregates usage in memory until the next flush. Thread-safe: Record* from any I/O thread
// (no I/O, no allocation once a row exists in the current batch); TakePending, Restore and
// JournalChanges from the flushing task's thread.
//
// With a journal (EnableJournal), every row changed since the last JournalChanges is appended to
// it as its batch's total so far: the journal's current segment holds the batch being recorded,
// each earlier segment a batch taken and not yet written (ReadUsageJournal sums them up).
class UsageRecorder {
 public:
  UsageRecorder();
  ~UsageRecorder();
  // `unix_seconds`: when the request was settled or refused; it picks the hour.
  // `cached_tokens`: of `prompt_tokens`, those the backend served from its prefix cache;
  // `cost_nanos`: what the request cost at its model's prices (CostNanos);
  // `user`: the request's end user, "" for none.
  void RecordAdmitted(std::string_view key, std::string_view tenant, std::string_view model,
                      int64_t unix_seconds, int64_t prompt_tokens, int64_t completion_tokens,
                      int64_t cached_tokens = 0, int64_t cost_nanos = 0,
                      std::string_view user = {});
  // Counts a 429 under the kind of limit that refused it.
  void RecordRejected(std::string_view key, std::string_view tenant, std::string_view model,
                      int64_t unix_seconds, LimitKind refused_by, std::string_view user = {});

  // Everything recorded since the last call (hour rows, in no particular order); empties the
  // aggregate.
  // With `journal`, the rows' last changes are appended to it first (the caller then rotates it:
  // the segment it closes holds exactly the rows returned).
  std::vector<UsageRow> TakePending(Journal* journal = nullptr);
  // Puts rows back (a flush that failed), added to whatever was recorded since.
  void Restore(const std::vector<UsageRow>& rows);
  // Rows waiting for the next flush (metrics, tests).
  size_t PendingRows() const;

  // Before the first Record*: from now on, changed rows are remembered for JournalChanges.
  void EnableJournal() { journaling_ = true; }
  // Appends the rows changed since the last call (or TakePending) to `journal`.
  void JournalChanges(Journal& journal);

 private:
  bool journaling_ = false;
  // Sharded by a hash of the row's identity so threads rarely meet on one lock.
  static constexpr size_t kShards = 16;
  struct Shard;
  std::array<std::unique_ptr<Shard>, kShards> shards_;
};

// The rows of the segments an earlier run left in `journal` (Journal::Leftover): batches it took
// or was recording and never wrote, summed per row. False and *error when one cannot be read.
bool ReadUsageJournal(const Journal& journal, std::vector<UsageRow>* rows, std::string* error);

enum class UsageGranularity { kHour, kDay };

// GET /admin/v1/usage. Rows are those whose hour overlaps [from, to): hour_start < to and
// hour_start + 3600 > from; with kDay they are summed per UTC day (start = midnight).
struct UsageQuery {
  std::optional<std::string> key, tenant, model;  // filters; nullopt = any
  std::optional<std::string> user;                // filter; nullopt = any, "" = rows without one
  int64_t from = 0;                               // Unix seconds
  int64_t to = 0;                                 // Unix seconds
  UsageGranularity granularity = UsageGranularity::kHour;
  bool csv = false;  // format=csv
  // group_by: the identities that tell rows apart; the others are summed over (left "" in the
  // rows, and out of the answer). By default key, tenant and model: the users of a key are
  // summed, so that an answer reads as it did before usage was counted per user.
  struct GroupBy {
    bool key = true, tenant = true, model = true, user = false;
    bool operator==(const GroupBy&) const = default;
  } group_by;
};

// The query parameters of GET /admin/v1/usage, the one list of them (the admin API's query
// check reads it too).
inline constexpr std::array<std::string_view, 9> kUsageParams = {
    "key", "tenant", "model", "from", "to", "granularity", "format", "group_by", "user"};

struct UsageParamError {
  std::string param;    // the query parameter at fault: "from", "granularity", ...
  std::string message;  // says what is expected
};

// Parses the query string (without '?', percent-encoded as sent) of GET /admin/v1/usage.
// Unknown parameters, repeated parameters, bad RFC 3339 times, from >= to, a range over 400
// days, an unknown granularity or format, a group_by other than a comma-separated list of
// distinct key, tenant, model and user: an error naming the parameter. Defaults: from = the
// start of today (UTC) at `now_unix`, to = now_unix, granularity hour, JSON, group_by
// key,tenant,model. An empty value is no parameter, except user= (rows without a user).
struct ParsedUsageQuery {
  std::optional<UsageQuery> query;
  std::optional<UsageParamError> error;
};
ParsedUsageQuery ParseUsageQuery(std::string_view query_string, int64_t now_unix);

struct UsageResult {
  bool ok = false;  // false: the sink failed (error says why, without secrets)
  std::string error;
  std::vector<UsageRow> rows;  // sorted by start, key, tenant, model, user
  UsageCounts total;
};

// {"data": [{key, tenant, model, user, start, requests, prompt_tokens, completion_tokens,
//  cached_tokens, cost, rejected, rejected_by: {tokens, requests, concurrency, spend}}],
//  "total": {...same counters...}, "currency", "from", "to", "granularity",
//  "group_by": ["key", "tenant", "model"]}; times RFC 3339 UTC ("2026-11-28T13:00:00Z"), costs
//  exact decimal strings in `currency` ("0.0006", FormatMoney). Rows hold only the identities
//  grouped by.
std::string RenderUsageJson(const UsageQuery& query, const UsageResult& result,
                            std::string_view currency);
// Header line "key,tenant,model,user,start,requests,prompt_tokens,completion_tokens,rejected,
// rejected_tokens,rejected_requests,rejected_concurrency,cached_tokens,cost,rejected_spend"
// (only the identities grouped by), one line per row, then a "total" line ("total" in the first
// column, the other identity columns empty). Costs as in JSON. Fields quoted per RFC 4180 when
// needed.
std::string RenderUsageCsv(const UsageQuery& query, const UsageResult& result);

// Where usage is kept. Thread-safe; each call may block the thread it runs on (SQLite) or
// suspend (Redis): the gateway calls it from its scheduler thread, never an I/O thread.
class UsageSink {
 public:
  virtual ~UsageSink() = default;
  // Adds the rows' counters to what is stored (several instances add to the same rows). All or
  // nothing as far as the sink allows (SQLite: one transaction; Redis: one script call per hour).
  // On false the caller puts every row back (UsageRecorder::Restore) for a later Write; a sink
  // that applied part of them (Redis: some hours) subtracts that part when the rows come back.
  virtual asio::awaitable<bool> Write(std::span<const UsageRow> rows, std::string* error) = 0;
  virtual asio::awaitable<UsageResult> Query(const UsageQuery& query) = 0;
  // Drops rows whose hour started before `before_unix` (SQLite; Redis expires them itself and
  // returns true). Returns the number of rows removed through *removed when non-null.
  virtual asio::awaitable<bool> DropBefore(int64_t before_unix, int64_t* removed,
                                           std::string* error) = 0;
};

namespace redis {
class RedisClient;
}

// <data_dir>/usage.db (SQLite, WAL), data_dir made if missing. Blocking I/O. One connection
// behind a mutex: the scheduler thread's writes and the admin thread's queries take turns.
// Null and *error on failure.
std::unique_ptr<UsageSink> OpenSqliteUsageSink(const std::string& data_dir, std::string* error);
// Hashes "trl:usage:{h<hour>}:<key>|<tenant>|<model>[|<user>]" (names percent-encoded; no user
// part for a row without one, as before users were counted) plus an index set per hour
// "trl:usage:{h<hour>}:rows" of the same members, all of one hour in one cluster slot; each expires
// `retention` after its hour ends. `client` must outlive the sink; commands time out after
// `timeout`.
std::unique_ptr<UsageSink> MakeRedisUsageSink(redis::RedisClient& client, Millis retention,
                                              Millis timeout);

}  // namespace trl
