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
  ApiKeyConfig key;     // name, key_sha256, tenant, models (canonical), limits / limits_set
  int64_t created = 0;  // Unix seconds
  int64_t updated = 0;  // Unix seconds: the last change of its limits
};

// {"name", "sha256", "tenant", "models", "limits" (absent: default_limits), "created",
// "updated"}.
std::string SerializeKeyRecord(const KeyRecord& record);
// nullopt when the text is not a record SerializeKeyRecord wrote (a corrupt or foreign entry).
std::optional<KeyRecord> ParseKeyRecord(std::string_view json);

// Limits in the config's form, for records and admin responses.
boost::json::array LimitsToJson(std::span<const LimitConfig> limits);
boost::json::object LimitToJson(const LimitConfig& limit);

}  // namespace trl
