#include "app/gateway_app.h"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <array>
#include <cstdio>
#include <thread>

#include "admin/admin_api.h"
#include "app/health_checker.h"
#include "app/scheduler.h"
#include "common/clock.h"
#include "config/config.h"
#include "http/server.h"
#include "keys/key_directory.h"
#include "keys/key_store.h"
#include "limits/limiter.h"
#include "limits/memory_store.h"
#include "metrics/metrics.h"
#include "proxy/errors.h"
#include "proxy/gateway.h"
#include "proxy/request_fields.h"
#include "redis_store/redis_store.h"
#include "usage/usage.h"

namespace trl {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

constexpr auto kHealthInterval = 2s;
constexpr auto kHealthTimeout = 1s;
constexpr auto kBudgetFlushInterval = 1s;
// Another instance's key change (a revoke above all) takes effect here within this.
constexpr auto kKeySyncInterval = 250ms;
constexpr auto kRetentionInterval = 1h;
// After the shutdown grace, how long the requests cut then have to settle and be recorded.
constexpr auto kCutGrace = 5s;
// Admin-path Redis calls (keys, usage) move more data than a limiter call.
constexpr auto kAdminRedisTimeout = 2000ms;

// Runs a coroutine to completion on a private io_context (startup and shutdown only).
template <typename T>
T RunToCompletion(asio::awaitable<T> awaitable) {
  asio::io_context io;
  T value{};
  asio::co_spawn(io, std::move(awaitable), [&](std::exception_ptr e, T v) {
    if (!e) value = std::move(v);
  });
  io.run();
  return value;
}

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
  return o;
}

std::string ModelsJson(const GatewaySnapshot& snap) {
  boost::json::array models;
  for (const Model& m : snap.models.Models()) {
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
    models.push_back(std::move(model));
  }
  boost::json::object root;
  root["data"] = std::move(models);
  return boost::json::serialize(root);
}

// The final usage flush: a store that is reconnecting (Redis back after an outage) gets two
// seconds before the rows are given up.
template <typename Flush>
asio::awaitable<bool> FlushPatiently(Flush& flush) {
  constexpr auto kPause = 250ms;
  constexpr int kAttempts = 8;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (int attempt = 1;; ++attempt) {
    bool ok = co_await flush();
    if (ok || attempt == kAttempts) co_return ok;
    timer.expires_after(kPause);
    co_await timer.async_wait(asio::use_awaitable);
  }
}

}  // namespace

