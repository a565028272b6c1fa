// The lines a start logs to orient whoever reads the log: version, config file, listeners, the
// store, models and their backends, how many keys and tenants. Never a secret: Redis URLs lose
// their password, the admin token and key secrets are not mentioned.
//
// Thread-safety: a pure function.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace trl {

struct StartupFacts {
  std::string_view version;      // "1.4.0"
  std::string_view config_path;  // as given on the command line
  const Config* config = nullptr;
  // Keys made through the admin API, when known (embedded: loaded before the start; Redis: at
  // the first key sync, after it).
  std::optional<size_t> api_made_keys;
  std::string data_listener;   // "127.0.0.1:8080", as bound
  std::string admin_listener;  // "" without one
};

// One line each: "token-rate-limiter 1.4.0 started with config /etc/trl.yaml; listening on
// 0.0.0.0:8080 (data plane), 127.0.0.1:8081 (admin)", "store: memory, data_dir ./data",
// "models: m (aliases mm) -> http://10.0.0.5:8000, ...", "keys: 2 in the config, 5 made through
// the admin API; tenants: 1".
std::vector<std::string> StartupLines(const StartupFacts& facts);

}  // namespace trl
