// KeyStore on SQLite: <data_dir>/keys.db, for the embedded store (one instance).
//
// Tables: keys(name, record, version: that of its last change), meta(version), removed(name,
// version: the tombstones of removed keys, the newest `log_size` kept) and log(floor: the
// newest version a trimmed tombstone had). The changes after version v are the keys and
// tombstones with a version above v, complete when v >= floor.
#include <spdlog/spdlog.h>

#include <initializer_list>
#include <mutex>
#include <variant>

#include "common/crypto.h"
#include "common/sqlite.h"
#include "keys/key_store.h"

namespace trl {
namespace {

constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS keys(name TEXT PRIMARY KEY, record TEXT NOT NULL,"
    " version INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS meta(version INTEGER NOT NULL);"
    "INSERT INTO meta(version) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM meta);"
    "CREATE TABLE IF NOT EXISTS removed(name TEXT PRIMARY KEY, version INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS removed_by_version ON removed(version);"
    "CREATE TABLE IF NOT EXISTS log(floor INTEGER NOT NULL);"
    "INSERT INTO log(floor) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM log);";

// A keys.db of a release without the log: its keys get a version (0, older than any reader) and
// the log starts at the current version (the removals before it left no tombstone).
constexpr const char* kAddVersions =
    "ALTER TABLE keys ADD COLUMN version INTEGER NOT NULL DEFAULT 0;"
    "UPDATE log SET floor = (SELECT version FROM meta);";
constexpr const char* kIndexVersions =
    "CREATE INDEX IF NOT EXISTS keys_by_version ON keys(version);";

bool Migrate(sqlite::Database& db, std::string* error) {
  sqlite::Transaction transaction(db, error, "BEGIN IMMEDIATE");
  if (!transaction.Began() || !db.Exec(kSchema, error)) return false;
  sqlite::Statement has_versions;
  if (!has_versions.Prepare(db, "SELECT 1 FROM pragma_table_info('keys') WHERE name = 'version'",
                            error)) {
    return false;
  }
  const sqlite::Statement::Step step = has_versions.Next();
  if (step == sqlite::Statement::Step::kError) {
    *error = db.Error("schema");
    return false;
  }
  if (step == sqlite::Statement::Step::kDone && !db.Exec(kAddVersions, error)) return false;
  return db.Exec(kIndexVersions, error) && transaction.Commit(error);
}

// Thread-safety: every call takes mutex_ (the admin thread writes, the scheduler's key sync
// reads; one connection serves both, one call at a time).
class SqliteKeyStore final : public KeyStore {
 public:
  SqliteKeyStore(sqlite::Database db, int64_t log_size) : db_(std::move(db)), log_size_(log_size) {}

  asio::awaitable<Loaded> LoadAll() override { co_return LoadNow(); }
  asio::awaitable<Changes> ChangesSince(int64_t since) override { co_return ChangesNow(since); }
  asio::awaitable<std::optional<int64_t>> Version() override {
    std::lock_guard lock(mutex_);
    co_return ReadInt("SELECT version FROM meta");
  }
  asio::awaitable<Written> Create(const KeyRecord& record) override {
    co_return Write(record.key.name, SerializeKeyRecord(record), Mode::kCreate);
  }
  asio::awaitable<Written> Replace(const KeyRecord& record, const KeyRecord& over) override {
    co_return Write(record.key.name, SerializeKeyRecord(record), Mode::kReplace, &over);
  }
  asio::awaitable<Written> Remove(std::string_view name) override {
    co_return Write(name, "", Mode::kRemove);
  }

 private:
  enum class Mode { kCreate, kReplace, kRemove };

  using Param = std::variant<int64_t, std::string_view>;

  // `sql` prepared with `params` bound to ?1, ?2, ...
  bool Prepare(sqlite::Statement& statement, const char* sql, std::initializer_list<Param> params,
               std::string* error) {
    if (!statement.Prepare(db_, sql, error)) return false;
    int index = 0;
    for (const Param& p : params) {
      ++index;
      if (const auto* text = std::get_if<std::string_view>(&p)) {
        statement.BindText(index, *text);
      } else {
        statement.Bind(index, std::get<int64_t>(p));
      }
    }
    return true;
  }

  // The first column of the first row; nullopt when there is none or the read failed.
  std::optional<int64_t> ReadInt(const char* sql, std::initializer_list<Param> params = {}) {
    sqlite::Statement select;
    if (!Prepare(select, sql, params, nullptr) || select.Next() != sqlite::Statement::Step::kRow) {
      return std::nullopt;
    }
    return select.Int(0);
  }

  // Runs a statement that returns no rows: true when it ran, else *error says why.
  bool Run(const char* sql, std::initializer_list<Param> params, std::string* error) {
    sqlite::Statement statement;
    if (!Prepare(statement, sql, params, error)) return false;
    if (statement.Run()) return true;
    *error = db_.Error("write");
    return false;
  }

  // Each row of `select` (name, record) into `into`; an unreadable record is skipped, and its
  // name added to `unreadable` when given.
  bool ReadRecords(sqlite::Statement& select, std::vector<KeyRecord>& into,
                   std::vector<std::string>* unreadable, std::string* error) {
    sqlite::Statement::Step step;
    while ((step = select.Next()) == sqlite::Statement::Step::kRow) {
      if (auto record = ParseKeyRecord(select.Text(1))) {
        into.push_back(std::move(*record));
      } else {
        spdlog::error("keys.db: the record of key '{}' is unreadable; skipped", select.Text(0));
        if (unreadable) unreadable->emplace_back(select.Text(0));
      }
    }
    if (step == sqlite::Statement::Step::kError) *error = db_.Error("load");
    return step == sqlite::Statement::Step::kDone;
  }

  Loaded LoadNow() {
    std::lock_guard lock(mutex_);
    Loaded out;
    // One snapshot: the version read is the version of the keys read.
    sqlite::Transaction snapshot(db_, &out.error);
    if (!snapshot.Began()) return out;
    const std::optional<int64_t> version = ReadInt("SELECT version FROM meta");
    sqlite::Statement select;
    if (!version || !select.Prepare(db_, "SELECT name, record FROM keys", &out.error)) {
      if (out.error.empty()) out.error = db_.Error("version");
      return out;
    }
    out.ok = ReadRecords(select, out.keys, nullptr, &out.error);
    out.version = *version;
    return out;
  }

  Changes ChangesNow(int64_t since) {
    std::lock_guard lock(mutex_);
    Changes out;
    sqlite::Transaction snapshot(db_, &out.error);
    if (!snapshot.Began()) return out;
    const std::optional<int64_t> version = ReadInt("SELECT version FROM meta");
    const std::optional<int64_t> floor = ReadInt("SELECT floor FROM log");
    if (!version || !floor) {
      out.error = db_.Error("version");
      return out;
    }
    out.version = *version;
    out.complete = since == *version || (since >= *floor && since < *version);
    if (!out.complete || since == *version) {
      out.ok = true;
      return out;
    }
    sqlite::Statement changed, removed;
    if (!changed.Prepare(db_, "SELECT name, record FROM keys WHERE version > ?1", &out.error) ||
        !removed.Prepare(db_, "SELECT name FROM removed WHERE version > ?1", &out.error)) {
      return out;
    }
    changed.Bind(1, since);
    removed.Bind(1, since);
    if (!ReadRecords(changed, out.changed, &out.removed, &out.error)) return out;
    sqlite::Statement::Step step;
    while ((step = removed.Next()) == sqlite::Statement::Step::kRow) {
      out.removed.emplace_back(removed.Text(0));
    }
    out.ok = step == sqlite::Statement::Step::kDone;
    if (!out.ok) out.error = db_.Error("changes");
    return out;
  }

  // The change log's side of a write at `version`: a removal leaves a tombstone (the oldest
  // beyond log_size_ go, and the floor rises to them); a key made again takes the place of its.
  bool Log(std::string_view name, Mode mode, int64_t version, std::string* error) {
    if (mode == Mode::kCreate) return Run("DELETE FROM removed WHERE name = ?1", {name}, error);
    if (mode == Mode::kReplace) return true;
    if (!Run("INSERT OR REPLACE INTO removed(name, version) VALUES(?1, ?2)", {name, version},
             error)) {
      return false;
    }
    const std::optional<int64_t> cut =
        ReadInt("SELECT version FROM removed ORDER BY version DESC LIMIT 1 OFFSET ?1", {log_size_});
    if (!cut) return true;
    return Run("DELETE FROM removed WHERE version <= ?1", {*cut}, error) &&
           Run("UPDATE log SET floor = max(floor, ?1)", {*cut}, error);
  }

  // kReplace: only over the record `over` (kConflict when the stored one is another).
  Written Write(std::string_view name, const std::string& record, Mode mode,
                const KeyRecord* over = nullptr) {
    std::lock_guard lock(mutex_);
    sqlite::Transaction transaction(db_, nullptr, "BEGIN IMMEDIATE");
    if (!transaction.Began()) return Written{WriteStatus::kError};
    std::string error = db_.Error("version");
    const std::optional<int64_t> current = ReadInt("SELECT version FROM meta");
    const int64_t version = current.value_or(0) + 1;
    if (current && mode == Mode::kReplace) {
      const std::string over_sha = ToHex(over->key.key_sha256);
      const std::optional<int64_t> same = ReadInt(
          "SELECT coalesce(json_extract(record, '$.rev'), 0) = ?2 AND"
          " json_extract(record, '$.sha256') = ?3 FROM keys WHERE name = ?1",
          {name, over->revision, over_sha});
      if (same == 0) return Written{WriteStatus::kConflict};
    }
    bool ok = false;
    if (current) {
      ok = mode == Mode::kCreate
               ? Run("INSERT OR IGNORE INTO keys(name, record, version) VALUES(?1, ?2, ?3)",
                     {name, record, version}, &error)
           : mode == Mode::kReplace
               ? Run("UPDATE keys SET record = ?2, version = ?3 WHERE name = ?1",
                     {name, record, version}, &error)
               : Run("DELETE FROM keys WHERE name = ?1", {name}, &error);
    }
    const bool changed = ok && db_.Changes() == 1;
    if (changed) {
      ok = Run("UPDATE meta SET version = ?1", {version}, &error) &&
           Log(name, mode, version, &error);
    }
    if (!ok) {
      spdlog::error("{}", error);
      return Written{WriteStatus::kError};
    }
    if (!changed)
      return Written{mode == Mode::kCreate ? WriteStatus::kExists : WriteStatus::kNotFound};
    if (!transaction.Commit(nullptr)) return Written{WriteStatus::kError};
    return Written{WriteStatus::kOk, version};
  }

  std::mutex mutex_;
  sqlite::Database db_;
  const int64_t log_size_;
};

}  // namespace

std::unique_ptr<KeyStore> OpenSqliteKeyStore(const std::string& data_dir, std::string* error,
                                             int64_t log_size) {
  std::optional<sqlite::Database> db = sqlite::Database::Open(data_dir, "keys.db", error);
  // As limits.db and usage.db: with WAL, a power cut may lose the last writes (keys made a
  // moment before it), never the file; a killed process loses nothing. FULL's sync per commit
  // held creations under 1,000/s.
  if (!db || !db->Exec("PRAGMA synchronous=NORMAL", error) || !Migrate(*db, error)) return nullptr;
  return std::make_unique<SqliteKeyStore>(std::move(*db), log_size);
}

}  // namespace trl
