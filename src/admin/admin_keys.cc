// /admin/v1/keys: keys made through the API (kept in the KeyStore, seen by every instance
// through its KeyDirectory) side by side with the config's keys (read-only here: the config file
// is their source of truth; their budgets can still be read and reset).
#include <boost/json/value.hpp>

#include "admin/admin_api.h"
#include "admin/admin_key_fields.h"
#include "admin/admin_views.h"
#include "common/crypto.h"
#include "keys/key_record.h"
#include "proxy/errors.h"

namespace trl {
namespace {

namespace bhttp = http::bhttp;

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
    co_return MethodNotAllowed(request, path, "GET, POST");
  }
  // /admin/v1/keys/{name}[/{action}]; the name is checked before anything else: no other text
  // reaches the store.
  std::string_view rest = path.substr(std::string_view("/admin/v1/keys/").size());
  const std::string_view name = rest.substr(0, rest.find('/'));
  const std::string_view action = rest.substr(name.size());
  if (!IsValidKeyName(name)) co_return InvalidName("Invalid key name");
  if (!action.empty() && action != "/limits" && action != "/reset" && action != "/rotate") {
    co_return ErrorResponse(404, "invalid_request_error", "not_found",
                            "Unknown admin route " + std::string(request.method_string()) + " " +
                                std::string(path) + ".");
  }
  if (action.empty() && method == bhttp::verb::get) co_return ShowKey(name);
  std::optional<http::Response> answer;
  if (action.empty() && method == bhttp::verb::delete_) {
    answer = co_await RevokeKey(name);
  } else if (action.empty() && method == bhttp::verb::patch) {
    answer = co_await PatchKey(request, name);
  } else if (action == "/limits" && method == bhttp::verb::get) {
    answer = co_await KeyLimits(name);
  } else if (action == "/limits" && method == bhttp::verb::put) {
    answer = co_await ReplaceLimits(request, name);
  } else if (action == "/reset" && method == bhttp::verb::post) {
    answer = co_await ResetKey(name);
  } else if (action == "/rotate" && method == bhttp::verb::post) {
    answer = co_await RotateKey(request, name);
  }
  if (answer) co_return std::move(*answer);
  const std::string_view allow = action.empty()        ? "GET, PATCH, DELETE"
                                 : action == "/limits" ? "GET, PUT"
                                                       : "POST";
  co_return MethodNotAllowed(request, path, allow);
}

http::Response AdminApi::ListKeys() {
  auto snap = hooks_.snapshot();
  auto managed = hooks_.keys->Current();
  const int64_t now = NowSeconds();
  std::map<std::string, boost::json::object> by_name;
  for (const auto& record : managed->SortedByName()) {
    by_name[record->key.name] = KeyView(*snap->config, record->key, record.get(), now);
  }
  // A config key wins over an API key of the same name (the config is loaded last).
  for (const auto& key : snap->config->api_keys) {
    by_name[key.name] = KeyView(*snap->config, key, nullptr, now);
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
    return JsonResponse(200, KeyView(*snap->config, *key, nullptr, NowSeconds()));
  }
  auto managed = hooks_.keys->Current();
  auto record = managed->FindByName(name);
  if (!record) return KeyNotFound(name);
  return JsonResponse(200, KeyView(*snap->config, record->key, record.get(), NowSeconds()));
}

asio::awaitable<http::Response> AdminApi::CreateKey(const http::Request& request) {
  auto snap = hooks_.snapshot();
  auto body = BodyObject(request);
  if (auto* error = std::get_if<http::Response>(&body)) co_return std::move(*error);
  const auto& o = std::get<boost::json::object>(body);
  if (auto error = UnknownField(o, {"name", "tenant", "models", "limits", "queue", "expires_at"},
                                "A key has name, tenant, models, limits, queue and expires_at.")) {
    co_return std::move(*error);
  }
  KeyRecord record;
  ApiKeyConfig& key = record.key;
  const auto* name = o.if_contains("name");
  if (!name || name->is_null()) co_return InvalidName("name is required");
  if (!name->is_string()) co_return InvalidName("name must be a string");
  if (!IsValidKeyName(name->as_string())) co_return InvalidName("Invalid key name");
  key.name = std::string(name->as_string());
  if (auto error = ApplyKeyFields(o, *snap, key)) co_return std::move(*error);
  if (snap->auth.ConfigKey(key.name)) {
    co_return ErrorResponse(409, "invalid_request_error", "key_exists",
                            "The config file already has a key named '" + key.name + "'.");
  }
  // The secret exists only in this scope and in the 201 body.
  std::string secret = NewSecretKey(32);
  key.key_sha256 = Sha256Of(secret);
  record.created = record.updated = NowSeconds();
  KeyStore::WriteStatus status = co_await hooks_.keys->Create(record);
  if (status == KeyStore::WriteStatus::kExists) {
    co_return ErrorResponse(409, "invalid_request_error", "key_exists",
                            "A key named '" + key.name + "' exists already.");
  }
  if (status != KeyStore::WriteStatus::kOk) co_return StoreUnavailable();
  boost::json::object view = KeyView(*snap->config, key, &record, record.created);
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
