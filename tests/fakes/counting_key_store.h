// A KeyStore that passes every call to another (a real SQLite or Redis store) and counts the
// records its reads hand back: how tests see what a KeyDirectory's Sync costs, in records read,
// whatever the store. Not thread-safe: one test thread at a time.
#pragma once

#include "keys/key_store.h"

namespace trl {

class CountingKeyStore final : public KeyStore {
 public:
  explicit CountingKeyStore(KeyStore& inner) : inner_(inner) {}

  int loads = 0;         // LoadAll calls
  int records_read = 0;  // records handed back by every read

  asio::awaitable<Loaded> LoadAll() override {
    ++loads;
    Loaded loaded = co_await inner_.LoadAll();
    records_read += static_cast<int>(loaded.keys.size());
    co_return loaded;
  }
  asio::awaitable<Changes> ChangesSince(int64_t since) override {
    Changes changes = co_await inner_.ChangesSince(since);
    records_read += static_cast<int>(changes.changed.size());
    co_return changes;
  }
  asio::awaitable<std::optional<int64_t>> Version() override {
    std::optional<int64_t> version = co_await inner_.Version();
    co_return version;
  }
  asio::awaitable<Written> Create(const KeyRecord& record) override {
    Written written = co_await inner_.Create(record);
    co_return written;
  }
  asio::awaitable<Written> Replace(const KeyRecord& record, const KeyRecord& over) override {
    Written written = co_await inner_.Replace(record, over);
    co_return written;
  }
  asio::awaitable<Written> Remove(std::string_view name) override {
    Written written = co_await inner_.Remove(name);
    co_return written;
  }

 private:
  KeyStore& inner_;
};

}  // namespace trl
