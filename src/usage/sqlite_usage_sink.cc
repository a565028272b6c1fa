// The embedded usage sink: <data_dir>/usage.db, one row per (key, tenant, model, hour).
//
// WAL journal: the admin thread's queries read while the scheduler's flush writes, and
// scripts/backup.sh's online backup copies a consistent snapshot while the gateway runs.
// synchronous=NORMAL: with WAL a power cut may lose the last transactions but never corrupts
// the file; a flush a second is not worth an fsync each.
#include <sqlite3.h>

#include <filesystem>

#include "usage/usage.h"
#include "usage/usage_rows.h"

namespace trl {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS usage (
  key TEXT NOT NULL,
  tenant TEXT NOT NULL,
  model TEXT NOT NULL,
  hour INTEGER NOT NULL,
  requests INTEGER NOT NULL DEFAULT 0,
  prompt_tokens INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0,
  rejected_tokens INTEGER NOT NULL DEFAULT 0,
  rejected_requests INTEGER NOT NULL DEFAULT 0,
  rejected_concurrency INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (key, tenant, model, hour)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS usage_by_hour ON usage (hour);
)sql";

constexpr const char* kUpsert = R"sql(
INSERT INTO usage (key, tenant, model, hour, requests, prompt_tokens, completion_tokens,
                   rejected_tokens, rejected_requests, rejected_concurrency)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
ON CONFLICT (key, tenant, model, hour) DO UPDATE SET
  requests = requests + excluded.requests,
  prompt_tokens = prompt_tokens + excluded.prompt_tokens,
  completion_tokens = completion_tokens + excluded.completion_tokens,
  rejected_tokens = rejected_tokens + excluded.rejected_tokens,
  rejected_requests = rejected_requests + excluded.rejected_requests,
  rejected_concurrency = rejected_concurrency + excluded.rejected_concurrency
)sql";

// ?1 from, ?2 to, ?3..?5 key/tenant/model (NULL: any), ?6 the bucket width (3600 or 86400).
// `hour > from - 3600` rather than `hour + 3600 > from`, so that the hour index serves it.
constexpr const char* kSelect = R"sql(
SELECT key, tenant, model, hour - hour % ?6 AS start, SUM(requests), SUM(prompt_tokens),
       SUM(completion_tokens), SUM(rejected_tokens), SUM(rejected_requests),
       SUM(rejected_concurrency)
FROM usage
WHERE hour > ?1 - 3600 AND hour < ?2
  AND (?3 IS NULL OR key = ?3) AND (?4 IS NULL OR tenant = ?4) AND (?5 IS NULL OR model = ?5)
GROUP BY start, key, tenant, model
ORDER BY start, key, tenant, model
)sql";

constexpr const char* kDelete = "DELETE FROM usage WHERE hour < ?1";

class Statement {
 public:
  Statement() = default;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() { sqlite3_finalize(stmt_); }

  bool Prepare(sqlite3* db, const char* sql) {
    return sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr) == SQLITE_OK;
  }
  sqlite3_stmt* get() const { return stmt_; }
  // Ready for the next use, with its parameters unbound (NULL).
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  void BindText(int index, std::string_view text) {
    sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
  }
  void BindOptionalText(int index, const std::optional<std::string>& text) {
    if (text) BindText(index, *text);
  }
  void BindInt(int index, int64_t value) { sqlite3_bind_int64(stmt_, index, value); }
  std::string Text(int column) const {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
    return text ? std::string(text, static_cast<size_t>(sqlite3_column_bytes(stmt_, column)))
                : std::string();
  }
  int64_t Int(int column) const { return sqlite3_column_int64(stmt_, column); }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

// Thread-safety: every public call takes mutex_ (the scheduler thread writes and drops, the
// admin thread queries; one connection serves both, one call at a time).
class SqliteUsageSink final : public UsageSink {
 public:
  // close_v2: the statements (members, finalized after this body) release it for good.
  ~SqliteUsageSink() override { sqlite3_close_v2(db_); }

