// The identities a trusted header names (identity.source header:<name>) that this process has
// let in, up to identity.max_identities. Each such identity gets budgets, usage rows and metric
// series of its own, so whoever can put a value in that header must not be able to grow them
// without end: once the table is full, a new name is refused and the names already in keep
// working. The table lives as long as the process (a reload keeps it; a lower bound applies to
// new names only).
//
// Thread-safety: thread-safe. A known name costs a shared lock and one hash lookup.
#pragma once

#include <cstddef>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_set>

namespace trl {

class IdentityTable {
 public:
  // True when `name` is in the table, or was added because it held fewer than `max` names.
  bool Admit(std::string_view name, size_t max);
  size_t Size() const;

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  mutable std::shared_mutex mutex_;
  std::unordered_set<std::string, Hash, std::equal_to<>> names_;
};

}  // namespace trl
