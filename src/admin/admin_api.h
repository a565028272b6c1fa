// The control plane on the admin listener: /healthz, /readyz, /metrics (no token), and the
// /admin/v1 routes behind `Authorization: Bearer <admin.token>`, compared in constant time.
// Threading: Handle runs on the admin I/O thread; the callbacks must be thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "config/config.h"
#include "http/server.h"
#include "metrics/metrics.h"

namespace trl {

namespace asio = boost::asio;

struct AdminHooks {
  // Current admin token (it may change on reload). Empty: every /admin/v1 route is refused.
  std::function<std::string()> admin_token;
  // Reloads the config file; returns "" on success or the errors (the old config stays).
  std::function<std::string()> reload;
  // True when the config is loaded and the store answers through the real limiter path.
  std::function<asio::awaitable<bool>()> ready;
  // JSON for GET /admin/v1/models: models, backends and each backend's health.
  std::function<std::string()> models_json;
};

class AdminApi {
 public:
  AdminApi(MetricsRegistry& metrics, AdminHooks hooks);
  asio::awaitable<void> Handle(http::Request& request, http::ResponseWriter& writer);

 private:
  bool Authorized(const http::Request& request) const;
  MetricsRegistry& metrics_;
  AdminHooks hooks_;
};

}  // namespace trl
