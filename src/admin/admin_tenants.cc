// /admin/v1/tenants: the config's tenants (the file is their source of truth), each with its own
// limits, what remains of them now (shared by every key of the tenant) and how many keys it
// has; and the refill of a tenant's budgets.
#include <boost/json/object.hpp>
#include <map>
#include <optional>

#include "admin/admin_api.h"
#include "admin/admin_views.h"
#include "keys/key_record.h"
#include "proxy/errors.h"

namespace trl {
namespace {

http::Response TenantNotFound(std::string_view name) {
  return ErrorResponse(404, "invalid_request_error", "tenant_not_found",
                       "No tenant named '" + std::string(name) +
                           "'. GET /admin/v1/tenants lists them; tenants come from the config.");
}

const TenantConfig* FindTenant(const Config& config, std::string_view name) {
  for (const TenantConfig& t : config.tenants) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

// Config keys and keys made through the API, counted per tenant name.
std::map<std::string, int64_t, std::less<>> KeysPerTenant(const GatewaySnapshot& snap,
                                                          const ManagedKeys& managed) {
  std::map<std::string, int64_t, std::less<>> keys;
  for (const ApiKeyConfig& key : snap.config->api_keys) ++keys[key.tenant];
  managed.ForEach([&](const KeyRecord& record) {
    // A config key of the same name wins over the API's (the authenticator does the same).
    if (!snap.auth.ConfigKey(record.key.name)) ++keys[record.key.tenant];
  });
  return keys;
}

}  // namespace

asio::awaitable<std::optional<boost::json::object>> AdminApi::TenantView(const TenantConfig& tenant,
                                                                         int64_t keys) {
  LimitReadings readings = co_await hooks_.limiter->ReadTenantLimits(tenant.name, tenant.limits);
  if (!readings.ok) co_return std::nullopt;
  boost::json::object o;
  o["name"] = tenant.name;
  o["keys"] = keys;
  o["limits"] = ReadingsJson(readings);
  o["queue"] = QueueToJson(tenant.queue);
  co_return o;
}

asio::awaitable<http::Response> AdminApi::HandleTenants(const http::Request& request,
                                                        std::string_view path) {
  auto snap = hooks_.snapshot();
  const auto keys = KeysPerTenant(*snap, *hooks_.keys->Current());
  auto view = [&](const TenantConfig& tenant) {
    auto it = keys.find(tenant.name);
    return TenantView(tenant, it == keys.end() ? 0 : it->second);
  };
  const auto method = request.method();
  if (path == "/admin/v1/tenants") {
    if (method != http::bhttp::verb::get) co_return MethodNotAllowed(request, path, "GET");
    boost::json::array data;
    for (const TenantConfig& tenant : snap->config->tenants) {
      std::optional<boost::json::object> one = co_await view(tenant);
      if (!one) co_return StoreUnavailable();
      data.push_back(std::move(*one));
    }
    boost::json::object root;
    root["data"] = std::move(data);
    co_return JsonResponse(200, root);
  }
  // /admin/v1/tenants/{name} or /admin/v1/tenants/{name}/reset.
  const std::string_view rest = path.substr(std::string_view("/admin/v1/tenants/").size());
  const size_t slash = rest.find('/');
  const std::string_view name = rest.substr(0, slash);
  const std::string_view action = slash == std::string_view::npos ? "" : rest.substr(slash);
  if (!action.empty() && action != "/reset") {
    co_return ErrorResponse(404, "invalid_request_error", "not_found",
                            "Unknown admin route " + std::string(request.method_string()) + " " +
                                std::string(path) + ".");
  }
  const auto wanted = action.empty() ? http::bhttp::verb::get : http::bhttp::verb::post;
  if (method != wanted) co_return MethodNotAllowed(request, path, action.empty() ? "GET" : "POST");
  const TenantConfig* tenant = FindTenant(*snap->config, name);
  if (!tenant) co_return TenantNotFound(name);
  if (action.empty()) {
    std::optional<boost::json::object> one = co_await view(*tenant);
    if (!one) co_return StoreUnavailable();
    co_return JsonResponse(200, *one);
  }
  if (!co_await hooks_.limiter->ResetTenant(tenant->name, tenant->limits)) {
    co_return StoreUnavailable();
  }
  boost::json::object o;
  o["name"] = tenant->name;
  o["reset"] = true;
  co_return JsonResponse(200, o);
}

}  // namespace trl
