// What changes between two configs, as a reload (or `--check-config NEW --diff RUNNING`) reports
// it: models, config keys and tenants added, removed or changed (by name, with the fields that
// changed), default_limits, the other settings a reload applies, and the settings that wait for a
// restart. Names and field paths only: never a secret, nor its hash.
#pragma once

#include <boost/json/object.hpp>
#include <string>
#include <vector>

#include "config/config.h"

namespace trl {

struct ChangedItem {
  std::string name;
  std::vector<std::string> fields;  // e.g. "backends", "limits", "key" (the secret changed)
};

// Items named in a list of the config (models, api_keys, tenants), in the order they are written.
struct NamedChanges {
  std::vector<std::string> added;
  std::vector<std::string> removed;
  std::vector<ChangedItem> changed;
  bool Empty() const { return added.empty() && removed.empty() && changed.empty(); }
};

struct ConfigDiff {
  NamedChanges models;
  NamedChanges api_keys;  // the config's keys (keys made through the admin API are not in it)
  NamedChanges tenants;
  bool default_limits = false;        // default_limits changed
  std::vector<std::string> settings;  // other settings a reload applies, by path: "admin.token"
  std::vector<std::string> restart_required;  // RestartOnlyChanges
  bool Empty() const;
};

// What `next` changes from `running`. restart_required compares the same two configs; a reload
// compares it with the config the process started with instead (config_reload.h).
ConfigDiff DiffConfigs(const Config& running, const Config& next);

// {"models": {"added": [...], "removed": [...], "changed": [{"name", "fields"}]}, "api_keys":
// {...}, "tenants": {...}, "default_limits": bool, "settings": [...], "restart_required": [...]}.
boost::json::object ConfigDiffToJson(const ConfigDiff& diff);

// The same for a terminal, one line per kind of change ("models: added m2; changed m
// (backends)"), or "no changes".
std::string ConfigDiffToText(const ConfigDiff& diff);

}  // namespace trl
