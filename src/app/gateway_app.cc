#include "app/gateway_app.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/system_error.hpp>
#include <csignal>
#include <cstdio>

#include "app/admin_hooks.h"
#include "app/config_reload.h"
#include "app/health_checker.h"
#include "app/scheduled_tasks.h"
#include "app/startup_log.h"
#include "common/clock.h"
#include "common/run_to_completion.h"
#include "proxy/errors.h"
#include "proxy/request_fields.h"

#ifndef TRL_VERSION
#define TRL_VERSION "0.0.0"
#endif

namespace trl {
namespace {

using namespace std::chrono_literals;

constexpr auto kHealthInterval = 2s;
constexpr auto kHealthTimeout = 1s;
// How often trl_ready is brought up to date (what /readyz would answer).
constexpr auto kReadyProbeInterval = 5s;
// How long an access-log line may wait for its batch to fill before it goes to the writer.
constexpr auto kAccessLogFlushInterval = 100ms;
// How often a drain looks whether it is over.
constexpr auto kDrainPoll = 10ms;

std::string Address(const asio::ip::tcp::endpoint& ep) {
  std::string host = ep.address().to_string();
  if (ep.address().is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(ep.port());
}

http::ServerOptions ServerOptionsFrom(const Config& config) {
  http::ServerOptions o;
  o.max_body_bytes = config.server.max_body_bytes;
  o.max_header_bytes = config.server.max_header_bytes;
  o.header_timeout = config.server.header_timeout;
  o.idle_timeout = config.server.idle_timeout;
  o.body_padding = kJsonBodyPadding;  // request fields are read in place
  o.max_connections = config.server.max_connections;
  o.share_port = config.server.reuse_port;
  return o;
}

// Every client connection holds a descriptor, and one more to its backend while a request is in
// flight: the soft open-file limit (often 1024) is raised to the hard one, as servers do, and a
// max_connections that still does not fit is warned about (past the limit, accepts fail with
// EMFILE and pause: the server keeps serving what it has).
void RaiseOpenFileLimit(size_t max_connections) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  constexpr rlim_t kReserved = 64;  // listeners, Redis, SQLite, logs
  if (limit.rlim_cur != RLIM_INFINITY && 2 * max_connections + kReserved > limit.rlim_cur) {
    spdlog::warn(
        "server.max_connections {} needs up to {} descriptors; the open-file limit is {} "
        "(raise it, e.g. LimitNOFILE= or ulimit -n, or lower max_connections)",
        max_connections, 2 * max_connections + kReserved, limit.rlim_cur);
  }
}

// "listen: cannot listen on 127.0.0.1:8080: Address already in use (another process has the port:
// stop it or pick another port)", `hint` appended to the parenthesis.
std::string ListenError(const char* field, const HostPort& at, const std::exception& e,
                        const char* hint) {
  std::string error = std::string(field) + ": cannot listen on " + FormatHostPort(at.host, at.port);
  const auto* system = dynamic_cast<const boost::system::system_error*>(&e);
  if (!system) return error + ": " + e.what();
  error += ": " + system->code().message();
  if (system->code() == boost::asio::error::address_in_use) {
    error +=
        std::string(" (another process has the port: stop it or pick another port") + hint + ")";
  }
  return error;
}

int WorkerThreads(const AppOptions& options, const Config& config) {
  int threads = options.threads_override >= 0 ? options.threads_override : config.server.threads;
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return threads;
}

}  // namespace

GatewayApp::GatewayApp(AppOptions options) : options_(std::move(options)) {}

GatewayApp::~GatewayApp() { StopWorkers(); }

GatewayApp::Opened GatewayApp::Open(const AppOptions& options) {
  LoadResult loaded = LoadConfigFile(options.config_path);
  if (!loaded.config) return {nullptr, std::move(loaded.errors), true};
  // spdlog's registry is made on first use; made here, before other threads log, so that
  // ThreadSanitizer (which cannot see the guard of that construction inside the library) does
  // not take two threads' first log lines for a race.
  spdlog::default_logger_raw();
  for (const auto& w : ConfigWarnings(*loaded.config)) spdlog::warn("config: {}", w);
  RaiseOpenFileLimit(loaded.config->server.max_connections);
  std::unique_ptr<GatewayApp> app(new GatewayApp(options));
  std::string error = app->OpenParts(std::move(loaded.config));
  if (!error.empty()) return {nullptr, {std::move(error)}};
  return {std::move(app), {}};
}

std::string GatewayApp::OpenParts(std::shared_ptr<const Config> config) {
  config_ = std::move(config);
  // Worker threads: one io_context each (the data plane). A worker's sockets and timers (its
  // Redis lane's too) are used only on its own thread (other threads only post to it), so its
  // reactor needs no per-socket locks (UNSAFE_IO: ~3% of the gateway's CPU per request); the
  // scheduler stays locked for the posts. Made before the stores, so that they outlive them.
  std::vector<asio::io_context*> io_threads;
  for (int i = WorkerThreads(options_, *config_); i > 0; --i) {
    workers_.push_back(std::make_unique<asio::io_context>(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO));
    io_threads.push_back(workers_.back().get());
  }
  std::string error;
  if (!OpenStores(*config_, io_threads, stores_, &error)) return error;
  keys_ = std::make_unique<KeyDirectory>(*stores_.keys);
  if (error = LoadApiKeys(); !error.empty()) return error;
  usage_flush_ = std::make_unique<UsageFlush>(usage_, *stores_.usage, stores_.usage_journal.get());
  if (stores_.usage_journal) {
    usage_.EnableJournal();
    if (!usage_flush_->RecoverJournal(&error)) return "store.journal: " + error;
  }

  if (!config_->metrics.key_label) metrics_.DropLabel("key");
  if (stores_.redis) ObserveStoreLatency(metrics_, *stores_.redis);
  const Clock& clock = SystemClock::Instance();
  app_metrics_ = std::make_unique<AppMetrics>(metrics_, clock, usage_);
  budget_gauges_ = std::make_unique<BudgetGauges>(metrics_, clock);
  access_log_ = AccessLog::Open(config_->access_log, metrics_, &error);
  if (!access_log_) return error;
  LimiterOptions limiter_options;
  limiter_options.lease_ttl = config_->store.concurrency_lease_ttl;
  limiter_ = std::make_unique<Limiter>(*stores_.budgets, clock, limiter_options);
  limiter_->SetBudgetObserver(budget_gauges_.get());
  gateway_ = std::make_unique<Gateway>(metrics_, *limiter_, clock, keys_.get(), &usage_);
  try {
    gateway_->SetSnapshot(std::make_shared<GatewaySnapshot>(config_));
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  gateway_->SetAccessLog(access_log_.get());

  scheduler_ = std::make_unique<Scheduler>(metrics_, clock);
  AddScheduledTasks(*scheduler_, {*config_, clock, *usage_flush_, *keys_, stores_.memory.get()});
  scheduler_->Add("access_log_flush", kAccessLogFlushInterval,
                  [log = access_log_.get()]() -> asio::awaitable<bool> {
                    log->Flush();
                    co_return true;
                  });
  scheduler_->Add("ready_probe", kReadyProbeInterval,
                  [this, ready = Readiness(*limiter_, *keys_)]() -> asio::awaitable<bool> {
                    app_metrics_->SetReady(co_await ready());
                    co_return true;
                  });
  MakeServers();
  return "";
}

// Embedded: the keys are on local disk, and a failure to read them is a failure to start. Redis:
// the first key_sync loads them (/readyz is not ready until then).
std::string GatewayApp::LoadApiKeys() {
  if (stores_.redis) return "";
  std::string error;
  bool loaded = false;
  try {
    loaded = RunToCompletion(keys_->Sync(true, &error));
  } catch (const std::exception& e) {
    error = e.what();
  }
  return loaded ? "" : "cannot load API keys: " + error;
}

void GatewayApp::MakeServers() {
  std::vector<asio::any_io_executor> executors;
  for (auto& w : workers_) executors.push_back(w->get_executor());
  data_server_ = std::make_unique<http::Server>(
      executors, ServerOptionsFrom(*config_),
      [gateway = gateway_.get()](http::Request& req, http::ResponseWriter& w) {
        return gateway->Handle(req, w);
      },
      TransportErrorResponse);
  if (!config_->admin.listen) return;
  auto reload = [this](ReloadMode mode) { return Reload(mode); };
  admin_api_ = std::make_unique<AdminApi>(
      metrics_, MakeAdminHooks({*gateway_, *limiter_, *keys_, *usage_flush_, *scheduler_,
                                SystemClock::Instance(), reload, stores_.left_behind}));
  admin_server_ = std::make_unique<http::Server>(
      std::vector<asio::any_io_executor>{control_.get_executor()}, http::ServerOptions{},
      [api = admin_api_.get()](http::Request& req, http::ResponseWriter& w) {
        return api->Handle(req, w);
      },
      TransportErrorResponse);
}

std::string GatewayApp::Start() {
  if (std::string error = Listen(); !error.empty()) return error;
  LogStartup();
  data_server_->Start();
  if (admin_server_) admin_server_->Start();
  asio::co_spawn(
      control_,
      RunHealthChecks(
          [gateway = gateway_.get()] { return gateway->Snapshot()->models.AllBackends(); },
          kHealthInterval, kHealthTimeout),
      asio::detached);
  scheduler_->Start();
  if (options_.handle_signals) {
    signals_.emplace(control_, SIGTERM, SIGINT, SIGHUP);
    WaitForSignal();
  }
  StartThreads();
  return "";
}

std::string GatewayApp::Listen() {
  const HostPort& data = config_->listen;
  try {
    data_endpoint_ = data_server_->Listen(data.host, data.port);
  } catch (const std::exception& e) {
    return ListenError("listen", data, e,
                       config_->server.reuse_port ? "" : ", or set server.reuse_port: true");
  }
  std::printf("data plane listening on %s\n", Address(data_endpoint_).c_str());
  if (admin_server_) {
    const HostPort& at = *config_->admin.listen;
    try {
      admin_endpoint_ = admin_server_->Listen(at.host, at.port);
    } catch (const std::exception& e) {
      return ListenError("admin.listen", at, e, "");
    }
    std::printf("admin listening on %s\n", Address(*admin_endpoint_).c_str());
  }
  std::fflush(stdout);
  return "";
}

void GatewayApp::LogStartup() const {
  // Redis: the first key sync, after the start, loads them (LoadApiKeys).
  const std::optional<size_t> api_made =
      stores_.redis ? std::nullopt : std::optional<size_t>(keys_->Current()->Size());
  for (const auto& line :
       StartupLines({TRL_VERSION, options_.config_path, config_.get(), api_made,
                     Address(data_endpoint_), admin_endpoint_ ? Address(*admin_endpoint_) : ""})) {
    spdlog::info("{}", line);
  }
}

ReloadOutcome GatewayApp::Reload(ReloadMode mode) {
  ReloadOutcome outcome = ReloadConfig(options_.config_path, *config_, *gateway_, *keys_, mode);
  if (mode == ReloadMode::kApply) app_metrics_->CountReload(outcome);
  return outcome;
}

void GatewayApp::StartThreads() {
  for (auto& w : workers_) {
    work_guards_.push_back(asio::make_work_guard(*w));
    worker_threads_.emplace_back([ctx = w.get()] { ctx->run(); });
  }
}

void GatewayApp::Serve() { control_.run(); }

void GatewayApp::WaitForSignal() {
  signals_->async_wait([this](boost::system::error_code ec, int signo) {
    if (ec) return;
    if (signo == SIGHUP) {
      Reload();
      WaitForSignal();
      return;
    }
    BeginDrain("signal " + std::to_string(signo));
  });
}

void GatewayApp::Drain() {
  asio::post(control_, [this] { BeginDrain("drain requested"); });
}

void GatewayApp::BeginDrain(const std::string& why) {
  if (draining_) return;
  draining_ = true;
  spdlog::info("{}: draining {} requests (grace {})", why, data_server_->ActiveRequests(),
               FormatDuration(config_->server.shutdown_grace));
  data_server_->StopAccepting();
  if (admin_server_) admin_server_->StopAccepting();
  drain_deadline_ = std::chrono::steady_clock::now() + config_->server.shutdown_grace;
  WaitDrained();
}

// Drained: no request in flight, and none still settling with the store. When the grace is
// over, the requests still in flight are cut (streams end with an error event), and settled
// and recorded for what they relayed; the cut gets kCutGrace to do that.
void GatewayApp::WaitDrained() {
  if (data_server_->ActiveRequests() == 0 && limiter_->PendingSettlements() == 0) {
    control_.stop();
    return;
  }
  if (std::chrono::steady_clock::now() >= drain_deadline_) {
    if (cut_) {
      spdlog::warn("{} requests still in flight, {} settling after the cut; stopping",
                   data_server_->ActiveRequests(), limiter_->PendingSettlements());
      control_.stop();
      return;
    }
    cut_ = true;
    spdlog::warn("shutdown grace over: cutting {} requests in flight ({} settling)",
                 data_server_->ActiveRequests(), limiter_->PendingSettlements());
    data_server_->CutInFlight();
    drain_deadline_ = std::chrono::steady_clock::now() + kCutGrace;
  }
  drain_timer_.expires_after(kDrainPoll);
  drain_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) WaitDrained();
  });
}

