#include "keys/key_directory.h"

#include <spdlog/spdlog.h>

namespace trl {
namespace {

// Two syncs at once (scheduler, admin) each publish only over the snapshot they started from;
// the one that finds it replaced starts again from the newer one. Two writers settle in two
// rounds; the bound is a backstop.
constexpr int kMaxRounds = 8;

}  // namespace

KeyDirectory::KeyDirectory(KeyStore& store, const Clock& clock)
    : store_(store),
      clock_(clock),
      current_(std::make_shared<const ManagedKeys>()),
      synced_at_(clock.Steady()) {}

bool KeyDirectory::Stale(Millis max_age) const {
  return clock_.Steady() - synced_at_.load() > max_age;
}

asio::awaitable<bool> KeyDirectory::Sync(bool force, std::string* error) {
  for (int round = 0; round < kMaxRounds; ++round) {
    std::shared_ptr<const ManagedKeys> base = current_.load();
    std::shared_ptr<const ManagedKeys> next = co_await Next(base, force && round == 0, error);
    if (!next) co_return false;
    // Never an older set over a newer one: a sync that read before another published builds on
    // a snapshot that is no longer current, and is dropped here.
    if (next == base || current_.compare_exchange_strong(base, next)) break;
  }
  synced_at_.store(clock_.Steady());
  co_return true;
}

asio::awaitable<KeyStore::WriteStatus> KeyDirectory::Put(const KeyRecord& record,
                                                         const KeyRecord* over) {
  KeyStore::Written written;
  if (over) {
    written = co_await store_.Replace(record, *over);
  } else {
    written = co_await store_.Create(record);
  }
  std::vector<KeyRecord> changed{record};
  std::vector<std::string> removed;
  KeyStore::WriteStatus status = co_await Publish(written, std::move(changed), std::move(removed));
  co_return status;
}

asio::awaitable<KeyStore::WriteStatus> KeyDirectory::Remove(std::string_view name) {
  KeyStore::Written written = co_await store_.Remove(name);
  std::vector<KeyRecord> changed;
  std::vector<std::string> removed{std::string(name)};
  KeyStore::WriteStatus status = co_await Publish(written, std::move(changed), std::move(removed));
  co_return status;
}

asio::awaitable<KeyStore::WriteStatus> KeyDirectory::Publish(KeyStore::Written written,
                                                             std::vector<KeyRecord> changed,
                                                             std::vector<std::string> removed) {
  if (written.status != KeyStore::WriteStatus::kOk) co_return written.status;
  std::shared_ptr<const ManagedKeys> base = current_.load();
  if (base->Version() == written.version - 1) {
    auto next = base->WithChanges(written.version, std::move(changed), removed);
    if (current_.compare_exchange_strong(base, next)) {
      synced_at_.store(clock_.Steady());
      co_return written.status;
    }
  }
  // Another change came between (or a sync published meanwhile): read them all. A failed read
  // leaves the write to the next scheduled sync.
  co_await Sync(false, nullptr);
  co_return written.status;
}

asio::awaitable<std::shared_ptr<const ManagedKeys>> KeyDirectory::Next(
    const std::shared_ptr<const ManagedKeys>& base, bool load_all, std::string* error) {
  if (!load_all && base->Version() >= 0) {
    KeyStore::Changes changes = co_await store_.ChangesSince(base->Version());
    if (!changes.ok) {
      if (error) *error = changes.error;
      co_return nullptr;
    }
    if (changes.version == base->Version()) co_return base;
    if (changes.complete) {
      co_return base->WithChanges(changes.version, std::move(changes.changed), changes.removed);
    }
    if (changes.version > base->Version()) {
      spdlog::info("keys: the change log does not reach back to version {}; loading every key",
                   base->Version());
    }
  }
  std::shared_ptr<const ManagedKeys> loaded = co_await LoadAll(error);
  if (loaded && base->Version() > loaded->Version()) ReportWentBack(*base, *loaded);
  co_return loaded;
}

void KeyDirectory::ReportWentBack(const ManagedKeys& before, const ManagedKeys& now) {
  size_t gone = 0;
  before.ForEach([&](const KeyRecord& record) { gone += now.FindByName(record.key.name) ? 0 : 1; });
  auto warning = std::make_shared<const std::string>(fmt::format(
      "keys: the key store went back from version {} to {} (a Redis restarted without "
      "persistence, flushed, or restored from an older backup): {} keys made through the admin "
      "API are gone from it; restore them from a backup or make them again",
      before.Version(), now.Version(), gone));
  spdlog::error("{}", *warning);
  lost_.store(std::move(warning));
}

std::string KeyDirectory::LostKeysWarning() const {
  std::shared_ptr<const std::string> lost = lost_.load();
  return lost ? *lost : std::string();
}

asio::awaitable<std::shared_ptr<const ManagedKeys>> KeyDirectory::LoadAll(std::string* error) {
  const auto started = clock_.Steady();
  KeyStore::Loaded loaded = co_await store_.LoadAll();
  if (!loaded.ok) {
    if (error) *error = loaded.error;
    co_return nullptr;
  }
  const size_t count = loaded.keys.size();
  auto keys = ManagedKeys::FromRecords(loaded.version, std::move(loaded.keys));
  spdlog::info("keys: loaded {} keys made through the admin API (version {}) in {} ms", count,
               loaded.version,
               std::chrono::duration_cast<Millis>(clock_.Steady() - started).count());
  co_return keys;
}

std::string NameClashes(std::span<const ApiKeyConfig> config_keys, const ManagedKeys& managed) {
  std::string clashes;
  for (const ApiKeyConfig& key : config_keys) {
    if (managed.FindByName(key.name)) {
      clashes += "api_keys: '" + key.name +
                 "' is the name of a key made through the admin API; rename one of them\n";
    }
  }
  return clashes;
}

}  // namespace trl
