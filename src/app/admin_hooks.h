// What the admin API (src/admin) needs of the running gateway, made from its parts: the admin
// token and the models of the config in force, readiness through the real limiter path, keys,
// budgets, usage (flushed first, on the scheduler's thread) and reload.
//
// Threading: the hooks run on the admin (control) thread; the parts are thread-safe.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "admin/admin_api.h"
#include "app/scheduler.h"
#include "app/usage_flush.h"
#include "keys/key_directory.h"
#include "limits/limiter.h"
#include "proxy/gateway.h"

namespace trl {

// Every part must outlive the hooks.
struct AdminParts {
  Gateway& gateway;
  Limiter& limiter;
  KeyDirectory& keys;
  UsageFlush& usage;
  Scheduler& scheduler;
  const Clock& clock;
  std::function<ReloadOutcome(ReloadMode)> reload;
  std::vector<std::string> store_warnings;  // AppStores::left_behind
};

AdminHooks MakeAdminHooks(AdminParts parts);

// What /readyz answers: the store answers through the real limiter path, and the API-made keys
// are loaded. Both must outlive the function.
std::function<asio::awaitable<bool>()> Readiness(Limiter& limiter, const KeyDirectory& keys);

// GET /admin/v1/models: {"data": [{"name", "aliases", "backends": [{"url", "healthy",
// "outstanding"}]}]}.
std::string ModelsJson(const GatewaySnapshot& snapshot);

}  // namespace trl
