// Where keys made through the admin API are kept: SQLite in data_dir (embedded store, one
// instance) or Redis (every instance shares them). Every write bumps a version number and
// records the name it changed in a change log, in the same atomic step, so an instance catches
// up with another instance's changes by reading only what changed after the version it holds
// (KeyDirectory polls it). The log is trimmed to its newest `log_size` changes (removals, on
// SQLite, where a live key's row carries the version of its last change); a reader older than
// the log loads every key instead.
//
// Thread-safety: thread-safe. The SQLite store blocks the calling thread on disk I/O (call it
// from the admin or scheduler thread, never an I/O thread); the Redis store suspends.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keys/key_record.h"

namespace trl {

namespace asio = boost::asio;
namespace redis {
class RedisClient;
}

class KeyStore {
 public:
  virtual ~KeyStore() = default;

  struct Loaded {
    bool ok = false;
    std::string error;  // when !ok; never holds a secret (only hashes are stored)
    int64_t version = 0;
    std::vector<KeyRecord> keys;  // records that do not parse are skipped (and logged)
  };
  // What changed after a version, read atomically.
  struct Changes {
    bool ok = false;
    std::string error;  // when !ok
    int64_t version = 0;
    // False when the log does not reach back to the version asked about (trimmed, written by a
    // release that kept none, or the store went back below it): `changed` and `removed` are
    // empty, and only LoadAll can tell the keys at `version`.
    bool complete = false;
    std::vector<KeyRecord> changed;    // made or replaced since
    std::vector<std::string> removed;  // removed since (or unreadable: skipped, and logged)
  };
  enum class WriteStatus { kOk, kExists, kNotFound, kConflict, kError };
  struct Written {
    WriteStatus status = WriteStatus::kError;
    int64_t version = 0;  // kOk: the version this write made (a resend answers the same)
  };

  // Every record and the version they belong to, read atomically.
  virtual asio::awaitable<Loaded> LoadAll() = 0;
  // Every change after `since` (a version LoadAll or ChangesSince answered), each name once,
  // with its state now. Complete and empty when `since` is the current version.
  virtual asio::awaitable<Changes> ChangesSince(int64_t since) = 0;
  // The current version; nullopt when the store failed.
  virtual asio::awaitable<std::optional<int64_t>> Version() = 0;
  // kExists when a key of that name is already stored.
  virtual asio::awaitable<Written> Create(const KeyRecord& record) = 0;
  // Replaces the record `over` (its revision and secret) by `record`, of the same name:
  // kConflict when the stored one is not `over` (changed, or removed and made again, meanwhile:
  // on this instance or another), kNotFound when there is none.
  virtual asio::awaitable<Written> Replace(const KeyRecord& record, const KeyRecord& over) = 0;
  // kNotFound when there is none.
  virtual asio::awaitable<Written> Remove(std::string_view name) = 0;
};

// How many changes the log keeps: a reader that falls further behind (its syncs failing for
// this many changes, 10 s at 1000 writes/s) loads every key once.
constexpr int64_t kKeyLogSize = 10'000;

// <data_dir>/keys.db (SQLite, WAL), created if missing (a keys.db of a release without the log
// gets it). Null and *error on failure.
std::unique_ptr<KeyStore> OpenSqliteKeyStore(const std::string& data_dir, std::string* error,
                                             int64_t log_size = kKeyLogSize);
// The hash "trl:keys:{keys}:records" (name -> record JSON), the counter
// "trl:keys:{keys}:version" and the log "trl:keys:{keys}:changes" and "trl:keys:{keys}:log"
// (key_scripts.h), one cluster slot. `client` must outlive the store.
std::unique_ptr<KeyStore> MakeRedisKeyStore(redis::RedisClient& client, Millis timeout,
                                            int64_t log_size = kKeyLogSize);

}  // namespace trl
