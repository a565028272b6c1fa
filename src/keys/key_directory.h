// The keys made through the admin API as this instance sees them: an immutable snapshot
// (ManagedKeys) that the authenticator reads without a lock, replaced whole when the KeyStore's
// version changes. Sync runs on the scheduler every 250 ms (Redis: another instance's revoke
// takes effect here within that) and right after every admin write on this instance. When the
// store stops answering, the snapshot stays; Stale says when it is too old to trust.
//
// Thread-safety: Current() from any thread (an atomic load); Sync from the scheduler and the
// admin thread.
#pragma once

#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>

#include "common/clock.h"
#include "keys/key_store.h"

namespace trl {

struct Sha256Hash {
  size_t operator()(const Sha256& h) const {
    size_t v;
    std::memcpy(&v, h.data(), sizeof v);
    return v;
  }
};

struct ManagedKeys {
  int64_t version = -1;  // the store's version this snapshot was loaded at (-1: never loaded)
  std::unordered_map<Sha256, std::shared_ptr<const KeyRecord>, Sha256Hash> by_hash;
  std::map<std::string, std::shared_ptr<const KeyRecord>, std::less<>> by_name;
};

class KeyDirectory {
 public:
  explicit KeyDirectory(KeyStore& store, const Clock& clock = SystemClock::Instance());

  std::shared_ptr<const ManagedKeys> Current() const { return current_.load(); }
  // True when no Sync has succeeded for longer than `max_age` (counted from construction
  // before the first): the snapshot may hold a key revoked since.
  bool Stale(Millis max_age) const;
  KeyStore& Store() { return store_; }

  // Reloads every key when the store's version differs from the snapshot's (always with
  // `force`). False and *error when the store failed (the snapshot stays as it was).
  asio::awaitable<bool> Sync(bool force, std::string* error);

 private:
  KeyStore& store_;
  const Clock& clock_;
  std::atomic<std::shared_ptr<const ManagedKeys>> current_;
  std::atomic<std::chrono::steady_clock::time_point> synced_at_;  // the last successful Sync
};

// The keys of a config (`config_keys`) named like a key made through the admin API: such a pair
// would share budgets and usage rows (the admin API refuses to make one; a reload must not make
// one either). One line per clash, naming the key and saying what to do; empty when none.
std::string NameClashes(std::span<const ApiKeyConfig> config_keys, const ManagedKeys& managed);

}  // namespace trl
