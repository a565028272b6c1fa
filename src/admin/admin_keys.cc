// /admin/v1/keys: keys made through the API (kept in the KeyStore, seen by every instance
// through its KeyDirectory) side by side with the config's keys (read-only here: the config file
// is their source of truth; their budgets can still be read and reset).
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "admin/admin_api.h"
#include "admin/admin_views.h"
#include "common/crypto.h"
#include "keys/key_record.h"
#include "proxy/errors.h"

namespace trl {
namespace {

namespace bhttp = http::bhttp;

http::Response BadRequest(std::string_view message, std::string_view param) {
  return ErrorResponse(400, "invalid_request_error", "invalid_request", message, param);
}

constexpr std::string_view kNameRule =
    "names are 1-64 characters of A-Z a-z 0-9 _ - . and do not start with '.'.";

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

std::string Rfc3339OrEmpty(int64_t unix_seconds) {
  return unix_seconds > 0 ? FormatRfc3339(unix_seconds) : "";
}

// What the API shows of a key: never its secret, nor its hash.
boost::json::object KeyView(const Config& config, const ApiKeyConfig& key,
                            const KeyRecord* record) {
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
  if (record) {
    o["created"] = Rfc3339OrEmpty(record->created);
    o["updated"] = Rfc3339OrEmpty(record->updated);
  }
  return o;
}

// The body of a request as a JSON object, or the 400 to send.
std::variant<boost::json::object, http::Response> BodyObject(const http::Request& request) {
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(request.body(), ec);
  if (ec || !doc.is_object()) {
    return BadRequest("The body must be a JSON object.", "");
  }
  return std::move(doc.as_object());
}

// The limits of a request body, validated as in the config file, or the 400 to send.
std::variant<std::vector<LimitConfig>, http::Response> ParseLimits(const boost::json::value& v,
                                                                   const Config& config) {
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
  return std::move(parsed.limits);
}

// A key of the config or of the API, with its limits and its tenant's; its views stay valid
// while `snap` and `managed` live (a ManagedKeys keeps its records while it lives).
std::optional<Identity> FindKey(const GatewaySnapshot& snap, const ManagedKeys& managed,
                                std::string_view name) {
  if (const ApiKeyConfig* key = snap.auth.ConfigKey(name)) return snap.auth.MakeIdentity(*key);
  if (auto record = managed.FindByName(name)) return snap.auth.MakeIdentity(record->key);
  return std::nullopt;
}

}  // namespace

asio::awaitable<http::Response> AdminApi::HandleKeys(http::Request& request,
                                                     std::string_view path) {
  const auto method = request.method();
  if (path == "/admin/v1/keys") {
    if (method == bhttp::verb::get) co_return ListKeys();
    if (method == bhttp::verb::post) {
      http::Response res = co_await CreateKey(request);
      co_return res;
    }
    co_return ErrorResponse(405, "invalid_request_error", "method_not_allowed",
                            "Use GET or POST on /admin/v1/keys.");
  }
  // /admin/v1/keys/{name}[/{action}]; the name is checked before anything else: no other text
  // reaches the store.
  std::string_view rest = path.substr(std::string_view("/admin/v1/keys/").size());
  const std::string_view name = rest.substr(0, rest.find('/'));
  const std::string_view action = rest.substr(name.size());
  if (!IsValidKeyName(name)) co_return InvalidName("Invalid key name");
  if (!action.empty() && action != "/limits" && action != "/reset") {
    co_return ErrorResponse(404, "invalid_request_error", "not_found",
                            "Unknown admin route " + std::string(request.method_string()) + " " +
                                std::string(path) + ".");
  }
  if (action.empty()) {
    if (method == bhttp::verb::get) co_return ShowKey(name);
    if (method == bhttp::verb::delete_) {
      http::Response res = co_await RevokeKey(name);
      co_return res;
    }
  } else if (action == "/limits") {
    if (method == bhttp::verb::get) {
      http::Response res = co_await KeyLimits(name);
      co_return res;
    }
    if (method == bhttp::verb::put) {
      http::Response res = co_await ReplaceLimits(request, name);
      co_return res;
    }
  } else if (method == bhttp::verb::post) {
    {
      http::Response res = co_await ResetKey(name);
      co_return res;
    }
  }
  co_return ErrorResponse(405, "invalid_request_error", "method_not_allowed",
                          "Method " + std::string(request.method_string()) + " is not allowed on " +
                              std::string(path) + ".");
}

http::Response AdminApi::ListKeys() {
  auto snap = hooks_.snapshot();
  auto managed = hooks_.keys->Current();
  std::map<std::string, boost::json::object> by_name;
  for (const auto& record : managed->SortedByName()) {
    by_name[record->key.name] = KeyView(*snap->config, record->key, record.get());
  }
  // A config key wins over an API key of the same name (the config is loaded last).
  for (const auto& key : snap->config->api_keys) {
    by_name[key.name] = KeyView(*snap->config, key, nullptr);
  }
  boost::json::array data;
  for (auto& [name, view] : by_name) data.push_back(std::move(view));
  boost::json::object root;
  root["data"] = std::move(data);
  return JsonResponse(200, root);
}

http::Response AdminApi::ShowKey(std::string_view name) {
  auto snap = hooks_.snapshot();
  if (const ApiKeyConfig* key = snap->auth.ConfigKey(name)) {
    return JsonResponse(200, KeyView(*snap->config, *key, nullptr));
  }
  auto managed = hooks_.keys->Current();
  auto record = managed->FindByName(name);
  if (!record) return KeyNotFound(name);
  return JsonResponse(200, KeyView(*snap->config, record->key, record.get()));
}

asio::awaitable<http::Response> AdminApi::CreateKey(const http::Request& request) {
  auto snap = hooks_.snapshot();
  const Config& config = *snap->config;
  auto body = BodyObject(request);
  if (auto* error = std::get_if<http::Response>(&body)) co_return std::move(*error);
  const auto& o = std::get<boost::json::object>(body);
  for (const auto& field : o) {
    std::string_view k = field.key();
    if (k != "name" && k != "tenant" && k != "models" && k != "limits") {
      co_return BadRequest(
          "Unknown field '" + std::string(k) + "'. A key has name, tenant, models and limits.", k);
    }
  }
  KeyRecord record;
  ApiKeyConfig& key = record.key;
  const auto* name = o.if_contains("name");
  if (!name || name->is_null()) co_return InvalidName("name is required");
  if (!name->is_string()) co_return InvalidName("name must be a string");
  if (!IsValidKeyName(name->as_string())) co_return InvalidName("Invalid key name");
  key.name = std::string(name->as_string());
  if (const auto* tenant = o.if_contains("tenant"); tenant && !tenant->is_null()) {
    bool known = tenant->is_string() &&
                 std::any_of(config.tenants.begin(), config.tenants.end(),
                             [&](const TenantConfig& t) { return t.name == tenant->as_string(); });
    if (!known) co_return BadRequest("tenant must name a tenant of the config file.", "tenant");
    key.tenant = std::string(tenant->as_string());
  }
  if (const auto* models = o.if_contains("models"); models && !models->is_null()) {
    if (!models->is_array() || models->as_array().empty()) {
      co_return BadRequest(
          "models must be a non-empty list of model names (omit it to allow "
          "every model).",
          "models");
    }
    for (const auto& m : models->as_array()) {
      const Model* model = m.is_string() ? snap->models.Find(m.as_string()) : nullptr;
      if (!model) {
        co_return BadRequest(
            "Unknown model " + boost::json::serialize(m) + ". GET /admin/v1/models lists them.",
            "models");
      }
      if (std::find(key.models.begin(), key.models.end(), model->config->name) ==
          key.models.end()) {
        key.models.push_back(model->config->name);
      }
    }
  }
  if (const auto* limits = o.if_contains("limits"); limits && !limits->is_null()) {
    auto parsed = ParseLimits(*limits, config);
    if (auto* error = std::get_if<http::Response>(&parsed)) co_return std::move(*error);
    key.limits = std::move(std::get<std::vector<LimitConfig>>(parsed));
    key.limits_set = true;
  }
  if (snap->auth.ConfigKey(key.name)) {
    co_return ErrorResponse(409, "invalid_request_error", "key_exists",
                            "The config file already has a key named '" + key.name + "'.");
  }
  // The secret exists only in this scope and in the 201 body.
  std::string secret = NewSecretKey(32);
  key.key_sha256 = Sha256Of(secret);
  record.created = record.updated = hooks_.clock->NowMicros() / 1'000'000;
  KeyStore::WriteStatus status = co_await hooks_.keys->Create(record);
  if (status == KeyStore::WriteStatus::kExists) {
    co_return ErrorResponse(409, "invalid_request_error", "key_exists",
                            "A key named '" + key.name + "' exists already.");
  }
  if (status != KeyStore::WriteStatus::kOk) co_return StoreUnavailable();
  boost::json::object view = KeyView(config, key, &record);
  view["key"] = secret;
  std::fill(secret.begin(), secret.end(), '\0');
  co_return JsonResponse(201, view);
}

asio::awaitable<http::Response> AdminApi::RevokeKey(std::string_view name) {
  auto snap = hooks_.snapshot();
  if (snap->auth.ConfigKey(name)) co_return ManagedByConfig(name);
  KeyStore::WriteStatus status = co_await hooks_.keys->Remove(name);
  if (status == KeyStore::WriteStatus::kNotFound) co_return KeyNotFound(name);
  if (status != KeyStore::WriteStatus::kOk) co_return StoreUnavailable();
  boost::json::object o;
  o["name"] = name;
  o["revoked"] = true;
  co_return JsonResponse(200, o);
}

asio::awaitable<http::Response> AdminApi::ReplaceLimits(const http::Request& request,
                                                        std::string_view name) {
  auto snap = hooks_.snapshot();
  if (snap->auth.ConfigKey(name)) co_return ManagedByConfig(name);
  auto body = BodyObject(request);
  if (auto* error = std::get_if<http::Response>(&body)) co_return std::move(*error);
  const auto& o = std::get<boost::json::object>(body);
  const auto* limits = o.if_contains("limits");
  if (!limits || o.size() != 1) {
    co_return BadRequest("The body must be {\"limits\": [...]}, the limits as in the config file.",
                         "limits");
  }
  auto parsed = ParseLimits(*limits, *snap->config);
  if (auto* error = std::get_if<http::Response>(&parsed)) co_return std::move(*error);
  auto managed = hooks_.keys->Current();
  auto found = managed->FindByName(name);
  if (!found) co_return KeyNotFound(name);
  KeyRecord record = *found;
  record.key.limits = std::move(std::get<std::vector<LimitConfig>>(parsed));
  record.key.limits_set = true;
  record.updated = hooks_.clock->NowMicros() / 1'000'000;
  KeyStore::WriteStatus status = co_await hooks_.keys->Replace(record);
  if (status == KeyStore::WriteStatus::kNotFound) co_return KeyNotFound(name);
  if (status != KeyStore::WriteStatus::kOk) co_return StoreUnavailable();
  co_return JsonResponse(200, KeyView(*snap->config, record.key, &record));
}

asio::awaitable<http::Response> AdminApi::KeyLimits(std::string_view name) {
  auto snap = hooks_.snapshot();
  auto managed = hooks_.keys->Current();
  std::optional<Identity> identity = FindKey(*snap, *managed, name);
  if (!identity) co_return KeyNotFound(name);
  LimitReadings readings =
      co_await hooks_.limiter->ReadKeyLimits(name, identity->tenant, identity->limits);
  if (!readings.ok) co_return StoreUnavailable();
  boost::json::object root;
  root["name"] = name;
  root["limits"] = ReadingsJson(readings);
  // The tenant's own budgets apply too: every limit a request of this key is judged against.
  root["tenant"] = nullptr;
  if (!identity->tenant.empty()) {
    LimitReadings shared =
        co_await hooks_.limiter->ReadTenantLimits(identity->tenant, identity->tenant_limits);
    if (!shared.ok) co_return StoreUnavailable();
    boost::json::object tenant;
    tenant["name"] = identity->tenant;
    tenant["limits"] = ReadingsJson(shared);
    root["tenant"] = std::move(tenant);
  }
  co_return JsonResponse(200, root);
}

asio::awaitable<http::Response> AdminApi::ResetKey(std::string_view name) {
  auto snap = hooks_.snapshot();
  auto managed = hooks_.keys->Current();
  std::optional<Identity> identity = FindKey(*snap, *managed, name);
  if (!identity) co_return KeyNotFound(name);
  bool ok = co_await hooks_.limiter->ResetKey(name, identity->tenant, identity->limits);
  if (!ok) co_return StoreUnavailable();
  boost::json::object o;
  o["name"] = name;
  o["reset"] = true;
  co_return JsonResponse(200, o);
}

}  // namespace trl
