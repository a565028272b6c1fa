// SQLite for the files the gateway keeps in data_dir (limits.db, usage.db, keys.db): a database
// opened the one way they all need, prepared statements and transactions, each released by its
// destructor. Errors come back as text naming the file ("usage.db: write: disk I/O error").
//
// Opening: the directory is created when missing; the file in WAL mode (readers never wait for
// the writer, and scripts/backup.sh copies a consistent snapshot while the gateway runs), and a
// lock held by another connection (a backup) is waited for up to 5 s rather than failed.
//
// Thread-safety: a Database and its statements are used by one thread at a time (their owner
// serialises); blocking: call them from a control or scheduler thread, never an I/O thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

struct sqlite3;
struct sqlite3_stmt;

namespace trl::sqlite {

class Database {
 public:
  // Opens (or creates) `dir`/`file`. nullopt, with *error set ("<path>: why"), when the
  // directory cannot be made or the file cannot be opened as a database in WAL mode.
  static std::optional<Database> Open(const std::string& dir, std::string_view file,
                                      std::string* error);
  Database(Database&& other) noexcept;
  Database& operator=(Database&& other) noexcept;
  ~Database();

  // Runs `sql` (any number of statements that return no rows). On failure sets *error (when
  // given) to "<file>: why".
  bool Exec(const char* sql, std::string* error);
  // "<file>: <what>: <SQLite's last error on this connection>".
  std::string Error(std::string_view what) const;
  // Rows changed by the last INSERT, UPDATE or DELETE.
  int64_t Changes() const;

 private:
  friend class Statement;
  Database(sqlite3* db, std::string_view file) : db_(db), file_(file) {}

  sqlite3* db_ = nullptr;
  std::string file_;
};

class Statement {
 public:
  enum class Lifetime { kOnce, kPersistent };  // kPersistent: kept for the database's life
  enum class Step { kRow, kDone, kError };

  Statement() = default;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // Before any other call. On failure sets *error (when given) to "<file>: prepare: why".
  bool Prepare(Database& db, const char* sql, std::string* error,
               Lifetime lifetime = Lifetime::kOnce);

  // Ready for the next use, every parameter unbound (NULL).
  void Reset();
  // Parameters count from 1. Text is not copied: it must stay valid until the next Reset.
  void Bind(int index, int64_t value);
  void BindText(int index, std::string_view text);

  Step Next();
  // Runs a statement that returns no rows to its end: true when it did.
  bool Run() { return Next() == Step::kDone; }
  // Columns of the current row count from 0; text stays valid until the next Next or Reset.
  int64_t Int(int column) const;
  std::string_view Text(int column) const;

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

// BEGIN (or `begin`, e.g. "BEGIN IMMEDIATE") now; ROLLBACK at destruction unless committed.
class Transaction {
 public:
  Transaction(Database& db, std::string* error, const char* begin = "BEGIN");
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  bool Began() const { return open_; }
  bool Commit(std::string* error);

 private:
  Database& db_;
  bool open_ = false;
};

}  // namespace trl::sqlite