  bool Open(const std::string& data_dir, std::string* error) {
    std::error_code ec;
    std::filesystem::create_directories(data_dir, ec);
    if (ec) return Fail(data_dir + ": " + ec.message(), error);
    const std::string path = (std::filesystem::path(data_dir) / "usage.db").string();
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
        SQLITE_OK) {
      return Fail(path + ": " + (db_ ? sqlite3_errmsg(db_) : "cannot open"), error);
    }
    // A backup (scripts/backup.sh) holds a read lock for a moment: wait rather than fail.
    sqlite3_busy_timeout(db_, 5000);
    if (!Exec("PRAGMA journal_mode=WAL", error) || !Exec("PRAGMA synchronous=NORMAL", error) ||
        !Exec(kSchema, error)) {
      return false;
    }
    if (!upsert_.Prepare(db_, kUpsert) || !select_.Prepare(db_, kSelect) ||
        !delete_.Prepare(db_, kDelete)) {
      return SqlFail("prepare", error);
    }
    return true;
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
    if (!Exec("BEGIN IMMEDIATE", error)) return false;
    for (const UsageRow& row : rows) {
      upsert_.Reset();
      upsert_.BindText(1, row.key);
      upsert_.BindText(2, row.tenant);
      upsert_.BindText(3, row.model);
      upsert_.BindInt(4, row.start);
      const UsageCounts& c = row.counts;
      int index = 5;
      for (int64_t n : {c.requests, c.prompt_tokens, c.completion_tokens, c.rejected_tokens,
                        c.rejected_requests, c.rejected_concurrency}) {
        upsert_.BindInt(index++, n);
      }
      if (sqlite3_step(upsert_.get()) != SQLITE_DONE) {
        SqlFail("write", error);
        upsert_.Reset();
        Exec("ROLLBACK", nullptr);
        return false;
      }
    }
    upsert_.Reset();
    if (!Exec("COMMIT", error)) {
      Exec("ROLLBACK", nullptr);
      return false;
    }
    return true;
  }

  UsageResult QueryNow(const UsageQuery& query) {
    std::lock_guard lock(mutex_);
    std::vector<UsageRow> rows;
    select_.Reset();
    select_.BindInt(1, query.from);
    select_.BindInt(2, query.to);
    select_.BindOptionalText(3, query.key);
    select_.BindOptionalText(4, query.tenant);
    select_.BindOptionalText(5, query.model);
    select_.BindInt(6, query.granularity == UsageGranularity::kDay ? 86'400 : 3'600);
    int rc = SQLITE_ROW;
    while ((rc = sqlite3_step(select_.get())) == SQLITE_ROW) {
      UsageRow& row = rows.emplace_back();
      row.key = select_.Text(0);
      row.tenant = select_.Text(1);
      row.model = select_.Text(2);
      row.start = select_.Int(3);
      row.counts = {select_.Int(4), select_.Int(5), select_.Int(6),
                    select_.Int(7), select_.Int(8), select_.Int(9)};
    }
    UsageResult result;
    if (rc != SQLITE_DONE) {
      SqlFail("query", &result.error);
    } else {
      // Grouped and ordered by SQLite already: this adds the total.
      result = MakeUsageResult(std::move(rows), UsageGranularity::kHour);
    }
    select_.Reset();
    return result;
  }

  bool DropNow(int64_t before_unix, int64_t* removed, std::string* error) {
    std::lock_guard lock(mutex_);
    delete_.Reset();
    delete_.BindInt(1, before_unix);
    const bool ok = sqlite3_step(delete_.get()) == SQLITE_DONE;
    if (!ok) SqlFail("drop", error);
    if (ok && removed) *removed = sqlite3_changes64(db_);
    delete_.Reset();
    return ok;
  }

  bool Exec(const char* sql, std::string* error) {
    char* message = nullptr;
    const bool ok = sqlite3_exec(db_, sql, nullptr, nullptr, &message) == SQLITE_OK;
    if (!ok) Fail(std::string("usage.db: ") + (message ? message : sqlite3_errmsg(db_)), error);
    sqlite3_free(message);
    return ok;
  }
  bool SqlFail(const char* what, std::string* error) {
    return Fail(std::string("usage.db: ") + what + ": " + sqlite3_errmsg(db_), error);
  }
  static bool Fail(std::string message, std::string* error) {
    if (error) *error = std::move(message);
    return false;
  }

  std::mutex mutex_;
  sqlite3* db_ = nullptr;
  Statement upsert_, select_, delete_;
};

}  // namespace

std::unique_ptr<UsageSink> OpenSqliteUsageSink(const std::string& data_dir, std::string* error) {
  auto sink = std::make_unique<SqliteUsageSink>();
  if (!sink->Open(data_dir, error)) return nullptr;
  return sink;
}

}  // namespace trl
