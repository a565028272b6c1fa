#include "common/sqlite.h"

#include <sqlite3.h>

#include <filesystem>
#include <utility>

namespace trl::sqlite {
namespace {

constexpr int kBusyTimeoutMs = 5000;

bool Fail(std::string message, std::string* error) {
  if (error) *error = std::move(message);
  return false;
}

}  // namespace

std::optional<Database> Database::Open(const std::string& dir, std::string_view file,
                                       std::string* error) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    Fail(dir + ": " + ec.message(), error);
    return std::nullopt;
  }
  const std::string path = (std::filesystem::path(dir) / file).string();
  sqlite3* handle = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  Database db(handle, file);  // closes `handle` on every path, failed opens included
  if (rc != SQLITE_OK) {
    Fail(path + ": " + (handle ? sqlite3_errmsg(handle) : "cannot open"), error);
    return std::nullopt;
  }
  sqlite3_busy_timeout(handle, kBusyTimeoutMs);
  if (!db.Exec("PRAGMA journal_mode=WAL", error)) return std::nullopt;
  return db;
}

Database::Database(Database&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)), file_(std::move(other.file_)) {}

Database& Database::operator=(Database&& other) noexcept {
  if (this != &other) {
    sqlite3_close_v2(db_);
    db_ = std::exchange(other.db_, nullptr);
    file_ = std::move(other.file_);
  }
  return *this;
}

// close_v2: statements still open (finalized later) keep the connection until they go.
Database::~Database() { sqlite3_close_v2(db_); }

bool Database::Exec(const char* sql, std::string* error) {
  char* message = nullptr;
  const bool ok = sqlite3_exec(db_, sql, nullptr, nullptr, &message) == SQLITE_OK;
  if (!ok) Fail(file_ + ": " + (message ? message : sqlite3_errmsg(db_)), error);
  sqlite3_free(message);
  return ok;
}

std::string Database::Error(std::string_view what) const {
  std::string out = file_;
  out += ": ";
  out += what;
  out += ": ";
  out += sqlite3_errmsg(db_);
  return out;
}

int64_t Database::Changes() const { return sqlite3_changes64(db_); }

Statement::~Statement() { sqlite3_finalize(stmt_); }

bool Statement::Prepare(Database& db, const char* sql, std::string* error, Lifetime lifetime) {
  const unsigned flags = lifetime == Lifetime::kPersistent ? SQLITE_PREPARE_PERSISTENT : 0;
  if (sqlite3_prepare_v3(db.db_, sql, -1, flags, &stmt_, nullptr) == SQLITE_OK) return true;
  return Fail(db.Error("prepare"), error);
}

void Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

void Statement::Bind(int index, int64_t value) { sqlite3_bind_int64(stmt_, index, value); }

void Statement::BindText(int index, std::string_view text) {
  sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
}

Statement::Step Statement::Next() {
  switch (sqlite3_step(stmt_)) {
    case SQLITE_ROW:
      return Step::kRow;
    case SQLITE_DONE:
      return Step::kDone;
    default:
      return Step::kError;
  }
}

int64_t Statement::Int(int column) const { return sqlite3_column_int64(stmt_, column); }

std::string_view Statement::Text(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  return text ? std::string_view(reinterpret_cast<const char*>(text),
                                 static_cast<size_t>(sqlite3_column_bytes(stmt_, column)))
              : std::string_view();
}

Transaction::Transaction(Database& db, std::string* error, const char* begin) : db_(db) {
  open_ = db_.Exec(begin, error);
}

Transaction::~Transaction() {
  if (open_) db_.Exec("ROLLBACK", nullptr);
}

bool Transaction::Commit(std::string* error) {
  if (!open_) return false;
  open_ = false;
  if (db_.Exec("COMMIT", error)) return true;
  db_.Exec("ROLLBACK", nullptr);
  return false;
}

}  // namespace trl::sqlite
