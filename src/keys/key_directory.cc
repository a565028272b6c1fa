#include "keys/key_directory.h"

namespace trl {

KeyDirectory::KeyDirectory(KeyStore& store, const Clock& clock)
    : store_(store),
      clock_(clock),
      current_(std::make_shared<const ManagedKeys>()),
      synced_at_(clock.Steady()) {}

bool KeyDirectory::Stale(Millis max_age) const {
  return clock_.Steady() - synced_at_.load() > max_age;
}

asio::awaitable<bool> KeyDirectory::Sync(bool force, std::string* error) {
  if (!force) {
    std::optional<int64_t> version = co_await store_.Version();
    if (!version) {
      if (error) *error = "the key store did not answer";
      co_return false;
    }
    if (*version == current_.load()->version) {
      synced_at_.store(clock_.Steady());
      co_return true;
    }
  }
  KeyStore::Loaded loaded = co_await store_.LoadAll();
  if (!loaded.ok) {
    if (error) *error = loaded.error;
    co_return false;
  }
  auto next = std::make_shared<ManagedKeys>();
  next->version = loaded.version;
  for (auto& record : loaded.keys) {
    auto shared = std::make_shared<const KeyRecord>(std::move(record));
    next->by_hash.emplace(shared->key.key_sha256, shared);
    next->by_name.emplace(shared->key.name, shared);
  }
  // Two syncs may race (scheduler and admin) and the older load may land last; the next
  // scheduled sync sees the version differ and loads again. (Versions are not compared: a
  // restored or flushed store may legitimately go back to a lower one.)
  current_.store(std::move(next));
  synced_at_.store(clock_.Steady());
  co_return true;
}

std::string NameClashes(std::span<const ApiKeyConfig> config_keys, const ManagedKeys& managed) {
  std::string clashes;
  for (const ApiKeyConfig& key : config_keys) {
    if (managed.by_name.contains(key.name)) {
      clashes += "api_keys: '" + key.name +
                 "' is the name of a key made through the admin API; rename one of them\n";
    }
  }
  return clashes;
}

}  // namespace trl
