#include "app/admin_hooks.h"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace trl {
namespace {

boost::json::object ModelJson(const Model& m) {
  boost::json::array backends;
  for (const auto& b : m.backends) {
    boost::json::object entry;
    entry["url"] = b->Url().url;
    entry["healthy"] = b->Up();
    entry["outstanding"] = b->Outstanding();
    backends.push_back(std::move(entry));
  }
  boost::json::array aliases;
  for (const auto& a : m.config->aliases) aliases.push_back(boost::json::string(a));
  boost::json::object model;
  model["name"] = m.config->name;
  model["aliases"] = std::move(aliases);
  model["backends"] = std::move(backends);
  return model;
}

// On the scheduler's thread, after this instance's pending usage is written: the answer
// includes every request this instance has settled.
std::function<asio::awaitable<UsageResult>(const UsageQuery&)> UsageQueries(UsageFlush& usage,
                                                                            Scheduler& scheduler) {
  return [&usage, &scheduler](const UsageQuery& query) -> asio::awaitable<UsageResult> {
    // Built into locals: GCC 12 mishandles non-trivial temporaries inside co_await.
    std::function<asio::awaitable<UsageResult>()> work = [&usage,
                                                          query]() -> asio::awaitable<UsageResult> {
      UsageResult r = co_await usage.FlushAndQuery(query);
      co_return r;
    };
    UsageResult result = co_await scheduler.Run<UsageResult>(std::move(work));
    co_return result;
  };
}

}  // namespace

// Ready: the store answers through the real limiter path, and the API-made keys are loaded
// (before, they would get 401).
std::function<asio::awaitable<bool>()> Readiness(Limiter& limiter, const KeyDirectory& keys) {
  return [&limiter, &keys]() -> asio::awaitable<bool> {
    static const LimitConfig kProbe{LimitKind::kRequests, 1, Millis(1000), false, ""};
    LimitReadings r = co_await limiter.ReadKeyLimits("__readyz__", "", {&kProbe, 1});
    co_return r.ok&& keys.Current()->Version() >= 0;
  };
}

std::string ModelsJson(const GatewaySnapshot& snapshot) {
  boost::json::array models;
  for (const Model& m : snapshot.models.Models()) models.push_back(ModelJson(m));
  boost::json::object root;
  root["data"] = std::move(models);
  return boost::json::serialize(root);
}

AdminHooks MakeAdminHooks(AdminParts parts) {
  Gateway& gateway = parts.gateway;
  AdminHooks hooks;
  hooks.admin_token = [&gateway] { return gateway.Snapshot()->config->admin.token; };
  hooks.reload = std::move(parts.reload);
  hooks.ready = Readiness(parts.limiter, parts.keys);
  hooks.warnings = [&keys = parts.keys, left = std::move(parts.store_warnings)] {
    std::vector<std::string> warnings = left;
    if (std::string lost = keys.LostKeysWarning(); !lost.empty()) warnings.push_back(lost);
    return warnings;
  };
  hooks.models_json = [&gateway] { return ModelsJson(*gateway.Snapshot()); };
  hooks.snapshot = [&gateway] { return gateway.Snapshot(); };
  hooks.keys = &parts.keys;
  hooks.limiter = &parts.limiter;
  hooks.clock = &parts.clock;
  hooks.usage = UsageQueries(parts.usage, parts.scheduler);
  return hooks;
}

}  // namespace trl
