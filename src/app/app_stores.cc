#include "app/app_stores.h"

#include <array>

namespace trl {
namespace {

using namespace std::chrono_literals;

// Admin-path Redis calls (keys, usage) move more data than a limiter call.
constexpr auto kAdminRedisTimeout = 2000ms;

bool OpenRedisStores(const Config& config, std::span<asio::io_context* const> io_threads,
                     AppStores& stores, std::string* error) {
  RedisStoreOptions options;
  options.client.urls = config.store.redis.urls;
  options.timeout = config.store.redis.timeout;
  // A lane per worker: its requests reach Redis without leaving their thread.
  std::string why;
  stores.redis = RedisStore::Create(std::move(options), &why, io_threads);
  if (!stores.redis) {
    *error = "store.redis.url: " + why;
    return false;
  }
  stores.budgets = stores.redis.get();
  stores.keys = MakeRedisKeyStore(stores.redis->Client(), kAdminRedisTimeout);
  stores.usage =
      MakeRedisUsageSink(stores.redis->Client(), config.usage.retention, kAdminRedisTimeout);
  return true;
}

bool OpenEmbeddedStores(const Config& config, AppStores& stores, std::string* error) {
  const std::string& dir = config.store.data_dir;
  std::string why;
  stores.memory = MemoryStore::Open(dir, &why, config.store.journal);
  if (stores.memory) stores.keys = OpenSqliteKeyStore(dir, &why);
  if (stores.keys) stores.usage = OpenSqliteUsageSink(dir, &why);
  if (!stores.usage) {
    *error = "store.data_dir: cannot open " + dir + ": " + why;
    return false;
  }
  stores.budgets = stores.memory.get();
  return true;
}

}  // namespace

bool OpenStores(const Config& config, std::span<asio::io_context* const> io_threads,
                AppStores& stores, std::string* error) {
  if (config.store.backend == StoreBackend::kMemory || config.store.journal) {
    const std::string& dir = config.store.data_dir;
    std::string why;
    stores.data_dir_lock = DirLock::Acquire(dir, &why);
    if (!stores.data_dir_lock) {
      *error = why.starts_with(DirLock::kInUse) ? "store.data_dir: " + dir + ": " + why +
                                                      "; each gateway needs a data_dir of its own"
                                                : "store.data_dir: cannot open " + dir + ": " + why;
      return false;
    }
  }
  const bool opened = config.store.backend == StoreBackend::kRedis
                          ? OpenRedisStores(config, io_threads, stores, error)
                          : OpenEmbeddedStores(config, stores, error);
  if (!opened || !config.store.journal) return opened;
  const std::string dir = config.store.data_dir + "/journal";
  std::string why;
  stores.usage_journal = Journal::Open(dir, "usage", *config.store.journal, "usage 1", &why);
  if (!stores.usage_journal) {
    *error = "store.journal: cannot open " + dir + ": " + why;
    return false;
  }
  return true;
}

void ObserveStoreLatency(MetricsRegistry& metrics, RedisStore& store) {
  auto& latency = metrics.AddHistogram("trl_store_latency_seconds",
                                       "Time a store operation took (Redis round trip included).",
                                       {"op"}, MetricsRegistry::LatencyBuckets());
  std::array<Histogram*, 4> by_op = {&latency.With({"admit"}), &latency.With({"settle"}),
                                     &latency.With({"read"}), &latency.With({"reset"})};
  store.SetLatencyObserver([by_op](RedisStore::Op op, double seconds, bool) {
    by_op[static_cast<size_t>(op)]->Observe(seconds);
  });
}

}  // namespace trl
