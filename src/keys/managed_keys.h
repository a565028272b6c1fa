// The keys made through the admin API as one instance holds them at one version of the
// KeyStore: found by the SHA-256 of a secret (the authenticator) or by name (the admin API, and
// identities named by a header). A ManagedKeys never changes once built: the next version is a
// new one made by WithChanges, which shares every shard the changes do not touch with this one,
// so applying a few changes costs what they touch, not what the whole set holds.
//
// Layout: the entries are spread over kShards shards by hash and, separately, by name; each
// shard is an immutable open-addressing map (one allocation, so a copy is one too) behind a
// shared_ptr. A change copies the one shard of each kind it lands in (about size/kShards
// entries) and the array of shard pointers; the records themselves are shared, never copied.
// performance/micro/keys_bench.cc measures a lookup and a change at 100,000 keys.
//
// Thread-safety: immutable once built; read it from any thread.
#pragma once

#include <array>
#include <boost/unordered/unordered_flat_map.hpp>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "keys/key_record.h"

namespace trl {

struct Sha256Hash {
  size_t operator()(const Sha256& h) const {
    size_t v;
    std::memcpy(&v, h.data(), sizeof v);
    return v;
  }
};

class ManagedKeys {
 public:
  using RecordPtr = std::shared_ptr<const KeyRecord>;
  static constexpr size_t kShards = 256;

  ManagedKeys() = default;  // empty, version -1 (never loaded)
  // Every key of `records` (the last of two of one name wins), at `version`.
  static std::shared_ptr<const ManagedKeys> FromRecords(int64_t version,
                                                        std::vector<KeyRecord> records);
  // This set at `version`: the keys named in `removed` taken out, then those of `changed` put in
  // (made, or replacing the key of that name).
  std::shared_ptr<const ManagedKeys> WithChanges(int64_t version, std::vector<KeyRecord> changed,
                                                 std::span<const std::string> removed) const;

  // The store's version this set was read at (-1: never loaded).
  int64_t Version() const { return version_; }
  size_t Size() const { return size_; }
  bool Empty() const { return size_ == 0; }
  // Null when there is none.
  RecordPtr FindByHash(const Sha256& hash) const;
  RecordPtr FindByName(std::string_view name) const;
  // Every key, sorted by name.
  std::vector<RecordPtr> SortedByName() const;
  // Calls `visit(const KeyRecord&)` for every key, in no order (no copy, no sort).
  template <typename Visit>
  void ForEach(Visit&& visit) const {
    for (const auto& shard : by_name_) {
      if (!shard) continue;
      for (const auto& entry : *shard) visit(*entry.second);
    }
  }

 private:
  // Names are views of the name inside the record they map to, which the entry keeps alive.
  using NameShard = boost::unordered_flat_map<std::string_view, RecordPtr>;
  using HashShard = boost::unordered_flat_map<Sha256, RecordPtr, Sha256Hash>;
  class Editor;

  static size_t NameShardOf(std::string_view name);
  static size_t HashShardOf(const Sha256& hash);

  int64_t version_ = -1;
  size_t size_ = 0;
  std::array<std::shared_ptr<const NameShard>, kShards> by_name_;  // null: empty
  std::array<std::shared_ptr<const HashShard>, kShards> by_hash_;
};

}  // namespace trl
