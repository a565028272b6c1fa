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
#include "common/clock.h"
#include "config/config.h"
#include "http/server.h"
#include "limits/limiter.h"
#include "limits/memory_store.h"
#include "metrics/metrics.h"
#include "proxy/errors.h"
#include "proxy/gateway.h"
#include "redis/redis_store.h"

namespace trl {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

constexpr auto kHealthInterval = 2s;
constexpr auto kHealthTimeout = 1s;
constexpr auto kFlushInterval = 1s;

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

}  // namespace

int RunGateway(const AppOptions& options) {
  LoadResult loaded = LoadConfigFile(options.config_path);
  if (!loaded.config) {
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.c_str());
    return 1;
  }
  std::shared_ptr<const Config> config = loaded.config;
  int threads = options.threads_override >= 0 ? options.threads_override : config->server.threads;
  if (threads <= 0) threads = std::max(1u, std::thread::hardware_concurrency());

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
    redis_store = RedisStore::Create(std::move(redis_options), &store_error);
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

  MetricsRegistry metrics;
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
  Gateway gateway(metrics, limiter, SystemClock::Instance());
  gateway.SetSnapshot(std::make_shared<GatewaySnapshot>(config));

  // Worker threads: one io_context each (the data plane). The control context (admin, signals,
  // health checks, flushes) runs on the main thread.
  std::vector<std::unique_ptr<asio::io_context>> workers;
  std::vector<asio::any_io_executor> executors;
  for (int i = 0; i < threads; ++i) {
    workers.push_back(std::make_unique<asio::io_context>(1));
    executors.push_back(workers.back()->get_executor());
  }
  asio::io_context control(1);

  http::Server data_server(
      executors, ServerOptionsFrom(*config),
      [&gateway](http::Request& req, http::ResponseWriter& w) { return gateway.Handle(req, w); },
      TransportErrorResponse);
  std::unique_ptr<http::Server> admin_server;
  std::unique_ptr<AdminApi> admin_api;

  auto reload = [&]() -> std::string {
    LoadResult next = LoadConfigFile(options.config_path);
    if (!next.config) {
      std::string all;
      for (const auto& e : next.errors) all += e + "\n";
      spdlog::error("reload failed; keeping the previous config:\n{}", all);
      return all;
    }
    auto previous = gateway.Snapshot();
    gateway.SetSnapshot(std::make_shared<GatewaySnapshot>(next.config, previous.get()));
    spdlog::info("config reloaded from {}", options.config_path);
    return "";
  };

  try {
    auto ep = data_server.Listen(config->listen.host, config->listen.port);
    std::printf("data plane listening on %s\n", Address(ep).c_str());
    if (config->admin.listen) {
      AdminHooks hooks;
      hooks.admin_token = [&gateway] { return gateway.Snapshot()->config->admin.token; };
      hooks.reload = reload;
      hooks.ready = [&limiter]() -> asio::awaitable<bool> {
        static const LimitConfig probe{LimitKind::kRequests, 1, Millis(1000), false, ""};
        LimitReadings r = co_await limiter.ReadKeyLimits("__readyz__", "", {&probe, 1});
        co_return r.ok;
      };
      hooks.models_json = [&gateway] { return ModelsJson(*gateway.Snapshot()); };
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

  // Budgets are saved off the I/O threads, every second.
  asio::steady_timer flush_timer(control);
  std::function<void()> schedule_flush = [&] {
    flush_timer.expires_after(kFlushInterval);
    flush_timer.async_wait([&](boost::system::error_code ec) {
      if (ec) return;
      std::string error;
      if (memory_store && !memory_store->Flush(&error)) {
        spdlog::error("saving budgets failed: {}", error);
      }
      schedule_flush();
    });
  };
  schedule_flush();

  // Signals: SIGHUP reloads; SIGTERM/SIGINT drain and stop.
  asio::signal_set signals(control, SIGTERM, SIGINT, SIGHUP);
  asio::steady_timer drain_timer(control);
  std::chrono::steady_clock::time_point drain_deadline;
  std::function<void()> wait_drained = [&] {
    if (data_server.ActiveRequests() == 0 || std::chrono::steady_clock::now() >= drain_deadline) {
      if (data_server.ActiveRequests() > 0) {
        spdlog::warn("shutdown grace over with {} requests in flight; stopping",
                     data_server.ActiveRequests());
      }
      control.stop();
      return;
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
      flush_timer.cancel();
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

  // Requests still waiting on Redis get their store error now, on their own threads, before
  // those threads stop.
  if (redis_store) redis_store->Shutdown();
  for (auto& w : workers) w->stop();
  for (auto& t : worker_threads) t.join();
  std::string error;
  if (memory_store && !memory_store->Flush(&error)) {
    spdlog::error("saving budgets at shutdown failed: {}", error);
    return 1;
  }
  spdlog::info("stopped");
  return 0;
}

}  // namespace trl
