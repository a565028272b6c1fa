#include "admin/admin_key_fields.h"

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "common/rfc3339.h"
#include "proxy/errors.h"

namespace trl {
namespace {

constexpr std::string_view kNameRule =
    "names are 1-64 characters of A-Z a-z 0-9 _ - . and do not start with '.'.";

boost::json::value TimeOrNull(int64_t unix_seconds) {
  if (unix_seconds <= 0) return nullptr;
  return boost::json::string(FormatRfc3339(unix_seconds));
}

std::optional<http::Response> ApplyTenant(const boost::json::value& v, const Config& config,
                                          ApiKeyConfig& key) {
  if (v.is_null()) {
    key.tenant.clear();
    return std::nullopt;
  }
  const bool known =
      v.is_string() && std::any_of(config.tenants.begin(), config.tenants.end(),
                                   [&](const TenantConfig& t) { return t.name == v.as_string(); });
  if (!known) return BadRequest("tenant must name a tenant of the config file.", "tenant");
  key.tenant = std::string(v.as_string());
  return std::nullopt;
}

std::optional<http::Response> ApplyModels(const boost::json::value& v, const ModelRegistry& models,
                                          ApiKeyConfig& key) {
  key.models.clear();
  if (v.is_null()) return std::nullopt;
  if (!v.is_array() || v.as_array().empty()) {
    return BadRequest(
        "models must be a non-empty list of model names (null or absent: every model).", "models");
  }
  for (const auto& m : v.as_array()) {
    const Model* model = m.is_string() ? models.Find(m.as_string()) : nullptr;
    if (!model) {
      return BadRequest(
          "Unknown model " + boost::json::serialize(m) + ". GET /admin/v1/models lists them.",
          "models");
    }
    if (std::find(key.models.begin(), key.models.end(), model->config->name) == key.models.end()) {
      key.models.push_back(model->config->name);
    }
  }
  return std::nullopt;
}

std::optional<http::Response> ApplyLimits(const boost::json::value& v, const Config& config,
                                          ApiKeyConfig& key) {
  key.limits.clear();
  key.limits_set = !v.is_null();
  if (v.is_null()) return std::nullopt;
  if (!v.is_array()) {
    return BadRequest("limits must be a list, e.g. [{\"tokens\": 100000, \"per\": \"1m\"}].",
                      "limits");
  }
  LimitsParse parsed = ParseLimitsJson(v, "limits", &config);
  if (!parsed.errors.empty()) {
    std::string message = "Invalid limits: ";
    for (size_t i = 0; i < parsed.errors.size(); ++i) {
      if (i) message += "; ";
      message += parsed.errors[i];
    }
    return BadRequest(message, "limits");
  }
  key.limits = std::move(parsed.limits);
  return std::nullopt;
}

// `queue`: {max_wait, max_queued} as in the config; null takes the key's queue away.
std::optional<http::Response> ApplyQueue(const boost::json::value& v, ApiKeyConfig& key) {
  key.queue = {};
  if (v.is_null()) return std::nullopt;
  QueueParse parsed = ParseQueueJson(v, "queue");
  if (!parsed.errors.empty()) {
    std::string message = "Invalid queue: ";
    for (size_t i = 0; i < parsed.errors.size(); ++i) {
      if (i) message += "; ";
      message += parsed.errors[i];
    }
    return BadRequest(message + ". Write {\"max_wait\": \"10s\", \"max_queued\": 100}.", "queue");
  }
  key.queue = parsed.queue;
  return std::nullopt;
}

std::optional<http::Response> ApplyExpiry(const boost::json::value& v, ApiKeyConfig& key) {
  key.expires_at = 0;
  if (v.is_null()) return std::nullopt;
  std::optional<int64_t> at = v.is_string() ? ParseRfc3339(v.as_string()) : std::nullopt;
  if (!at || *at <= 0) {
    return BadRequest(
        "expires_at must be an RFC 3339 time after 1970, e.g. \"2027-01-31T00:00:00Z\" (null: "
        "never).",
        "expires_at");
  }
  key.expires_at = *at;
  return std::nullopt;
}

}  // namespace

http::Response BadRequest(std::string_view message, std::string_view param) {
  return ErrorResponse(400, "invalid_request_error", "invalid_request", message, param);
}

http::Response InvalidName(std::string_view why) {
  return BadRequest(std::string(why) + ": " + std::string(kNameRule), "name");
}

http::Response KeyNotFound(std::string_view name) {
  return ErrorResponse(404, "invalid_request_error", "key_not_found",
                       "No key named '" + std::string(name) + "'. GET /admin/v1/keys lists them.");
}

http::Response ManagedByConfig(std::string_view name) {
  return ErrorResponse(409, "invalid_request_error", "key_managed_by_config",
                       "The key '" + std::string(name) +
                           "' comes from the config file; change it there and reload.");
}

std::variant<boost::json::object, http::Response> BodyObject(const http::Request& request,
                                                             bool empty_is_object) {
  if (empty_is_object && request.body().empty()) return boost::json::object{};
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(request.body(), ec);
  if (ec || !doc.is_object()) return BadRequest("The body must be a JSON object.", "");
  return std::move(doc.as_object());
}

std::optional<http::Response> UnknownField(const boost::json::object& body,
                                           std::initializer_list<std::string_view> allowed,
                                           std::string_view what) {
  for (const auto& field : body) {
    if (std::find(allowed.begin(), allowed.end(), field.key()) == allowed.end()) {
      return BadRequest("Unknown field '" + std::string(field.key()) + "'. " + std::string(what),
                        field.key());
    }
  }
  return std::nullopt;
}

boost::json::object KeyView(const Config& config, const ApiKeyConfig& key, const KeyRecord* record,
                            int64_t now) {
  boost::json::object o;
  o["name"] = key.name;
  o["source"] = record ? "api" : "config";
  if (key.tenant.empty()) {
    o["tenant"] = nullptr;
  } else {
    o["tenant"] = key.tenant;
  }
  if (key.models.empty()) {
    o["models"] = nullptr;  // every model
  } else {
    boost::json::array models;
    for (const auto& m : key.models) models.push_back(boost::json::string(m));
    o["models"] = std::move(models);
  }
  o["limits"] = LimitsToJson(key.limits_set ? std::span<const LimitConfig>(key.limits)
                                            : std::span<const LimitConfig>(config.default_limits));
  o["default_limits"] = !key.limits_set;
  o["queue"] = QueueToJson(key.queue);
  o["expires_at"] = TimeOrNull(key.expires_at);
  o["expired"] = key.expires_at > 0 && now >= key.expires_at;
  if (record) {
    o["created"] = TimeOrNull(record->created);
    o["updated"] = TimeOrNull(record->updated);
    // The secret a rotation replaced, while its grace period runs.
    o["previous_key_expires_at"] =
        TimeOrNull(record->previous_until > now ? record->previous_until : 0);
  }
  return o;
}

std::optional<http::Response> ApplyKeyFields(const boost::json::object& body,
                                             const GatewaySnapshot& snap, ApiKeyConfig& key) {
  const Config& config = *snap.config;
  std::optional<http::Response> error;
  if (const auto* v = body.if_contains("tenant")) error = ApplyTenant(*v, config, key);
  if (const auto* v = body.if_contains("models"); v && !error) {
    error = ApplyModels(*v, snap.models, key);
  }
  if (const auto* v = body.if_contains("limits"); v && !error) error = ApplyLimits(*v, config, key);
  if (const auto* v = body.if_contains("queue"); v && !error) error = ApplyQueue(*v, key);
  if (const auto* v = body.if_contains("expires_at"); v && !error) error = ApplyExpiry(*v, key);
  return error;
}

}  // namespace trl
