// The stores the gateway keeps its state in, picked by store.backend: the budgets (the
// limiter's Store), the keys made through the admin API (KeyStore) and usage (UsageSink).
// Embedded: budgets in memory, saved to data_dir/limits.db, keys and usage in SQLite files
// beside it. Redis: budgets, keys and usage in Redis, shared by every instance. Both: the journal
// of usage rows not yet written (and, embedded, of budget changes) in data_dir/journal.
//
// Threading: opened once at startup on the main thread; each store states its own rules.
#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/dir_lock.h"
#include "common/journal.h"
#include "config/config.h"
#include "keys/key_store.h"
#include "limits/memory_store.h"
#include "limits/store.h"
#include "metrics/metrics.h"
#include "redis_store/redis_store.h"
#include "usage/usage.h"

namespace trl {

struct AppStores {
  // data_dir, locked while the process uses it (the embedded store, or the journal): a second
  // gateway on it would spend the same budgets and replay the same journal. Made first, so
  // destroyed last.
  std::unique_ptr<DirLock> data_dir_lock;
  std::unique_ptr<MemoryStore> memory;  // embedded only
  std::unique_ptr<RedisStore> redis;    // redis only
  Store* budgets = nullptr;             // whichever of the two is open
  std::unique_ptr<KeyStore> keys;
  std::unique_ptr<UsageSink> usage;
  std::unique_ptr<Journal> usage_journal;  // data_dir/journal/usage-*; null with store.journal off
  std::vector<std::string> left_behind;    // EmbeddedDataLeftBehind, logged by OpenStores
};

// Opens the stores `config.store` names. Redis is connected in the background: the gateway
// starts without it (/readyz says when it answers; until then decisions follow
// store.on_store_error), and each of `io_threads` gets a lane to it (RedisStore::Create); they
// must outlive the stores. False and *error (naming the config field) when a store cannot be
// opened: an unusable Redis URL, a data_dir that cannot be read or written or that another
// process holds (DirLock).
bool OpenStores(const Config& config, std::span<asio::io_context* const> io_threads,
                AppStores& stores, std::string* error);

// With store.backend: redis, what data_dir still holds of the embedded store: API-made keys in
// keys.db and usage rows in usage.db, which this gateway neither serves nor counts. One line per
// file that holds any, saying how to move them (docs/redis.md); empty otherwise, and on the
// embedded store. Reads the files only if they exist (blocking: call it at start).
std::vector<std::string> EmbeddedDataLeftBehind(const Config& config);

// trl_store_latency_seconds{op}: every Redis store operation's round trip. Before the first
// operation; `metrics` must outlive the store.
void ObserveStoreLatency(MetricsRegistry& metrics, RedisStore& store);

}  // namespace trl
