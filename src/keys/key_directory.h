// The keys made through the admin API as this instance sees them: an immutable snapshot
// (ManagedKeys) that the authenticator reads without a lock, replaced by the next one when the
// KeyStore's version changes. Sync runs on the scheduler every 250 ms (Redis: another instance's
// revoke takes effect here within that) and right after every admin write on this instance.
//
// A Sync reads only what changed since the snapshot's version (the store's change log) and
// builds the next snapshot from the current one, sharing all it did not touch: its cost follows
// the number of changes, not the number of keys. It loads every key only the first time, when
// forced, and when the log no longer reaches back to the snapshot (trimmed, or the store went
// back to a lower version). A write made through the directory publishes itself. When the store
// stops answering, the snapshot stays; Stale says when
// it is too old to trust.
//
// Thread-safety: Current() from any thread (an atomic load); Sync from the scheduler and the
// admin thread, also both at once.
#pragma once

#include <atomic>
#include <memory>
#include <span>
#include <string>

#include "common/clock.h"
#include "keys/key_store.h"
#include "keys/managed_keys.h"

namespace trl {

class KeyDirectory {
 public:
  explicit KeyDirectory(KeyStore& store, const Clock& clock = SystemClock::Instance());

  std::shared_ptr<const ManagedKeys> Current() const { return current_.load(); }
  // True when no Sync has succeeded for longer than `max_age` (counted from construction
  // before the first): the snapshot may hold a key revoked since.
  bool Stale(Millis max_age) const;

  // Empty until a Sync finds the store behind this instance's snapshot (its data lost: a Redis
  // restarted without persistence or flushed, an older backup restored); then what was lost,
  // for /readyz, until the process ends. The same line is logged as an error.
  std::string LostKeysWarning() const;

  // Writes to the store, then publishes the write: when it is the only change since the
  // snapshot (the store answered the version after the snapshot's), the snapshot with it, read
  // from nowhere; else by a Sync. The store's answer (kOk, kExists, kNotFound, kError).
  asio::awaitable<KeyStore::WriteStatus> Create(const KeyRecord& record) {
    return Put(record, nullptr);
  }
  asio::awaitable<KeyStore::WriteStatus> Replace(const KeyRecord& record, const KeyRecord& over) {
    return Put(record, &over);
  }
  asio::awaitable<KeyStore::WriteStatus> Remove(std::string_view name);

  // Brings the snapshot up to the store's version: applies the changes since the snapshot's
  // version, or loads every key (always with `force`). False and *error when the store failed
  // (the snapshot stays as it was).
  asio::awaitable<bool> Sync(bool force, std::string* error);

 private:
  // The snapshot that follows `base` (`base` itself when nothing changed); null when the store
  // failed.
  asio::awaitable<std::shared_ptr<const ManagedKeys>> Next(
      const std::shared_ptr<const ManagedKeys>& base, bool load_all, std::string* error);
  asio::awaitable<std::shared_ptr<const ManagedKeys>> LoadAll(std::string* error);
  // Logs and keeps LostKeysWarning: the store's `now` is behind this instance's `before`.
  void ReportWentBack(const ManagedKeys& before, const ManagedKeys& now);
  // Creates `record`, or (with `over`) replaces `over` by it.
  asio::awaitable<KeyStore::WriteStatus> Put(const KeyRecord& record, const KeyRecord* over);
  // After a write of this instance: `changed` or `removed` (one of them) at `written.version`.
  asio::awaitable<KeyStore::WriteStatus> Publish(KeyStore::Written written,
                                                 std::vector<KeyRecord> changed,
                                                 std::vector<std::string> removed);

  KeyStore& store_;
  const Clock& clock_;
  std::atomic<std::shared_ptr<const ManagedKeys>> current_;
  std::atomic<std::chrono::steady_clock::time_point> synced_at_;  // the last successful Sync
  std::atomic<std::shared_ptr<const std::string>> lost_;          // LostKeysWarning; null: none
};

// The keys of a config (`config_keys`) named like a key made through the admin API: such a pair
// would share budgets and usage rows (the admin API refuses to make one; a reload must not make
// one either). One line per clash, naming the key and saying what to do; empty when none.
std::string NameClashes(std::span<const ApiKeyConfig> config_keys, const ManagedKeys& managed);

}  // namespace trl
