// The gateway process: wires config, stores, limiter, data-plane server, admin API, health checks
// and scheduled tasks together, and owns their lifecycle, in phases called once each, in order:
//
//   Open   loads the config and makes everything that can fail at start: the stores (budgets,
//          API-made keys, usage), the limiter, the gateway, metrics, the scheduled tasks, the
//          admin hooks. A failure is returned for the caller to print.
//   Start  binds the listeners (printing "data plane listening on HOST:PORT" and "admin
//          listening on HOST:PORT"), starts the worker threads, the scheduler, health checks
//          and, unless told not to, the signal handling (SIGHUP: reload; SIGTERM/SIGINT: Drain).
//   Serve  runs the control thread (admin API, health checks, signals) on the caller's thread
//          until a drain is over.
//   Drain  (SIGTERM/SIGINT) the listeners stop accepting; requests in flight run to their end
//          and their settlements reach the store, for up to server.shutdown_grace; those still
//          running then are cut (Server::CutInFlight) and get kCutGrace to settle and be
//          recorded; then Serve returns.
//   Stop   stops the scheduler, writes usage, gives up settlements the store never confirmed,
//          stops the worker threads, saves budgets; returns the process's exit code.
//
// Threading: Open, Start, Serve and Stop on one thread at a time, in that order (Serve may run
// on another thread than the rest, joined before Stop). Drain from any thread.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "admin/admin_api.h"
#include "app/app_metrics.h"
#include "app/app_stores.h"
#include "app/budget_gauges.h"
#include "app/scheduler.h"
#include "app/usage_flush.h"
#include "config/config.h"
#include "http/server.h"
#include "keys/key_directory.h"
#include "limits/limiter.h"
#include "metrics/metrics.h"
#include "proxy/gateway.h"
#include "usage/usage.h"

namespace trl {

struct AppOptions {
  std::string config_path;
  int threads_override = -1;  // --threads; -1: from the config
  // SIGHUP reloads, SIGTERM/SIGINT drain. Off for a gateway run inside another program (tests).
  bool handle_signals = true;
};

class GatewayApp {
 public:
  // After the shutdown grace, how long the requests cut then have to settle and be recorded.
  static constexpr std::chrono::seconds kCutGrace{5};

  struct Opened {
    std::unique_ptr<GatewayApp> app;  // null on failure
    std::vector<std::string> errors;  // why, one line each (config errors by field path)
    bool bad_config = false;          // the errors are the config file's
  };
  static Opened Open(const AppOptions& options);
  // Stops what is still running (a Start without a Stop: a failed test).
  ~GatewayApp();
  GatewayApp(const GatewayApp&) = delete;
  GatewayApp& operator=(const GatewayApp&) = delete;

  // "" once everything runs; else why not ("listen: cannot listen on HOST:PORT: ..."), nothing
  // started.
  std::string Start();
  void Serve();
  void Drain();
  int Stop();

  // Where the listeners are bound (after Start): the data plane, and the admin listener if the
  // config has one.
  asio::ip::tcp::endpoint DataEndpoint() const { return data_endpoint_; }
  std::optional<asio::ip::tcp::endpoint> AdminEndpoint() const { return admin_endpoint_; }

 private:
  explicit GatewayApp(AppOptions options);
  std::string OpenParts(std::shared_ptr<const Config> config);
  std::string LoadApiKeys();
  void MakeServers();
  // "" once both listeners are bound; else why not, naming the field.
  std::string Listen();
  // The start-up summary (StartupLines), once the listeners are bound.
  void LogStartup() const;
  void StartThreads();
  void WaitForSignal();
  void BeginDrain(const std::string& why);
  void WaitDrained();
  void StopWorkers();
  bool SaveBudgets();
  int ExitCode(bool usage_flushed);
  // Reloads the config file (SIGHUP, the admin API) and counts the outcome.
  ReloadOutcome Reload(ReloadMode mode = ReloadMode::kApply);

  const AppOptions options_;
  std::shared_ptr<const Config> config_;  // as the process started: a reload does not change it
  // Declared in the order they are made; destroyed in reverse, each before what it uses. The
  // worker io_contexts (one per data-plane thread) come first: the stores' lanes run on them.
  std::vector<std::unique_ptr<asio::io_context>> workers_;
  AppStores stores_;
  std::unique_ptr<KeyDirectory> keys_;
  UsageRecorder usage_;
  std::unique_ptr<UsageFlush> usage_flush_;
  MetricsRegistry metrics_;
  std::unique_ptr<AppMetrics> app_metrics_;
  std::unique_ptr<BudgetGauges> budget_gauges_;  // the limiter's observer
  std::unique_ptr<AccessLog> access_log_;        // the gateway's
  std::unique_ptr<Limiter> limiter_;
  std::unique_ptr<Gateway> gateway_;
  std::unique_ptr<Scheduler> scheduler_;
  // The control thread: admin API, health checks, signals, the drain.
  asio::io_context control_{1};
  std::unique_ptr<http::Server> data_server_;
  std::unique_ptr<AdminApi> admin_api_;
  std::unique_ptr<http::Server> admin_server_;
  asio::ip::tcp::endpoint data_endpoint_;
  std::optional<asio::ip::tcp::endpoint> admin_endpoint_;
  std::optional<asio::signal_set> signals_;
  // The drain; control thread only.
  asio::steady_timer drain_timer_{control_};
  std::chrono::steady_clock::time_point drain_deadline_;
  bool draining_ = false;
  bool cut_ = false;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work_guards_;
  std::vector<std::thread> worker_threads_;
};

}  // namespace trl
