// A KeyStore in memory, for tests of what sits above the key store (the key directory, the
// admin API): every write bumps the version as the real stores do, and `failing` makes every
// call fail as a store that does not answer. Counts the calls made to it. Not thread-safe: one
// test thread at a time.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "keys/key_store.h"

namespace trl {

class FakeKeyStore final : public KeyStore {
 public:
  bool failing = false;
  int loads = 0;   // LoadAll calls
  int writes = 0;  // Create, Replace and Remove calls

  asio::awaitable<Loaded> LoadAll() override {
    ++loads;
    Loaded loaded;
    if (failing) {
      loaded.error = "fake key store: failing";
      co_return loaded;
    }
    loaded.ok = true;
    loaded.version = version_;
    for (const auto& [name, record] : records_) loaded.keys.push_back(record);
    co_return loaded;
  }
  asio::awaitable<std::optional<int64_t>> Version() override {
    if (failing) co_return std::nullopt;
    co_return version_;
  }
  asio::awaitable<WriteStatus> Create(const KeyRecord& record) override {
    ++writes;
    if (failing) co_return WriteStatus::kError;
    if (records_.contains(record.key.name)) co_return WriteStatus::kExists;
    records_[record.key.name] = record;
    ++version_;
    co_return WriteStatus::kOk;
  }
  asio::awaitable<WriteStatus> Replace(const KeyRecord& record) override {
    ++writes;
    if (failing) co_return WriteStatus::kError;
    auto it = records_.find(record.key.name);
    if (it == records_.end()) co_return WriteStatus::kNotFound;
    it->second = record;
    ++version_;
    co_return WriteStatus::kOk;
  }
  asio::awaitable<WriteStatus> Remove(std::string_view name) override {
    ++writes;
    if (failing) co_return WriteStatus::kError;
    auto it = records_.find(name);
    if (it == records_.end()) co_return WriteStatus::kNotFound;
    records_.erase(it);
    ++version_;
    co_return WriteStatus::kOk;
  }

  // The record stored under `name`, as another instance would load it.
  const KeyRecord* Find(std::string_view name) const {
    auto it = records_.find(name);
    return it == records_.end() ? nullptr : &it->second;
  }

 private:
  int64_t version_ = 0;
  std::map<std::string, KeyRecord, std::less<>> records_;
};

}  // namespace trl
