// Step "authenticate": who is calling. With identity.source api_key, the bearer token's SHA-256
// is looked up among the configured keys' hashes and compared in constant time; the plaintext is
// never stored. With header:<name>, a trusted upstream has authenticated the caller and names it.
// Built from one config snapshot; immutable, so thread-safe.
#pragma once

#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "config/config.h"
#include "http/server.h"

namespace trl {

struct Identity {
  std::string_view name;                   // the key's name (or the header's value)
  std::string_view tenant;                 // "" when none
  const std::vector<std::string>* models;  // allowed canonical models; empty = every model
  std::span<const LimitConfig> limits;     // the key's limits, or default_limits
  std::span<const LimitConfig> tenant_limits;
};

class Authenticator {
 public:
  explicit Authenticator(const Config& config);
  // nullopt: missing, unknown or revoked credentials (one answer for each, so the response
  // tells an attacker nothing). The views point into the config and the request.
  std::optional<Identity> Authenticate(const http::Request& request) const;

  static bool ModelAllowed(const Identity& identity, std::string_view model);

 private:
  struct HashKey {
    size_t operator()(const Sha256& h) const {
      size_t v;
      std::memcpy(&v, h.data(), sizeof v);
      return v;
    }
  };
  const Config& config_;
  std::unordered_map<Sha256, const ApiKeyConfig*, HashKey> by_hash_;
  std::unordered_map<std::string, const ApiKeyConfig*> by_name_;
  std::unordered_map<std::string, const TenantConfig*> tenants_;
  static const std::vector<std::string> kAllModels;

  Identity MakeIdentity(const ApiKeyConfig& key) const;
};

}  // namespace trl