int RunGateway(const AppOptions& options) {
  LoadResult loaded = LoadConfigFile(options.config_path);
  if (!loaded.config) {
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.c_str());
    return 1;
  }
  std::shared_ptr<const Config> config = loaded.config;
  // spdlog's registry is made on first use; made here, before other threads log, so that
  // ThreadSanitizer (which cannot see the guard of that construction inside the library) does
  // not take two threads' first log lines for a race.
  spdlog::default_logger_raw();
  int threads = options.threads_override >= 0 ? options.threads_override : config->server.threads;
  if (threads <= 0) threads = std::max(1u, std::thread::hardware_concurrency());

  // Worker threads: one io_context each (the data plane). The control context (admin, signals,
  // health checks, flushes) runs on the main thread. A worker's sockets and timers (its Redis
  // lane's too) are used only on its own thread (other threads only post to it), so its reactor
  // needs no per-socket locks (UNSAFE_IO: ~3% of the gateway's CPU per request); the scheduler
  // stays locked for the posts. Made before the store, so that they outlive it.
  std::vector<std::unique_ptr<asio::io_context>> workers;
  std::vector<asio::any_io_executor> executors;
  for (int i = 0; i < threads; ++i) {
    workers.push_back(std::make_unique<asio::io_context>(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO));
    executors.push_back(workers.back()->get_executor());
  }

  // The store: embedded (memory, saved to data_dir) or Redis (shared by every instance). Redis
  // is connected in the background: the gateway starts without it and /readyz says when it
  // answers; until then decisions follow store.on_store_error.
  std::string store_error;
  std::unique_ptr<MemoryStore> memory_store;
  std::unique_ptr<RedisStore> redis_store;
  Store* store = nullptr;
  if (config->store.backend == StoreBackend::kRedis) {
    RedisStoreOptions redis_options;
    redis_options.client.urls = config->store.redis.urls;
    redis_options.timeout = config->store.redis.timeout;
    // A lane per worker: its requests reach Redis without leaving their thread.
    std::vector<asio::io_context*> io_threads;
    for (auto& w : workers) io_threads.push_back(w.get());
    redis_store = RedisStore::Create(std::move(redis_options), &store_error, io_threads);
    if (!redis_store) {
      spdlog::error("store.redis.url: {}", store_error);
      return 1;
    }
    store = redis_store.get();
  } else {
    memory_store = MemoryStore::Open(config->store.data_dir, &store_error);
    if (!memory_store) {
      spdlog::error("store.data_dir: cannot open {}: {}", config->store.data_dir, store_error);
      return 1;
    }
    store = memory_store.get();
  }

  // Keys made through the admin API and usage records live beside the budgets: in data_dir
  // (SQLite) for the embedded store, in Redis (shared by every instance) otherwise.
  std::unique_ptr<KeyStore> key_store;
  std::unique_ptr<UsageSink> usage_sink;
  if (redis_store) {
    key_store = MakeRedisKeyStore(redis_store->Client(), kAdminRedisTimeout);
    usage_sink = MakeRedisUsageSink(redis_store->Client(), config->usage.retention,
                                    kAdminRedisTimeout);
  } else {
    key_store = OpenSqliteKeyStore(config->store.data_dir, &store_error);
    if (key_store) usage_sink = OpenSqliteUsageSink(config->store.data_dir, &store_error);
    if (!key_store || !usage_sink) {
      spdlog::error("store.data_dir: cannot open {}: {}", config->store.data_dir, store_error);
      return 1;
    }
  }
  KeyDirectory keys(*key_store);
  if (!redis_store) {
    // Embedded: the keys are on local disk; a failure to read them is a failure to start.
    std::string error;
    bool loaded = RunToCompletion(keys.Sync(true, &error));
    if (!loaded) {
      spdlog::error("cannot load API keys: {}", error);
      return 1;
    }
  }
  UsageRecorder usage;

  MetricsRegistry metrics;
  if (!config->metrics.key_label) metrics.DropLabel("key");
  if (redis_store) {
    auto& latency = metrics.AddHistogram(
        "trl_store_latency_seconds", "Time a store operation took (Redis round trip included).",
        {"op"}, MetricsRegistry::LatencyBuckets());
    std::array<Histogram*, 4> by_op = {&latency.With({"admit"}), &latency.With({"settle"}),
                                       &latency.With({"read"}), &latency.With({"reset"})};
    redis_store->SetLatencyObserver([by_op](RedisStore::Op op, double seconds, bool) {
      by_op[static_cast<size_t>(op)]->Observe(seconds);
    });
  }
  LimiterOptions limiter_options;
  limiter_options.lease_ttl = config->store.concurrency_lease_ttl;
  Limiter limiter(*store, SystemClock::Instance(), limiter_options);
  Gateway gateway(metrics, limiter, SystemClock::Instance(), &keys, &usage);
  gateway.SetSnapshot(std::make_shared<GatewaySnapshot>(config));

  // Scheduled work, on its own thread.
  Scheduler scheduler(metrics, SystemClock::Instance());
  // Pending usage goes to the sink in one batch; on failure it is kept for the next run.
  auto flush_usage = [&]() -> asio::awaitable<bool> {
    std::vector<UsageRow> rows = usage.TakePending();
    if (rows.empty()) co_return true;
    std::string error;
    bool ok = co_await usage_sink->Write(rows, &error);
    if (!ok) {
      spdlog::error("writing {} usage rows failed (kept for the next flush): {}", rows.size(),
                    error);
      usage.Restore(std::move(rows));
    }
    co_return ok;
  };
  scheduler.Add("usage_flush", config->usage.flush_interval, flush_usage);
  // Logged when it starts failing and when it recovers, not four times a second.
  bool key_sync_failing = false;
  scheduler.Add("key_sync", kKeySyncInterval, [&]() -> asio::awaitable<bool> {
    std::string error;
    bool ok = co_await keys.Sync(false, &error);
    if (!ok && !key_sync_failing) {
      spdlog::warn("key sync failed: {}; the keys loaded last stay in force", error);
    } else if (ok && key_sync_failing) {
      spdlog::info("key sync works again");
    }
    key_sync_failing = !ok;
    co_return ok;
  });
  if (memory_store) {
    scheduler.Add("budget_flush", kBudgetFlushInterval, [&]() -> asio::awaitable<bool> {
      std::string error;
      bool ok = memory_store->Flush(&error);
      if (!ok) spdlog::error("saving budgets failed: {}", error);
      co_return ok;
    });
    // Redis expires old usage itself; SQLite rows are dropped here.
    scheduler.Add("usage_retention", kRetentionInterval, [&]() -> asio::awaitable<bool> {
      const int64_t now = SystemClock::Instance().NowMicros() / 1'000'000;
      const int64_t before = now - config->usage.retention.count() / 1000;
      int64_t removed = 0;
      std::string error;
      bool ok = co_await usage_sink->DropBefore(before, &removed, &error);
      if (!ok) {
        spdlog::error("usage retention failed: {}", error);
      } else if (removed > 0) {
        spdlog::info("usage retention: {} rows older than {} dropped", removed,
                     FormatDuration(config->usage.retention));
      }
      co_return ok;
    });
  }

  asio::io_context control(1);

  http::Server data_server(
      executors, ServerOptionsFrom(*config),
      [&gateway](http::Request& req, http::ResponseWriter& w) { return gateway.Handle(req, w); },
      TransportErrorResponse);
  std::unique_ptr<http::Server> admin_server;
  std::unique_ptr<AdminApi> admin_api;

  auto reload = [&]() -> ReloadOutcome {
    LoadResult next = LoadConfigFile(options.config_path);
    if (!next.config) {
      std::string all;
      for (const auto& e : next.errors) all += e + "\n";
      spdlog::error("reload failed; keeping the previous config:\n{}", all);
      return {all, {}};
    }
    // A config key named like an API-made key would share its budgets and usage rows (the
    // admin API refuses to make such a key; a reload must not make the pair either).
    std::string clashes;
    const auto managed = keys.Current();
    for (const ApiKeyConfig& key : next.config->api_keys) {
      if (managed->by_name.contains(key.name)) {
        clashes += "api_keys: '" + key.name +
                   "' is the name of a key made through the admin API; rename one of them\n";
      }
    }
    if (!clashes.empty()) {
      spdlog::error("reload failed; keeping the previous config:\n{}", clashes);
      return {clashes, {}};
    }
    auto previous = gateway.Snapshot();
    gateway.SetSnapshot(std::make_shared<GatewaySnapshot>(next.config, previous.get()));
    spdlog::info("config reloaded from {}", options.config_path);
    // Compared with the config the process started with: those settings were applied then.
    std::vector<std::string> pending = RestartOnlyChanges(*config, *next.config);
    if (!pending.empty()) {
      spdlog::warn("changed settings that take effect at the next restart: {}",
                   fmt::join(pending, ", "));
    }
    return {"", std::move(pending)};
  };

  try {
    auto ep = data_server.Listen(config->listen.host, config->listen.port);
    std::printf("data plane listening on %s\n", Address(ep).c_str());
    if (config->admin.listen) {
      AdminHooks hooks;
      hooks.admin_token = [&gateway] { return gateway.Snapshot()->config->admin.token; };
      hooks.reload = reload;
      hooks.ready = [&limiter, &keys]() -> asio::awaitable<bool> {
        static const LimitConfig probe{LimitKind::kRequests, 1, Millis(1000), false, ""};
        LimitReadings r = co_await limiter.ReadKeyLimits("__readyz__", "", {&probe, 1});
        // Not ready before the API-made keys are loaded: they would get 401.
        co_return r.ok && keys.Current()->version >= 0;
      };
      hooks.models_json = [&gateway] { return ModelsJson(*gateway.Snapshot()); };
      hooks.snapshot = [&gateway] { return gateway.Snapshot(); };
      hooks.keys = &keys;
      hooks.limiter = &limiter;
      hooks.clock = &SystemClock::Instance();
      // On the scheduler's thread, after this instance's pending usage is written: the answer
      // includes every request this instance has settled.
      hooks.usage = [&](const UsageQuery& query) -> asio::awaitable<UsageResult> {
        // Built into locals: GCC 12 mishandles non-trivial temporaries inside co_await.
        std::function<asio::awaitable<UsageResult>()> work =
            [&flush_usage, &usage_sink, query]() -> asio::awaitable<UsageResult> {
          co_await flush_usage();
          UsageResult r = co_await usage_sink->Query(query);
          co_return r;
        };
        UsageResult result = co_await scheduler.Run<UsageResult>(std::move(work));
        co_return result;
      };
      admin_api = std::make_unique<AdminApi>(metrics, std::move(hooks));
      admin_server = std::make_unique<http::Server>(
          std::vector<asio::any_io_executor>{control.get_executor()}, http::ServerOptions{},
          [api = admin_api.get()](http::Request& req, http::ResponseWriter& w) {
            return api->Handle(req, w);
          },
          TransportErrorResponse);
      auto aep = admin_server->Listen(config->admin.listen->host, config->admin.listen->port);
      std::printf("admin listening on %s\n", Address(aep).c_str());
    }
    std::fflush(stdout);
  } catch (const std::exception& e) {
    spdlog::error("cannot listen: {}", e.what());
    return 1;
  }
  data_server.Start();
  if (admin_server) admin_server->Start();

  asio::co_spawn(
      control,
      RunHealthChecks([&gateway] { return gateway.Snapshot()->models.AllBackends(); },
                      kHealthInterval, kHealthTimeout),
      asio::detached);

  scheduler.Start();

  // Signals: SIGHUP reloads; SIGTERM/SIGINT drain and stop.
  asio::signal_set signals(control, SIGTERM, SIGINT, SIGHUP);
  asio::steady_timer drain_timer(control);
  std::chrono::steady_clock::time_point drain_deadline;
  // Drained: no request in flight, and none still settling with the store. When the grace is
  // over, the requests still in flight are cut (streams end with an error event), and settled
  // and recorded for what they relayed; the cut gets kCutGrace to do that.
  bool cut = false;
  std::function<void()> wait_drained = [&] {
    const bool drained = data_server.ActiveRequests() == 0 && limiter.PendingSettlements() == 0;
    if (drained) {
      control.stop();
      return;
    }
    if (std::chrono::steady_clock::now() >= drain_deadline) {
      if (cut) {
        spdlog::warn("{} requests still in flight, {} settling after the cut; stopping",
                     data_server.ActiveRequests(), limiter.PendingSettlements());
        control.stop();
        return;
      }
      cut = true;
      spdlog::warn("shutdown grace over: cutting {} requests in flight ({} settling)",
                   data_server.ActiveRequests(), limiter.PendingSettlements());
      data_server.CutInFlight();
      drain_deadline = std::chrono::steady_clock::now() + kCutGrace;
    }
    drain_timer.expires_after(10ms);
    drain_timer.async_wait([&](boost::system::error_code ec) {
      if (!ec) wait_drained();
    });
  };
  std::function<void()> wait_signal = [&] {
    signals.async_wait([&](boost::system::error_code ec, int signo) {
      if (ec) return;
      if (signo == SIGHUP) {
        reload();
        wait_signal();
        return;
      }
      spdlog::info("signal {}: draining {} requests (grace {})", signo,
                   data_server.ActiveRequests(), FormatDuration(config->server.shutdown_grace));
      data_server.StopAccepting();
      if (admin_server) admin_server->StopAccepting();
      drain_deadline = std::chrono::steady_clock::now() + config->server.shutdown_grace;
      wait_drained();
    });
  };
  wait_signal();

  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  std::vector<std::thread> worker_threads;
  for (auto& w : workers) {
    guards.push_back(asio::make_work_guard(*w));
    worker_threads.emplace_back([ctx = w.get()] { ctx->run(); });
  }
  control.run();

  // Drained: every settled request's usage is in the recorder. Write it while Redis is still
  // connected.
  scheduler.Stop();
  bool flushed = RunToCompletion(FlushPatiently(flush_usage));
  // Settlements the store has not confirmed by now are given up: their reservations stand.
  if (const size_t unsent = limiter.Abandon(); unsent > 0) {
    spdlog::warn("{} settlements not confirmed by the store at shutdown: their reservations "
                 "stand as the charge",
                 unsent);
  }
  // Requests still waiting on Redis get their store error now, on their own threads, before
  // those threads stop.
  if (redis_store) redis_store->Shutdown();
  for (auto& w : workers) w->stop();
  for (auto& t : worker_threads) t.join();
  // Requests cut at the end of the grace period may have settled meanwhile (embedded store).
  if (!redis_store) flushed = RunToCompletion(FlushPatiently(flush_usage)) && flushed;
  std::string error;
  if (memory_store && !memory_store->Flush(&error)) {
    spdlog::error("saving budgets at shutdown failed: {}", error);
    return 1;
  }
  if (!flushed) {
    spdlog::error("usage could not be written at shutdown: {} rows lost", usage.PendingRows());
    // Local disk failing is this process's failure; Redis being down is not, and the gateway
    // still stops cleanly (the rows lost are in the log above).
    if (!redis_store) return 1;
  }
  spdlog::info("stopped");
  return 0;
}

}  // namespace trl
