// Keys made through the admin API, for tests: `MadeKey("a")` is the key named "a" whose secret
// is "sk-a" (the record keeps only its SHA-256), every other field left as a new key has it.
#pragma once

#include <string>

#include "common/crypto.h"
#include "keys/key_record.h"

namespace trl::testing {

inline KeyRecord MadeKey(const std::string& name) {
  KeyRecord r;
  r.key.name = name;
  r.key.key_sha256 = Sha256Of("sk-" + name);
  return r;
}

}  // namespace trl::testing
