#include "keys/key_store.h"

#include <sqlite3.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <mutex>

#include "redis/redis_client.h"

namespace trl {
namespace {

// ---------------------------------------------------------------------------------------------
// SQLite

class SqliteKeyStore final : public KeyStore {
 public:
  explicit SqliteKeyStore(sqlite3* db) : db_(db) {}
  ~SqliteKeyStore() override { sqlite3_close(db_); }

  asio::awaitable<Loaded> LoadAll() override { co_return LoadNow(); }
  asio::awaitable<std::optional<int64_t>> Version() override {
    std::lock_guard lock(mutex_);
    co_return ReadVersion();
  }
  asio::awaitable<WriteStatus> Create(const KeyRecord& record) override {
    co_return Write(record.key.name, SerializeKeyRecord(record), Mode::kCreate);
  }
  asio::awaitable<WriteStatus> Replace(const KeyRecord& record) override {
    co_return Write(record.key.name, SerializeKeyRecord(record), Mode::kReplace);
  }
  asio::awaitable<WriteStatus> Remove(std::string_view name) override {
    co_return Write(name, "", Mode::kRemove);
  }

 private:
  enum class Mode { kCreate, kReplace, kRemove };

  bool Exec(const char* sql) { return sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) == SQLITE_OK; }

  std::optional<int64_t> ReadVersion() {
    sqlite3_stmt* stmt = nullptr;
    std::optional<int64_t> v;
    if (sqlite3_prepare_v2(db_, "SELECT version FROM meta", -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      v = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_finalize(stmt);
    return v;
  }

  Loaded LoadNow() {
    std::lock_guard lock(mutex_);
    Loaded out;
    if (!Exec("BEGIN")) {
      out.error = std::string("keys.db: ") + sqlite3_errmsg(db_);
      return out;
    }
    auto version = ReadVersion();
    sqlite3_stmt* stmt = nullptr;
    bool ok = version.has_value() &&
              sqlite3_prepare_v2(db_, "SELECT name, record FROM keys ORDER BY name", -1, &stmt,
                                 nullptr) == SQLITE_OK;
    int rc = SQLITE_DONE;
    while (ok && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      auto text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 1));
      auto record = ParseKeyRecord(
          text ? std::string_view(text, sqlite3_column_bytes(stmt, 1)) : std::string_view());
      if (record) {
        out.keys.push_back(std::move(*record));
      } else {
        spdlog::error("keys.db: the record of key '{}' is unreadable; skipped",
                      reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)));
      }
    }
    ok = ok && rc == SQLITE_DONE;
    if (!ok) out.error = std::string("keys.db: ") + sqlite3_errmsg(db_);
    sqlite3_finalize(stmt);
    Exec("COMMIT");
    out.ok = ok;
    if (ok) out.version = *version;
    return out;
  }

  WriteStatus Write(std::string_view name, const std::string& record, Mode mode) {
    std::lock_guard lock(mutex_);
    if (!Exec("BEGIN IMMEDIATE")) return WriteStatus::kError;
    const char* sql = mode == Mode::kCreate    ? "INSERT OR IGNORE INTO keys(name, record) VALUES(?1, ?2)"
                      : mode == Mode::kReplace ? "UPDATE keys SET record = ?2 WHERE name = ?1"
                                               : "DELETE FROM keys WHERE name = ?1";
    sqlite3_stmt* stmt = nullptr;
    bool ok = sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr) == SQLITE_OK;
    if (ok) {
      sqlite3_bind_text(stmt, 1, name.data(), static_cast<int>(name.size()), SQLITE_TRANSIENT);
      if (mode != Mode::kRemove) {
        sqlite3_bind_text(stmt, 2, record.data(), static_cast<int>(record.size()),
                          SQLITE_TRANSIENT);
      }
      ok = sqlite3_step(stmt) == SQLITE_DONE;
    }
    sqlite3_finalize(stmt);
    const bool changed = ok && sqlite3_changes(db_) == 1;
    if (changed) ok = Exec("UPDATE meta SET version = version + 1");
    if (!ok || !changed) {
      Exec("ROLLBACK");
      if (!ok) {
        spdlog::error("keys.db: {}", sqlite3_errmsg(db_));
        return WriteStatus::kError;
      }
      return mode == Mode::kCreate ? WriteStatus::kExists : WriteStatus::kNotFound;
    }
    return Exec("COMMIT") ? WriteStatus::kOk : WriteStatus::kError;
  }

  std::mutex mutex_;
  sqlite3* db_;
};

// ---------------------------------------------------------------------------------------------
// Redis: each write is one EVAL, atomic with its version bump. Admin writes are rare, so EVAL
// (not EVALSHA) keeps this independent of the client's script registry.

constexpr const char* kRecords = "trl:keys:{keys}:records";
constexpr const char* kVersion = "trl:keys:{keys}:version";

constexpr const char* kCreateScript = R"(
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return -1 end
return redis.call('INCR', KEYS[2]))";
constexpr const char* kReplaceScript = R"(
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return redis.call('INCR', KEYS[2]))";
constexpr const char* kRemoveScript = R"(
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return -1 end
return redis.call('INCR', KEYS[2]))";
constexpr const char* kLoadScript = R"(
return {redis.call('GET', KEYS[2]) or '0', redis.call('HGETALL', KEYS[1])})";

