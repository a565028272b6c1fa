#include "app/app_stores.h"

#include <spdlog/spdlog.h>

#include <array>
#include <filesystem>

#include "common/sqlite.h"

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
  stores.left_behind = EmbeddedDataLeftBehind(config);
  for (const std::string& warning : stores.left_behind) spdlog::warn("{}", warning);
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

namespace {

// The rows of `table` in data_dir/`file`; 0 when the file is missing or cannot be read.
int64_t RowsIn(const std::string& dir, const char* file, const std::string& table) {
  if (!std::filesystem::exists(std::filesystem::path(dir) / file)) return 0;
  std::optional<sqlite::Database> db = sqlite::Database::Open(dir, file, nullptr);
  sqlite::Statement count;
  const std::string sql = "SELECT count(*) FROM " + table;
  if (!db || !count.Prepare(*db, sql.c_str(), nullptr) ||
      count.Next() != sqlite::Statement::Step::kRow) {
    return 0;
  }
  return count.Int(0);
}

}  // namespace

std::vector<std::string> EmbeddedDataLeftBehind(const Config& config) {
  std::vector<std::string> left;
  if (config.store.backend != StoreBackend::kRedis) return left;
  const std::string& dir = config.store.data_dir;
  const std::string move =
      "; this gateway is on Redis and does not serve them (to move them: "
      "docs/redis.md, \"Moving from the embedded store\")";
  if (int64_t keys = RowsIn(dir, "keys.db", "keys"); keys > 0) {
    left.push_back("store: " + dir + "/keys.db holds " + std::to_string(keys) +
                   " keys made through the admin API on the embedded store" + move);
  }
  if (int64_t rows = RowsIn(dir, "usage.db", "usage"); rows > 0) {
    left.push_back("store: " + dir + "/usage.db holds " + std::to_string(rows) +
                   " usage rows of the embedded store" + move);
  }
  return left;
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
