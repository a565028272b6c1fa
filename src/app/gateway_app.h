// Wires the gateway together: config, store, limiter, data-plane server on the worker threads,
// admin server, health checks, usage flush and signals on the control thread. Owns the
// lifecycle: start, reload (SIGHUP or POST /admin/v1/reload), drain on SIGTERM/SIGINT, flush,
// exit.
#pragma once

#include <memory>
#include <string>

namespace trl {

struct AppOptions {
  std::string config_path;
  int threads_override = -1;  // --threads; -1: from the config
};

// Runs until SIGTERM/SIGINT and a completed drain. Returns the process exit code.
int RunGateway(const AppOptions& options);

}  // namespace trl
