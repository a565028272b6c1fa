#include "keys/key_store.h"

#include <spdlog/spdlog.h>

#include <mutex>

#include "common/crypto.h"
#include "common/sqlite.h"
#include "keys/key_scripts.h"
#include "redis/redis_client.h"

namespace trl {
namespace {

// ---------------------------------------------------------------------------------------------
// SQLite

constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS keys(name TEXT PRIMARY KEY, record TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS meta(version INTEGER NOT NULL);"
    "INSERT INTO meta(version) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM meta);";

// Thread-safety: every call takes mutex_ (the admin thread writes, the scheduler's key sync
// reads; one connection serves both, one call at a time).
class SqliteKeyStore final : public KeyStore {
 public:
  explicit SqliteKeyStore(sqlite::Database db) : db_(std::move(db)) {}

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

  std::optional<int64_t> ReadVersion() {
    sqlite::Statement select;
    if (!select.Prepare(db_, "SELECT version FROM meta", nullptr) ||
        select.Next() != sqlite::Statement::Step::kRow) {
      return std::nullopt;
    }
    return select.Int(0);
  }

  Loaded LoadNow() {
    std::lock_guard lock(mutex_);
    Loaded out;
    // One snapshot: the version read is the version of the keys read.
    sqlite::Transaction snapshot(db_, &out.error);
    if (!snapshot.Began()) return out;
    const std::optional<int64_t> version = ReadVersion();
    sqlite::Statement select;
    if (!version ||
        !select.Prepare(db_, "SELECT name, record FROM keys ORDER BY name", &out.error)) {
      if (out.error.empty()) out.error = db_.Error("version");
      return out;
    }
    sqlite::Statement::Step step;
    while ((step = select.Next()) == sqlite::Statement::Step::kRow) {
      if (auto record = ParseKeyRecord(select.Text(1))) {
        out.keys.push_back(std::move(*record));
      } else {
        spdlog::error("keys.db: the record of key '{}' is unreadable; skipped", select.Text(0));
      }
    }
    if (step == sqlite::Statement::Step::kError) {
      out.error = db_.Error("load");
      return out;
    }
    out.ok = true;
    out.version = *version;
    return out;
  }

  WriteStatus Write(std::string_view name, const std::string& record, Mode mode) {
    std::lock_guard lock(mutex_);
    sqlite::Transaction transaction(db_, nullptr, "BEGIN IMMEDIATE");
    if (!transaction.Began()) return WriteStatus::kError;
    const char* sql = mode == Mode::kCreate
                          ? "INSERT OR IGNORE INTO keys(name, record) VALUES(?1, ?2)"
                      : mode == Mode::kReplace ? "UPDATE keys SET record = ?2 WHERE name = ?1"
                                               : "DELETE FROM keys WHERE name = ?1";
    sqlite::Statement write;
    std::string error;
    bool ok = write.Prepare(db_, sql, &error);
    if (ok) {
      write.BindText(1, name);
      if (mode != Mode::kRemove) write.BindText(2, record);
      ok = write.Run();
      if (!ok) error = db_.Error("write");
    }
    const bool changed = ok && db_.Changes() == 1;
    if (changed) ok = db_.Exec("UPDATE meta SET version = version + 1", &error);
    if (!ok) {
      spdlog::error("{}", error);
      return WriteStatus::kError;
    }
    if (!changed) return mode == Mode::kCreate ? WriteStatus::kExists : WriteStatus::kNotFound;
    return transaction.Commit(nullptr) ? WriteStatus::kOk : WriteStatus::kError;
  }

  std::mutex mutex_;
  sqlite::Database db_;
};

// ---------------------------------------------------------------------------------------------
// Redis: each write is one EVAL of a script of key_scripts.h, atomic with its version bump and
// safe to resend. Admin writes are rare, so EVAL (not EVALSHA) keeps this independent of the
// client's script registry.

constexpr const char* kRecords = "trl:keys:{keys}:records";
constexpr const char* kVersion = "trl:keys:{keys}:version";
constexpr const char* kOperationPrefix = "trl:keys:{keys}:op:";

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
    std::vector<std::string> args{"EVAL", key_scripts::kLoad, "2", kRecords, kVersion};
    std::string routing = kRecords;
    redis::Result r = co_await client_.Execute(std::move(args), std::move(routing), Deadline());
    if (!r.Ok() || r.reply->type != REDIS_REPLY_ARRAY || r.reply->elements != 2 ||
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
    WriteStatus status = co_await Write(key_scripts::kCreate, argv, WriteStatus::kExists);
    co_return status;
  }
  asio::awaitable<WriteStatus> Replace(const KeyRecord& record) override {
    std::vector<std::string> argv{record.key.name, SerializeKeyRecord(record)};
    WriteStatus status = co_await Write(key_scripts::kReplace, argv, WriteStatus::kNotFound);
    co_return status;
  }
  asio::awaitable<WriteStatus> Remove(std::string_view name) override {
    std::vector<std::string> argv{std::string(name)};
    WriteStatus status = co_await Write(key_scripts::kRemove, argv, WriteStatus::kNotFound);
    co_return status;
  }

 private:
  redis::SteadyTime Deadline() const { return std::chrono::steady_clock::now() + timeout_; }

  // One write (key_scripts.h), under an operation id of its own so that a resend of it (after
  // a dropped connection) answers as the first run did. `argv` is consumed.
  asio::awaitable<WriteStatus> Write(const std::string& script, std::vector<std::string>& argv,
                                     WriteStatus when_refused) {
    std::vector<std::string> args{"EVAL",   script,   "3",
                                  kRecords, kVersion, kOperationPrefix + RandomHex(16)};
    for (auto& a : argv) args.push_back(std::move(a));
    // Kept while a resend can still arrive: the command's deadline, with room to spare.
    args.push_back(std::to_string((timeout_ + std::chrono::minutes(1)).count()));
    std::string routing = kRecords;
    redis::Result r = co_await client_.Execute(std::move(args), std::move(routing), Deadline());
    if (!r.Ok() || r.reply->type != REDIS_REPLY_INTEGER) co_return WriteStatus::kError;
    co_return r.reply->integer < 0 ? when_refused : WriteStatus::kOk;
  }

  redis::RedisClient& client_;
  Millis timeout_;
};

}  // namespace

std::unique_ptr<KeyStore> OpenSqliteKeyStore(const std::string& data_dir, std::string* error) {
  std::optional<sqlite::Database> db = sqlite::Database::Open(data_dir, "keys.db", error);
  if (!db || !db->Exec(kSchema, error)) return nullptr;
  return std::make_unique<SqliteKeyStore>(std::move(*db));
}

std::unique_ptr<KeyStore> MakeRedisKeyStore(redis::RedisClient& client, Millis timeout) {
  return std::make_unique<RedisKeyStore>(client, timeout);
}

}  // namespace trl
