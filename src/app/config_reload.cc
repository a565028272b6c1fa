#include "app/config_reload.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace trl {

ReloadOutcome ReloadConfig(const std::string& path, const Config& started_with, Gateway& gateway,
                           const KeyDirectory& keys) {
  LoadResult next = LoadConfigFile(path);
  std::string errors;
  if (!next.config) {
    for (const auto& e : next.errors) errors += e + "\n";
  } else {
    errors = NameClashes(next.config->api_keys, *keys.Current());
  }
  if (!errors.empty()) {
    spdlog::error("reload failed; keeping the previous config:\n{}", errors);
    return {errors, {}};
  }
  auto previous = gateway.Snapshot();
  gateway.SetSnapshot(std::make_shared<GatewaySnapshot>(next.config, previous.get()));
  spdlog::info("config reloaded from {}", path);
  // Compared with the config the process started with: those settings were applied then.
  std::vector<std::string> pending = RestartOnlyChanges(started_with, *next.config);
  if (!pending.empty()) {
    spdlog::warn("changed settings that take effect at the next restart: {}",
                 fmt::join(pending, ", "));
  }
  return {"", std::move(pending)};
}

}  // namespace trl
