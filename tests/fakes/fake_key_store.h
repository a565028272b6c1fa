// A KeyStore in memory, for tests of what sits above the key store (the key directory, the
// admin API): every write bumps the version and is logged as the real stores do, and `failing`
// makes every call fail as a store that does not answer. Counts the calls made to it and the
// records its reads hand back. Not thread-safe: one test thread at a time.
#pragma once

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "keys/key_store.h"

namespace trl {

class FakeKeyStore final : public KeyStore {
 public:
  bool failing = false;
  int loads = 0;         // LoadAll calls
  int change_reads = 0;  // ChangesSince calls
  int writes = 0;        // Create, Replace and Remove calls
  int records_read = 0;  // records handed to the caller, by every read
  // While set, each ChangesSince waits once it has read, until the test cancels its timer in
  // `held`: how a test makes two syncs overlap in the order it wants.
  bool hold_reads = false;
  std::vector<std::shared_ptr<asio::steady_timer>> held;

  asio::awaitable<Loaded> LoadAll() override {
    ++loads;
    Loaded loaded;
    if (!Answers(loaded)) co_return loaded;
    loaded.version = version_;
    for (const auto& [name, entry] : records_) loaded.keys.push_back(entry.record);
    records_read += static_cast<int>(loaded.keys.size());
    co_return loaded;
  }
  asio::awaitable<Changes> ChangesSince(int64_t since) override {
    ++change_reads;
    Changes changes;
    if (!Answers(changes)) co_return changes;
    changes.version = version_;
    changes.complete = since == version_ || (since >= floor_ && since < version_);
    if (!changes.complete || since == version_) co_return changes;
    for (const auto& [name, entry] : records_) {
      if (entry.version > since) changes.changed.push_back(entry.record);
    }
    for (const auto& [name, version] : removed_) {
      if (version > since) changes.removed.push_back(name);
    }
    records_read += static_cast<int>(changes.changed.size());
    if (hold_reads) {
      held.push_back(std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor,
                                                          asio::steady_timer::time_point::max()));
      boost::system::error_code cancelled;
      auto timer = held.back();
      co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, cancelled));
    }
    co_return changes;
  }
  asio::awaitable<std::optional<int64_t>> Version() override {
    if (failing) co_return std::nullopt;
    co_return version_;
  }
  asio::awaitable<Written> Create(const KeyRecord& record) override {
    ++writes;
    if (failing) co_return Written{WriteStatus::kError};
    if (records_.contains(record.key.name)) co_return Written{WriteStatus::kExists};
    records_[record.key.name] = {record, ++version_};
    removed_.erase(record.key.name);
    co_return Written{WriteStatus::kOk, version_};
  }
  asio::awaitable<Written> Replace(const KeyRecord& record, const KeyRecord& over) override {
    ++writes;
    if (failing) co_return Written{WriteStatus::kError};
    auto it = records_.find(record.key.name);
    if (it == records_.end()) co_return Written{WriteStatus::kNotFound};
    if (it->second.record.revision != over.revision ||
        it->second.record.key.key_sha256 != over.key.key_sha256) {
      co_return Written{WriteStatus::kConflict};
    }
    it->second = {record, ++version_};
    co_return Written{WriteStatus::kOk, version_};
  }
  asio::awaitable<Written> Remove(std::string_view name) override {
    ++writes;
    if (failing) co_return Written{WriteStatus::kError};
    auto it = records_.find(name);
    if (it == records_.end()) co_return Written{WriteStatus::kNotFound};
    records_.erase(it);
    removed_[std::string(name)] = ++version_;
    co_return Written{WriteStatus::kOk, version_};
  }

  // Forgets every change logged so far, as a trimmed log has: a reader at an older version must
  // load everything.
  void TrimLog() {
    floor_ = version_;
    removed_.clear();
  }

  // Forgets every key and the version, as a Redis restarted without persistence does.
  void LoseEverything() {
    records_.clear();
    removed_.clear();
    version_ = floor_ = 0;
  }

  // The record stored under `name`, as another instance would load it.
  const KeyRecord* Find(std::string_view name) const {
    auto it = records_.find(name);
    return it == records_.end() ? nullptr : &it->second.record;
  }

 private:
  // A read's answer: ok, or (when failing) the error.
  template <typename Read>
  bool Answers(Read& read) const {
    read.ok = !failing;
    if (failing) read.error = "fake key store: failing";
    return read.ok;
  }

  struct Entry {
    KeyRecord record;
    int64_t version = 0;  // of its last change
  };
  int64_t version_ = 0;
  int64_t floor_ = 0;
  std::map<std::string, Entry, std::less<>> records_;
  std::map<std::string, int64_t, std::less<>> removed_;  // name -> the version that removed it
};

}  // namespace trl