int64_t ToInt(const redisReply& r) {
  if (r.type == REDIS_REPLY_INTEGER) return r.integer;
  int64_t v = 0;
  std::string_view text = redis::ReplyText(r);
  for (char c : text) {
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

class RedisKeyStore final : public KeyStore {
 public:
  RedisKeyStore(redis::RedisClient& client, Millis timeout) : client_(client), timeout_(timeout) {}

  asio::awaitable<Loaded> LoadAll() override {
    Loaded out;
    std::vector<std::string> no_args;
    redis::Result r = co_await Eval(kLoadScript, no_args);
    if (!r.ok() || r.reply->type != REDIS_REPLY_ARRAY || r.reply->elements != 2 ||
        r.reply->element[1]->type != REDIS_REPLY_ARRAY) {
      out.error = "Redis did not answer the key load";
      co_return out;
    }
    out.version = ToInt(*r.reply->element[0]);
    const redisReply& pairs = *r.reply->element[1];
    for (size_t i = 0; i + 1 < pairs.elements; i += 2) {
      auto record = ParseKeyRecord(redis::ReplyText(*pairs.element[i + 1]));
      if (record) {
        out.keys.push_back(std::move(*record));
      } else {
        spdlog::error("Redis: the record of key '{}' is unreadable; skipped",
                      redis::ReplyText(*pairs.element[i]));
      }
    }
    out.ok = true;
    co_return out;
  }

  asio::awaitable<std::optional<int64_t>> Version() override {
    std::vector<std::string> args{"GET", kVersion};
    std::string routing = kVersion;
    redis::Result r = co_await client_.Execute(std::move(args), std::move(routing), Deadline());
    std::optional<int64_t> v;
    if (r.status == redis::ResultStatus::kOk && r.reply && !redis::IsError(r.reply.get())) {
      v = r.reply->type == REDIS_REPLY_NIL ? 0 : ToInt(*r.reply);
    }
    co_return v;
  }

  // The arguments are built into locals: GCC 12 mishandles non-trivial temporaries inside
  // co_await expressions.
  asio::awaitable<WriteStatus> Create(const KeyRecord& record) override {
    std::vector<std::string> argv{record.key.name, SerializeKeyRecord(record)};
    WriteStatus status = co_await WriteWith(kCreateScript, argv, WriteStatus::kExists);
    co_return status;
  }
  asio::awaitable<WriteStatus> Replace(const KeyRecord& record) override {
    std::vector<std::string> argv{record.key.name, SerializeKeyRecord(record)};
    WriteStatus status = co_await WriteWith(kReplaceScript, argv, WriteStatus::kNotFound);
    co_return status;
  }
  asio::awaitable<WriteStatus> Remove(std::string_view name) override {
    std::vector<std::string> argv{std::string(name)};
    WriteStatus status = co_await WriteWith(kRemoveScript, argv, WriteStatus::kNotFound);
    co_return status;
  }

 private:
  redis::SteadyTime Deadline() const { return std::chrono::steady_clock::now() + timeout_; }

  // `argv` is consumed.
  asio::awaitable<redis::Result> Eval(const char* script, std::vector<std::string>& argv) {
    std::vector<std::string> args{"EVAL", script, "2", kRecords, kVersion};
    for (auto& a : argv) args.push_back(std::move(a));
    std::string routing = kRecords;
    redis::Result r = co_await client_.Execute(std::move(args), std::move(routing), Deadline());
    co_return r;
  }

  asio::awaitable<WriteStatus> WriteWith(const char* script, std::vector<std::string>& argv,
                                         WriteStatus when_refused) {
    redis::Result r = co_await Eval(script, argv);
    if (!r.ok() || r.reply->type != REDIS_REPLY_INTEGER) co_return WriteStatus::kError;
    co_return r.reply->integer < 0 ? when_refused : WriteStatus::kOk;
  }

  redis::RedisClient& client_;
  Millis timeout_;
};

}  // namespace

std::unique_ptr<KeyStore> OpenSqliteKeyStore(const std::string& data_dir, std::string* error) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  const std::string path = (std::filesystem::path(data_dir) / "keys.db").string();
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    if (error) *error = path + ": " + (db ? sqlite3_errmsg(db) : "cannot open");
    sqlite3_close(db);
    return nullptr;
  }
  sqlite3_busy_timeout(db, 5000);
  const char* schema =
      "PRAGMA journal_mode=WAL;"
      "CREATE TABLE IF NOT EXISTS keys(name TEXT PRIMARY KEY, record TEXT NOT NULL);"
      "CREATE TABLE IF NOT EXISTS meta(version INTEGER NOT NULL);"
      "INSERT INTO meta(version) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM meta);";
  char* message = nullptr;
  if (sqlite3_exec(db, schema, nullptr, nullptr, &message) != SQLITE_OK) {
    if (error) *error = path + ": " + (message ? message : sqlite3_errmsg(db));
    sqlite3_free(message);
    sqlite3_close(db);
    return nullptr;
  }
  return std::make_unique<SqliteKeyStore>(db);
}

std::unique_ptr<KeyStore> MakeRedisKeyStore(redis::RedisClient& client, Millis timeout) {
  return std::make_unique<RedisKeyStore>(client, timeout);
}

}  // namespace trl
