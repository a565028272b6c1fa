// The embedded usage sink: <data_dir>/usage.db, one row per (key, tenant, model, user, hour).
//
// WAL journal: the admin thread's queries read while the scheduler's flush writes, and
// scripts/backup.sh's online backup copies a consistent snapshot while the gateway runs.
// synchronous=NORMAL: with WAL a power cut may lose the last transactions but never corrupts
// the file; a flush a second is not worth an fsync each.
#include <mutex>
#include <optional>
#include <string>

#include "common/sqlite.h"
#include "usage/usage.h"
#include "usage/usage_rows.h"

namespace trl {
namespace {

// The usage table's columns (after "CREATE TABLE <name>"). Those of the counters are
// kUsageCounters', in its order; `user` is '' for a request without an end user.
constexpr const char* kColumns = R"sql( (
  key TEXT NOT NULL,
  tenant TEXT NOT NULL,
  model TEXT NOT NULL,
  user TEXT NOT NULL DEFAULT '',
  hour INTEGER NOT NULL,
  requests INTEGER NOT NULL DEFAULT 0,
  prompt_tokens INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0,
  rejected_tokens INTEGER NOT NULL DEFAULT 0,
  rejected_requests INTEGER NOT NULL DEFAULT 0,
  rejected_concurrency INTEGER NOT NULL DEFAULT 0,
  cached_tokens INTEGER NOT NULL DEFAULT 0,
  cost INTEGER NOT NULL DEFAULT 0,
  rejected_spend INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (key, tenant, model, user, hour)
) WITHOUT ROWID;
)sql";
constexpr const char* kIndex = "CREATE INDEX IF NOT EXISTS usage_by_hour ON usage (hour);";

constexpr const char* kHasColumn = "SELECT 1 FROM pragma_table_info('usage') WHERE name = ?1";

constexpr const char* kUpsert = R"sql(
INSERT INTO usage (key, tenant, model, hour, requests, prompt_tokens, completion_tokens,
                   rejected_tokens, rejected_requests, rejected_concurrency, cached_tokens, cost,
                   rejected_spend, user)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
ON CONFLICT (key, tenant, model, user, hour) DO UPDATE SET
  requests = requests + excluded.requests,
  prompt_tokens = prompt_tokens + excluded.prompt_tokens,
  completion_tokens = completion_tokens + excluded.completion_tokens,
  rejected_tokens = rejected_tokens + excluded.rejected_tokens,
  rejected_requests = rejected_requests + excluded.rejected_requests,
  rejected_concurrency = rejected_concurrency + excluded.rejected_concurrency,
  cached_tokens = cached_tokens + excluded.cached_tokens,
  cost = cost + excluded.cost,
  rejected_spend = rejected_spend + excluded.rejected_spend
)sql";

// ?1 from, ?2 to, ?3..?5 key/tenant/model (NULL: any), ?6 the bucket width (3600 or 86400),
// ?7 user (NULL: any; '': the rows without one).
// `hour > from - 3600` rather than `hour + 3600 > from`, so that the hour index serves it.
constexpr const char* kSelect = R"sql(
SELECT key, tenant, model, hour - hour % ?6 AS start, SUM(requests), SUM(prompt_tokens),
       SUM(completion_tokens), SUM(rejected_tokens), SUM(rejected_requests),
       SUM(rejected_concurrency), SUM(cached_tokens), SUM(cost), SUM(rejected_spend), user
FROM usage
WHERE hour > ?1 - 3600 AND hour < ?2
  AND (?3 IS NULL OR key = ?3) AND (?4 IS NULL OR tenant = ?4) AND (?5 IS NULL OR model = ?5)
  AND (?7 IS NULL OR user = ?7)
GROUP BY start, key, tenant, model, user
ORDER BY start, key, tenant, model, user
)sql";

// Whether the usage table has the column `name`; nullopt and *error when SQLite fails.
std::optional<bool> HasColumn(sqlite::Database& db, std::string_view name, std::string* error) {
  sqlite::Statement has_column;
  if (!has_column.Prepare(db, kHasColumn, error)) return std::nullopt;
  has_column.BindText(1, name);
  const sqlite::Statement::Step step = has_column.Next();
  if (step == sqlite::Statement::Step::kError) {
    if (error) *error = db.Error("schema");
    return std::nullopt;
  }
  return step == sqlite::Statement::Step::kRow;
}

// A table of the versions before users were counted: the user is not in its primary key, and
// SQLite cannot change a primary key in place. So the table is made anew, its rows copied with
// user '' (what they counted: requests without a user, as far as anyone knew), the old one
// dropped (its index with it) and the new one put in its place. In the caller's transaction: a
// failure leaves the old table as it was.
bool AddUserToKey(sqlite::Database& db, std::string* error) {
  std::string counters;
  for (const UsageCounter& counter : kUsageCounters) counters.append(", ").append(counter.name);
  // The names are kUsageCounters', not outside input.
  const std::string rebuild = std::string("CREATE TABLE usage_by_user") + kColumns +
                              "INSERT INTO usage_by_user (key, tenant, model, user, hour" +
                              counters + ") SELECT key, tenant, model, '', hour" + counters +
                              " FROM usage;\n"
                              "DROP TABLE usage;\n"
                              "ALTER TABLE usage_by_user RENAME TO usage;\n" +
                              kIndex;
  return db.Exec(rebuild.c_str(), error);
}

