// The control plane on the admin listener: /healthz, /readyz, /metrics (no token), and the
// /admin/v1 routes behind `Authorization: Bearer <admin.token>`, compared in constant time.
// Threading: Handle runs on the admin I/O thread; the callbacks must be thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "admin/admin_query.h"
#include "common/clock.h"
#include "config/config.h"
#include "config/config_diff.h"
#include "http/server.h"
#include "keys/key_directory.h"
#include "limits/limiter.h"
#include "metrics/metrics.h"
#include "proxy/gateway.h"
#include "usage/usage.h"

namespace trl {

namespace asio = boost::asio;

// kDryRun checks the config file and reports what a reload would change, applying nothing.
enum class ReloadMode { kApply, kDryRun };

struct ReloadOutcome {
  std::vector<std::string> errors;  // non-empty: refused; the old config stays
  // What the file changes from the config in force; its restart_required, from the config the
  // process started with (applied, or to be applied, at the next restart).
  ConfigDiff changes;
  std::vector<std::string> warnings;  // ConfigWarnings of the file (also logged)
};

struct AdminHooks {
  // Current admin token (it may change on reload). Empty: every /admin/v1 route is refused.
  std::function<std::string()> admin_token;
  // Reloads the config file, or (kDryRun) says what a reload would change.
  std::function<ReloadOutcome(ReloadMode)> reload;
  // True when the config is loaded and the store answers through the real limiter path.
  std::function<asio::awaitable<bool>()> ready;
  // What an operator must act on although the gateway serves (data left behind in another
  // store, keys lost by the store): /readyz's "warnings".
  std::function<std::vector<std::string>()> warnings;
  // JSON for GET /admin/v1/models: models, backends and each backend's health.
  std::function<std::string()> models_json;
  // The config in force: validates new keys, knows the config's keys.
  std::function<std::shared_ptr<const GatewaySnapshot>()> snapshot;
  // API-made keys; the live budgets; the wall clock (key timestamps).
  KeyDirectory* keys = nullptr;
  Limiter* limiter = nullptr;
  const Clock* clock = nullptr;
  // Writes this instance's pending usage, then runs the query on the store.
  std::function<asio::awaitable<UsageResult>(const UsageQuery&)> usage;
};

class AdminApi {
 public:
  AdminApi(MetricsRegistry& metrics, AdminHooks hooks);
  asio::awaitable<void> Handle(http::Request& request, http::ResponseWriter& writer);

 private:
  bool Authorized(const http::Request& request) const;
  asio::awaitable<void> Route(http::Request& request, http::ResponseWriter& writer);
  // /healthz, /readyz, /metrics: no token needed; any other path outside /admin/v1/ is 404.
  asio::awaitable<http::Response> Probe(const http::Request& request, std::string_view path);
  // POST /admin/v1/reload[?dry_run=true|false].
  http::Response Reload(const AdminQuery& query);
  // The query's parameters, or the 400 for one the route does not accept (admin_query.h).
  static std::variant<AdminQuery, http::Response> ReadQuery(const http::Request& request,
                                                            std::string_view path);
  int64_t NowSeconds() const { return hooks_.clock->NowMicros() / 1'000'000; }
  // admin_keys.cc: /admin/v1/keys and /admin/v1/keys/{name}[/limits|/reset|/rotate].
  asio::awaitable<http::Response> HandleKeys(http::Request& request, std::string_view path);
  asio::awaitable<http::Response> CreateKey(const http::Request& request);
  asio::awaitable<http::Response> KeyLimits(std::string_view name);
  asio::awaitable<http::Response> ResetKey(std::string_view name);
  asio::awaitable<http::Response> RevokeKey(std::string_view name);
  http::Response ListKeys();
  http::Response ShowKey(std::string_view name);
  // admin_key_changes.cc: changes to a key made through the API.
  using KeyEdit = std::function<std::optional<http::Response>(KeyRecord&)>;
  // Reads the key `name`, lets `edit` change it (or answer the error to send), and writes it
  // over the revision it read; when another change was written first (here or on another
  // instance), reads the key again and edits that. The record written, or the answer to send.
  asio::awaitable<std::variant<KeyRecord, http::Response>> ChangeKey(std::string_view name,
                                                                     const KeyEdit& edit);
  asio::awaitable<http::Response> PatchKey(const http::Request& request, std::string_view name);
  asio::awaitable<http::Response> ReplaceLimits(const http::Request& request,
                                                std::string_view name);
  asio::awaitable<http::Response> RotateKey(const http::Request& request, std::string_view name);
  // admin_tenants.cc: GET /admin/v1/tenants, GET /admin/v1/tenants/{name}, POST
  // /admin/v1/tenants/{name}/reset.
  asio::awaitable<http::Response> HandleTenants(const http::Request& request,
                                                std::string_view path);
  // A tenant as shown, with its budgets now; nullopt when the store did not answer.
  asio::awaitable<std::optional<boost::json::object>> TenantView(const TenantConfig& tenant,
                                                                 int64_t keys);
  // admin_usage.cc: GET /admin/v1/usage.
  asio::awaitable<http::Response> Usage(std::string_view query_string);
  MetricsRegistry& metrics_;
  AdminHooks hooks_;
};

}  // namespace trl