int GatewayApp::Stop() {
  // Drained: every settled request's usage is in the recorder. Write it while Redis is still
  // connected.
  scheduler_->Stop();
  bool flushed = usage_flush_->FlushAtShutdown();
  // Settlements the store has not confirmed by now are given up: their reservations stand.
  if (const size_t unsent = limiter_->Abandon(); unsent > 0) {
    spdlog::warn(
        "{} settlements not confirmed by the store at shutdown: their reservations "
        "stand as the charge",
        unsent);
  }
  // Requests still waiting on Redis get their store error now, on their own threads, before
  // those threads stop.
  if (stores_.redis) stores_.redis->Shutdown();
  StopWorkers();
  // Requests cut at the end of the grace period may have settled meanwhile (embedded store).
  if (!stores_.redis) flushed = usage_flush_->FlushAtShutdown() && flushed;
  if (!SaveBudgets()) return 1;
  return ExitCode(flushed);
}

void GatewayApp::StopWorkers() {
  for (auto& w : workers_) w->stop();
  for (auto& t : worker_threads_) t.join();
  worker_threads_.clear();
}

bool GatewayApp::SaveBudgets() {
  std::string error;
  if (stores_.memory && !stores_.memory->Flush(&error)) {
    spdlog::error("saving budgets at shutdown failed: {}", error);
    return false;
  }
  return true;
}

int GatewayApp::ExitCode(bool usage_flushed) {
  // What could not be written (and, with Redis, what requests cut at the grace's end recorded
  // after the last flush) waits in the journal for the next start.
  const size_t pending = usage_.PendingRows();
  std::string error;
  if (pending > 0 && stores_.usage_journal && usage_flush_->CommitJournal(&error)) {
    spdlog::warn("usage not written at shutdown: {} rows kept in the journal for the next start",
                 pending);
    usage_flushed = true;
  }
  if (!usage_flushed) {
    spdlog::error("usage could not be written at shutdown: {} rows lost", pending);
    // Local disk failing is this process's failure; Redis being down is not, and the gateway
    // still stops cleanly (the rows lost are in the log above).
    if (!stores_.redis) return 1;
  }
  spdlog::info("stopped");
  return 0;
}

}  // namespace trl
