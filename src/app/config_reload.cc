#include "app/config_reload.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <stdexcept>

namespace trl {
namespace {

// The errors that refuse `next`, each on its own: the config's own, or names it shares with keys
// made through the admin API.
std::vector<std::string> Refusals(LoadResult& next, const KeyDirectory& keys) {
  if (!next.config) return std::move(next.errors);
  std::vector<std::string> errors;
  std::string clashes = NameClashes(next.config->api_keys, *keys.Current());
  for (size_t start = 0; start < clashes.size();) {
    size_t end = clashes.find('\n', start);
    if (end == std::string::npos) end = clashes.size();
    if (end > start) errors.push_back(clashes.substr(start, end - start));
    start = end + 1;
  }
  return errors;
}

}  // namespace

ReloadOutcome ReloadConfig(const std::string& path, const Config& started_with, Gateway& gateway,
                           const KeyDirectory& keys, ReloadMode mode) {
  const bool dry_run = mode == ReloadMode::kDryRun;
  LoadResult next = LoadConfigFile(path);
  ReloadOutcome outcome;
  outcome.errors = Refusals(next, keys);
  if (!outcome.errors.empty()) {
    spdlog::error("{}; keeping the previous config:\n{}",
                  dry_run ? "reload dry run: the config file has errors" : "reload failed",
                  fmt::join(outcome.errors, "\n"));
    return outcome;
  }
  outcome.warnings = ConfigWarnings(*next.config);
  for (const auto& w : outcome.warnings) spdlog::warn("config: {}", w);
  auto previous = gateway.Snapshot();
  std::shared_ptr<const GatewaySnapshot> snapshot;
  try {  // loads the tokenizers that changed: a file they name may be refused
    snapshot = std::make_shared<GatewaySnapshot>(next.config, previous.get());
  } catch (const std::runtime_error& e) {
    outcome.errors.emplace_back(e.what());
    spdlog::error("{}; keeping the previous config:\n{}",
                  dry_run ? "reload dry run: a tokenizer cannot be loaded" : "reload failed",
                  e.what());
    return outcome;
  }
  outcome.changes = DiffConfigs(*previous->config, *next.config);
  // Compared with the config the process started with: those settings were applied then.
  outcome.changes.restart_required = RestartOnlyChanges(started_with, *next.config);
  const std::string changes = ConfigDiffToText(outcome.changes);
  if (dry_run) {
    spdlog::info(
        "reload dry run: the config file is valid; nothing was applied; a reload "
        "would change:\n{}",
        changes);
    return outcome;
  }
  gateway.SetSnapshot(std::move(snapshot));
  spdlog::info("config reloaded from {}; changes:\n{}", path, changes);
  if (!outcome.changes.restart_required.empty()) {
    spdlog::warn("changed settings that take effect at the next restart: {}",
                 fmt::join(outcome.changes.restart_required, ", "));
  }
  return outcome;
}

}  // namespace trl
