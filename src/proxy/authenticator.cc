#include "proxy/authenticator.h"

#include <algorithm>

#include "common/crypto.h"

namespace trl {
namespace {

bool IsIdentityName(std::string_view value) {
  constexpr size_t kMaxLength = 128;
  auto allowed = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("._-@:+/=").find(c) != std::string_view::npos;
  };
  return !value.empty() && value.size() <= kMaxLength &&
         std::all_of(value.begin(), value.end(), allowed);
}

}  // namespace

const std::vector<std::string> Authenticator::kAllModels;

Authenticator::Authenticator(const Config& config) : config_(config) {
  for (const auto& tenant : config.tenants) tenants_.emplace(tenant.name, &tenant);
  for (const auto& key : config.api_keys) {
    by_hash_.emplace(key.key_sha256, &key);
    by_name_.emplace(key.name, &key);
  }
}

Identity Authenticator::MakeIdentity(const ApiKeyConfig& key) const {
  Identity id{key.name,
              key.tenant,
              &key.models,
              key.limits_set ? std::span<const LimitConfig>(key.limits)
                             : std::span<const LimitConfig>(config_.default_limits),
              {},
              nullptr};
  id.expires_at = key.expires_at;
  id.key_queue = key.queue;
  if (auto it = tenants_.find(key.tenant); it != tenants_.end()) {
    id.tenant_limits = it->second->limits;
    id.tenant_queue = it->second->queue;
  }
  return id;
}

Identity Authenticator::ManagedIdentity(const std::shared_ptr<const KeyRecord>& record) const {
  Identity id = MakeIdentity(record->key);
  id.record = record;
  return id;
}

const ApiKeyConfig* Authenticator::ConfigKey(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

std::optional<Identity> Authenticator::Authenticate(const http::Request& request,
                                                    const ManagedKeys* managed) const {
  if (config_.identity.source == IdentityConfig::Source::kHeader) {
    auto it = request.find(config_.identity.header);
    if (it == request.end() || !IsIdentityName(it->value())) return std::nullopt;
    std::string_view name = it->value();
    if (auto key = by_name_.find(name); key != by_name_.end()) {
      return MakeIdentity(*key->second);
    }
    if (managed) {
      if (auto record = managed->FindByName(name)) return ManagedIdentity(record);
    }
    return Identity{name, {}, &kAllModels, config_.default_limits, {}, nullptr, true};
  }
  std::string_view value = http::FieldValue(request.base(), http::bhttp::field::authorization);
  constexpr std::string_view kBearer = "Bearer ";
  if (value.size() <= kBearer.size() ||
      !std::equal(kBearer.begin(), kBearer.end(), value.begin(),
                  [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
    return std::nullopt;
  }
  value.remove_prefix(kBearer.size());
  Sha256 digest = Sha256Of(value);
  // The map is keyed by the digest, which reveals nothing usable about the secret; the final
  // comparison is constant-time all the same.
  if (auto found = by_hash_.find(digest);
      found != by_hash_.end() && ConstantTimeEquals(found->second->key_sha256, digest)) {
    return MakeIdentity(*found->second);
  }
  auto record = managed ? managed->FindByHash(digest) : nullptr;
  if (!record) return std::nullopt;
  if (ConstantTimeEquals(record->key.key_sha256, digest)) return ManagedIdentity(record);
  // The secret a rotation replaced, valid until the end of its grace period.
  if (record->previous_until && ConstantTimeEquals(record->previous_sha256, digest)) {
    Identity id = ManagedIdentity(record);
    id.expires_at =
        id.expires_at ? std::min(id.expires_at, record->previous_until) : record->previous_until;
    return id;
  }
  return std::nullopt;
}

bool Authenticator::ModelAllowed(const Identity& identity, std::string_view model) {
  if (!identity.models || identity.models->empty()) return true;
  return std::find(identity.models->begin(), identity.models->end(), model) !=
         identity.models->end();
}

}  // namespace trl
