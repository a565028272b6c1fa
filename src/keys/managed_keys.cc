#include "keys/managed_keys.h"

#include <algorithm>
#include <functional>

namespace trl {

// Changes one ManagedKeys that nobody else sees yet: the first change to a shard replaces the
// shared shard by a private copy, which later changes edit in place.
class ManagedKeys::Editor {
 public:
  explicit Editor(ManagedKeys& keys) : keys_(keys) {}

  void Erase(std::string_view name) {
    const size_t i = NameShardOf(name);
    const NameShard* shard = keys_.by_name_[i].get();
    auto it = shard ? shard->find(name) : NameShard::const_iterator{};
    if (!shard || it == shard->end()) return;
    // Held while its entries go: `name` may view the name inside it.
    const RecordPtr old = it->second;
    Names(i).erase(name);
    std::array<const Sha256*, 2> hashes_of;
    for (const Sha256* hash : HashesOf(*old, hashes_of)) {
      HashShard& hashes = Hashes(HashShardOf(*hash));
      if (auto entry = hashes.find(*hash); entry != hashes.end() && entry->second == old) {
        hashes.erase(entry);
      }
    }
    --keys_.size_;
  }

  void Put(RecordPtr record) {
    Erase(record->key.name);
    std::array<const Sha256*, 2> hashes_of;
    for (const Sha256* hash : HashesOf(*record, hashes_of)) {
      Hashes(HashShardOf(*hash)).insert_or_assign(*hash, record);
    }
    const std::string_view name = record->key.name;
    Names(NameShardOf(name)).emplace(name, std::move(record));
    ++keys_.size_;
  }

 private:
  // Its secret's hash, and the previous secret's while a rotation left one.
  static std::span<const Sha256* const> HashesOf(const KeyRecord& record,
                                                 std::array<const Sha256*, 2>& out) {
    out = {&record.key.key_sha256, &record.previous_sha256};
    return std::span(out).first(record.previous_until ? 2 : 1);
  }

  NameShard& Names(size_t i) { return Own(names_[i], keys_.by_name_[i]); }
  HashShard& Hashes(size_t i) { return Own(hashes_[i], keys_.by_hash_[i]); }

  template <typename Shard>
  static Shard& Own(std::shared_ptr<Shard>& mine, std::shared_ptr<const Shard>& published) {
    if (!mine) {
      mine = published ? std::make_shared<Shard>(*published) : std::make_shared<Shard>();
      published = mine;
    }
    return *mine;
  }

  ManagedKeys& keys_;
  std::array<std::shared_ptr<NameShard>, kShards> names_;
  std::array<std::shared_ptr<HashShard>, kShards> hashes_;
};

std::shared_ptr<const ManagedKeys> ManagedKeys::FromRecords(int64_t version,
                                                            std::vector<KeyRecord> records) {
  auto keys = std::make_shared<ManagedKeys>();
  keys->version_ = version;
  Editor editor(*keys);
  for (KeyRecord& record : records) {
    editor.Put(std::make_shared<const KeyRecord>(std::move(record)));
  }
  return keys;
}

std::shared_ptr<const ManagedKeys> ManagedKeys::WithChanges(
    int64_t version, std::vector<KeyRecord> changed, std::span<const std::string> removed) const {
  auto next = std::make_shared<ManagedKeys>(*this);
  next->version_ = version;
  Editor editor(*next);
  for (const std::string& name : removed) editor.Erase(name);
  for (KeyRecord& record : changed) {
    editor.Put(std::make_shared<const KeyRecord>(std::move(record)));
  }
  return next;
}

ManagedKeys::RecordPtr ManagedKeys::FindByHash(const Sha256& hash) const {
  const HashShard* shard = by_hash_[HashShardOf(hash)].get();
  if (!shard) return nullptr;
  auto it = shard->find(hash);
  return it == shard->end() ? nullptr : it->second;
}

ManagedKeys::RecordPtr ManagedKeys::FindByName(std::string_view name) const {
  const NameShard* shard = by_name_[NameShardOf(name)].get();
  if (!shard) return nullptr;
  auto it = shard->find(name);
  return it == shard->end() ? nullptr : it->second;
}

std::vector<ManagedKeys::RecordPtr> ManagedKeys::SortedByName() const {
  std::vector<RecordPtr> all;
  all.reserve(size_);
  for (const auto& shard : by_name_) {
    if (!shard) continue;
    for (const auto& entry : *shard) all.push_back(entry.second);
  }
  std::sort(all.begin(), all.end(),
            [](const RecordPtr& a, const RecordPtr& b) { return a->key.name < b->key.name; });
  return all;
}

// The shard comes from bits the shard's own map does not lean on: the top byte of the name's
// hash (the map takes it modulo a prime), byte 8 of a SHA-256 (Sha256Hash reads bytes 0-7).
size_t ManagedKeys::NameShardOf(std::string_view name) {
  return std::hash<std::string_view>{}(name) >> (sizeof(size_t) * 8 - 8);
}

size_t ManagedKeys::HashShardOf(const Sha256& hash) { return hash[8]; }

}  // namespace trl
