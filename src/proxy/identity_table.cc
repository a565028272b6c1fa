#include "proxy/identity_table.h"

#include <mutex>

namespace trl {

bool IdentityTable::Admit(std::string_view name, size_t max) {
  {
    std::shared_lock lock(mutex_);
    if (names_.contains(name)) return true;
  }
  std::unique_lock lock(mutex_);
  if (names_.contains(name)) return true;
  if (names_.size() >= max) return false;
  names_.emplace(name);
  return true;
}

size_t IdentityTable::Size() const {
  std::shared_lock lock(mutex_);
  return names_.size();
}

}  // namespace trl
