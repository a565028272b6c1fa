// Where keys made through the admin API are kept: SQLite in data_dir (embedded store, one
// instance) or Redis (every instance shares them). Every write bumps a version number in the
// same atomic step, so an instance notices another instance's change by reading the version
// (KeyDirectory polls it) and reloads the whole set only then.
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
  enum class WriteStatus { kOk, kExists, kNotFound, kError };

  // Every record and the version they belong to, read atomically.
  virtual asio::awaitable<Loaded> LoadAll() = 0;
  // The current version; nullopt when the store failed.
  virtual asio::awaitable<std::optional<int64_t>> Version() = 0;
  // kExists when a key of that name is already stored.
  virtual asio::awaitable<WriteStatus> Create(const KeyRecord& record) = 0;
  // Replaces the record of that name; kNotFound when there is none.
  virtual asio::awaitable<WriteStatus> Replace(const KeyRecord& record) = 0;
  // kNotFound when there is none.
  virtual asio::awaitable<WriteStatus> Remove(std::string_view name) = 0;
};

// <data_dir>/keys.db (SQLite, WAL), created if missing. Null and *error on failure.
std::unique_ptr<KeyStore> OpenSqliteKeyStore(const std::string& data_dir, std::string* error);
// The hash "trl:keys:{keys}:records" (name -> record JSON) and the counter
// "trl:keys:{keys}:version", one cluster slot. `client` must outlive the store.
std::unique_ptr<KeyStore> MakeRedisKeyStore(redis::RedisClient& client, Millis timeout);

}  // namespace trl
