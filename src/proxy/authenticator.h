// Step "authenticate": who is calling. With identity.source api_key, the bearer token's SHA-256
// is looked up among the hashes of the config's keys, then of the keys made through the admin
// API (ManagedKeys), and compared in constant time; the plaintext is never stored. With
// header:<name>, a trusted upstream has authenticated the caller and names it: 1 to 128
// characters of A-Z a-z 0-9 . _ - @ : + / = (the name becomes a metric label and a usage row's
// key; other values are refused).
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
#include "keys/key_directory.h"

namespace trl {

struct Identity {
  std::string_view name;                   // the key's name (or the header's value)
  std::string_view tenant;                 // "" when none
  const std::vector<std::string>* models;  // allowed canonical models; empty = every model
  std::span<const LimitConfig> limits;     // the key's limits, or default_limits
  std::span<const LimitConfig> tenant_limits;
  // An API-made key: keeps its record (which the views above point into) alive for the request,
  // however the directory changes meanwhile. Null for config keys.
  std::shared_ptr<const KeyRecord> record;
  // identity.source header: a name that is no key (IdentityTable bounds how many there are).
  bool named_by_header = false;
  // Unix seconds from which these credentials are refused (the key's expiry, or the end of a
  // rotated-away secret's grace period); 0: never.
  int64_t expires_at = 0;
  QueueConfig key_queue{}, tenant_queue{};  // waiting for budget (limits/wait_queue.h)
};

struct TransparentHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

class Authenticator {
 public:
  explicit Authenticator(const Config& config);
  // nullopt: missing, unknown or revoked credentials (one answer for each, so the response
  // tells an attacker nothing). Expiry is the caller's to check (Identity::expires_at). The views
  // point into the config, `managed` and the request. `managed` may be null (no API-made keys).
  std::optional<Identity> Authenticate(const http::Request& request,
                                       const ManagedKeys* managed = nullptr) const;
  // The config's key of that name, or null.
  const ApiKeyConfig* ConfigKey(std::string_view name) const;
  // The identity a key has (limits: its own or default_limits; its tenant's limits).
  Identity MakeIdentity(const ApiKeyConfig& key) const;

  static bool ModelAllowed(const Identity& identity, std::string_view model);

 private:
  const Config& config_;
  std::unordered_map<Sha256, const ApiKeyConfig*, Sha256Hash> by_hash_;
  std::unordered_map<std::string, const ApiKeyConfig*, TransparentHash, std::equal_to<>> by_name_;
  std::unordered_map<std::string, const TenantConfig*> tenants_;
  static const std::vector<std::string> kAllModels;

  Identity ManagedIdentity(const std::shared_ptr<const KeyRecord>& record) const;
};

}  // namespace trl
