// A key made through the admin API, as every instance sees it: the same fields as a key in the
// config file (only the secret's SHA-256, never the secret), plus when it was made. Kept in the
// store as JSON; limits are written in the config's form ({"tokens": 1000, "per": "1m"}).
#pragma once

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "config/config.h"

namespace trl {

struct KeyRecord {
  ApiKeyConfig key;     // name, key_sha256, tenant, models (canonical), limits / limits_set, expiry
  int64_t created = 0;  // Unix seconds
  int64_t updated = 0;  // Unix seconds: its last change
  // How many times it was changed since it was made: a change is written only over the
  // revision it was made from (KeyStore::Replace), so that no change undoes another.
  int64_t revision = 0;
  // After a rotation with a grace period: the secret it replaced stays valid until
  // `previous_until` (Unix seconds; 0: no previous secret).
  Sha256 previous_sha256{};
  int64_t previous_until = 0;
};

// {"name", "sha256", "tenant", "models", "limits" (absent: default_limits), "created",
// "updated"}, and when set "expires_at", "rev", "previous_sha256" and "previous_until".
std::string SerializeKeyRecord(const KeyRecord& record);
// nullopt when the text is not a record SerializeKeyRecord wrote (a corrupt or foreign entry).
std::optional<KeyRecord> ParseKeyRecord(std::string_view json);

// Limits in the config's form, for records and admin responses.
boost::json::array LimitsToJson(std::span<const LimitConfig> limits);
// {"max_wait": "10s", "max_queued": 100}; null for no queue.
boost::json::value QueueToJson(const QueueConfig& queue);
boost::json::object LimitToJson(const LimitConfig& limit);

}  // namespace trl