// Makes the table, or brings a table of an earlier version up to this one: a counter column it
// lacks is added, 0 in its rows (what they counted of it, the counter not existing then); a
// table without the user column is rebuilt with it (AddUserToKey).
bool Migrate(sqlite::Database& db, std::string* error) {
  sqlite::Transaction transaction(db, error, "BEGIN IMMEDIATE");
  const std::string schema = std::string("CREATE TABLE IF NOT EXISTS usage") + kColumns + kIndex;
  if (!transaction.Began() || !db.Exec(schema.c_str(), error)) return false;
  for (const UsageCounter& counter : kUsageCounters) {
    const std::optional<bool> has = HasColumn(db, counter.name, error);
    if (!has) return false;
    if (*has) continue;
    // The name is kUsageCounters', not outside input.
    const std::string add =
        "ALTER TABLE usage ADD COLUMN " + std::string(counter.name) + " INTEGER NOT NULL DEFAULT 0";
    if (!db.Exec(add.c_str(), error)) return false;
  }
  const std::optional<bool> has_user = HasColumn(db, "user", error);
  if (!has_user || (!*has_user && !AddUserToKey(db, error))) return false;
  return transaction.Commit(error);
}

constexpr const char* kDelete = "DELETE FROM usage WHERE hour < ?1";

// Thread-safety: every public call takes mutex_ (the scheduler thread writes and drops, the
// admin thread queries; one connection serves both, one call at a time).
class SqliteUsageSink final : public UsageSink {
 public:
  bool Open(const std::string& data_dir, std::string* error) {
    db_ = sqlite::Database::Open(data_dir, "usage.db", error);
    return db_ && db_->Exec("PRAGMA synchronous=NORMAL", error) && Migrate(*db_, error) &&
           upsert_.Prepare(*db_, kUpsert, error, kPersistent) &&
           select_.Prepare(*db_, kSelect, error, kPersistent) &&
           delete_.Prepare(*db_, kDelete, error, kPersistent);
  }

  asio::awaitable<bool> Write(std::span<const UsageRow> rows, std::string* error) override {
    co_return WriteNow(rows, error);
  }

  asio::awaitable<UsageResult> Query(const UsageQuery& query) override {
    UsageResult result;
    try {
      result = QueryNow(query);
    } catch (const std::exception& e) {  // out of memory for a huge result
      result = {};
      result.error = std::string("usage.db: query: ") + e.what();
    }
    co_return result;
  }

  asio::awaitable<bool> DropBefore(int64_t before_unix, int64_t* removed,
                                   std::string* error) override {
    co_return DropNow(before_unix, removed, error);
  }

 private:
  bool WriteNow(std::span<const UsageRow> rows, std::string* error) {
    std::lock_guard lock(mutex_);
    sqlite::Transaction transaction(*db_, error, "BEGIN IMMEDIATE");
    if (!transaction.Began()) return false;
    for (const UsageRow& row : rows) {
      upsert_.Reset();
      upsert_.BindText(1, row.key);
      upsert_.BindText(2, row.tenant);
      upsert_.BindText(3, row.model);
      upsert_.Bind(4, row.start);
      const UsageCounts& c = row.counts;
      int index = 5;
      for (const UsageCounter& counter : kUsageCounters) upsert_.Bind(index++, c.*counter.field);
      upsert_.BindText(index, row.user);
      if (!upsert_.Run()) {
        if (error) *error = db_->Error("write");
        upsert_.Reset();
        return false;
      }
    }
    upsert_.Reset();
    return transaction.Commit(error);
  }

  UsageResult QueryNow(const UsageQuery& query) {
    std::lock_guard lock(mutex_);
    std::vector<UsageRow> rows;
    select_.Reset();
    select_.Bind(1, query.from);
    select_.Bind(2, query.to);
    if (query.key) select_.BindText(3, *query.key);
    if (query.tenant) select_.BindText(4, *query.tenant);
    if (query.model) select_.BindText(5, *query.model);
    select_.Bind(6, query.granularity == UsageGranularity::kDay ? 86'400 : 3'600);
    if (query.user) select_.BindText(7, *query.user);
    sqlite::Statement::Step step;
    while ((step = select_.Next()) == sqlite::Statement::Step::kRow) {
      UsageRow& row = rows.emplace_back();
      row.key = std::string(select_.Text(0));
      row.tenant = std::string(select_.Text(1));
      row.model = std::string(select_.Text(2));
      row.start = select_.Int(3);
      int column = 4;
      for (const UsageCounter& counter : kUsageCounters) {
        row.counts.*counter.field = select_.Int(column++);
      }
      row.user = std::string(select_.Text(column));
    }
    UsageResult result;
    if (step == sqlite::Statement::Step::kError) {
      result.error = db_->Error("query");
    } else {
      // Summed per hour or day by SQLite already: this groups and adds the total.
      result = MakeUsageResult(std::move(rows), query);
    }
    select_.Reset();
    return result;
  }

  bool DropNow(int64_t before_unix, int64_t* removed, std::string* error) {
    std::lock_guard lock(mutex_);
    delete_.Reset();
    delete_.Bind(1, before_unix);
    const bool ok = delete_.Run();
    if (!ok && error) *error = db_->Error("drop");
    if (ok && removed) *removed = db_->Changes();
    delete_.Reset();
    return ok;
  }

  static constexpr auto kPersistent = sqlite::Statement::Lifetime::kPersistent;

  std::mutex mutex_;
  std::optional<sqlite::Database> db_;
  // After db_: finalized before it closes.
  sqlite::Statement upsert_, select_, delete_;
};

}  // namespace

std::unique_ptr<UsageSink> OpenSqliteUsageSink(const std::string& data_dir, std::string* error) {
  auto sink = std::make_unique<SqliteUsageSink>();
  if (!sink->Open(data_dir, error)) return nullptr;
  return sink;
}

}  // namespace trl
