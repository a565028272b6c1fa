// Reloading the config file (SIGHUP, POST /admin/v1/reload). A file with errors, or one that
// names a config key like a key made through the admin API (they would share budgets and usage
// rows), is refused and the config in force stays; otherwise the gateway swaps in a snapshot
// built from it (backends keep their health). Settings a reload does not apply (listeners,
// threads, the store...) are named, compared with the config the process started with; the rest
// of what changes (models, keys, tenants, limits...) is compared with the config in force.
//
// Threading: on the control thread, where signals and the admin API run: one at a time.
#pragma once

#include <string>

#include "admin/admin_api.h"
#include "config/config.h"
#include "keys/key_directory.h"
#include "proxy/gateway.h"

namespace trl {

// kDryRun does all of it but the swap, and logs what would change.
ReloadOutcome ReloadConfig(const std::string& path, const Config& started_with, Gateway& gateway,
                           const KeyDirectory& keys, ReloadMode mode = ReloadMode::kApply);

}  // namespace trl
