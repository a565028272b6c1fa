#include "app/copy_store.h"

#include <algorithm>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <optional>

#include "common/dir_lock.h"
#include "common/redis_url.h"
#include "common/run_to_completion.h"
#include "config/config.h"
#include "keys/key_store.h"
#include "redis/redis_client.h"
#include "usage/usage.h"

namespace trl {
namespace {

using namespace std::chrono_literals;

constexpr auto kTimeout = 10'000ms;  // one Redis call of the copy (a page, an hour of usage)
constexpr int kConnectTries = 40;    // 250 ms apart: a Redis that answers within 10 s
constexpr int64_t kMaxUsageRangeSeconds = int64_t{400} * 86'400;  // what a usage query may span

// One side of the copy: its key store and usage sink, and the Redis client under them.
struct Side {
  std::string name;  // "Redis redis://...", "the embedded store in DIR": never a password
  std::unique_ptr<DirLock> lock;  // embedded: the data_dir, as a gateway holds it
  std::unique_ptr<redis::RedisClient> client;
  std::unique_ptr<KeyStore> keys;
  std::unique_ptr<UsageSink> usage;
};

std::optional<Side> Open(const Config& config, std::string* error) {
  Side side;
  if (config.store.backend != StoreBackend::kRedis) {
    const std::string& dir = config.store.data_dir;
    side.name = "the embedded store in " + dir;
    // A gateway running on it would go on writing what is being copied.
    side.lock = DirLock::Acquire(dir, error);
    if (!side.lock) {
      *error = dir + ": " + *error;
      return std::nullopt;
    }
    side.keys = OpenSqliteKeyStore(dir, error);
    if (side.keys) side.usage = OpenSqliteUsageSink(dir, error);
    if (!side.usage) return std::nullopt;
    return side;
  }
  redis::ClientOptions options;
  options.urls = config.store.redis.urls;
  side.client = redis::RedisClient::Create(options, error);
  if (!side.client) return std::nullopt;
  side.client->Start();
  auto url = ParseRedisUrl(config.store.redis.urls.front(), nullptr);
  side.name = "Redis " + (url ? url->Redacted() : std::string("(unreadable URL)"));
  side.keys = MakeRedisKeyStore(*side.client, kTimeout);
  side.usage = MakeRedisUsageSink(*side.client, config.usage.retention, kTimeout);
  return side;
}

// True once the side's key store answers (a Redis still connecting is waited for).
asio::awaitable<bool> Answers(Side& side) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (int i = 0; i < kConnectTries; ++i) {
    if (co_await side.keys->Version()) co_return true;
    timer.expires_after(250ms);
    co_await timer.async_wait(asio::use_awaitable);
  }
  co_return false;
}

struct Copied {
  std::string error;  // empty: copied
  size_t keys = 0;
  size_t usage_rows = 0;
};

// Every API-made key and every usage row in [from, to) of `source`, into an empty `target`.
asio::awaitable<Copied> Copy(Side& source, Side& target, int64_t from, int64_t to) {
  Copied out;
  for (Side* side : {&source, &target}) {
    if (!co_await Answers(*side)) {
      out.error = side->name + " does not answer";
      co_return out;
    }
  }
  UsageQuery range;
  range.from = from;
  range.to = to;
  range.group_by.user = true;  // every row as stored: one per end user
  KeyStore::Loaded there = co_await target.keys->LoadAll();
  UsageResult there_usage = co_await target.usage->Query(range);
  if (!there.ok || !there_usage.ok) {
    out.error = target.name + ": " + (there.ok ? there_usage.error : there.error);
    co_return out;
  }
  if (!there.keys.empty() || !there_usage.rows.empty()) {
    out.error = target.name + " already holds " + std::to_string(there.keys.size()) +
                " API-made keys and " + std::to_string(there_usage.rows.size()) +
                " usage rows: copy into an empty store (usage rows would add up)";
    co_return out;
  }
  KeyStore::Loaded keys = co_await source.keys->LoadAll();
  UsageResult usage = co_await source.usage->Query(range);
  if (!keys.ok || !usage.ok) {
    out.error = source.name + ": " + (keys.ok ? usage.error : keys.error);
    co_return out;
  }
  for (const KeyRecord& record : keys.keys) {
    KeyStore::Written written = co_await target.keys->Create(record);
    if (written.status != KeyStore::WriteStatus::kOk) {
      out.error = target.name + ": the key '" + record.key.name + "' could not be written";
      co_return out;
    }
    ++out.keys;
  }
  std::string why;
  if (!usage.rows.empty() && !co_await target.usage->Write(usage.rows, &why)) {
    out.error = target.name + ": usage: " + why;
    co_return out;
  }
  out.usage_rows = usage.rows.size();
  co_return out;
}

std::shared_ptr<const Config> Load(const std::string& path, const char* flag) {
  LoadResult loaded = LoadConfigFile(path);
  for (const std::string& e : loaded.errors) std::fprintf(stderr, "%s: %s\n", flag, e.c_str());
  return loaded.config;
}

bool SameStore(const Config& a, const Config& b) {
  if (a.store.backend != b.store.backend) return false;
  return a.store.backend == StoreBackend::kRedis ? a.store.redis.urls == b.store.redis.urls
                                                 : a.store.data_dir == b.store.data_dir;
}

}  // namespace

int CopyStoreCommand(const std::string& from_config, const std::string& to_config) {
  std::shared_ptr<const Config> from = Load(from_config, "--from");
  std::shared_ptr<const Config> to = Load(to_config, "--to");
  if (!from || !to) return 2;
  if (SameStore(*from, *to)) {
    std::fprintf(stderr, "copy-store: --from and --to name the same store\n");
    return 1;
  }
  std::string error;
  std::optional<Side> source = Open(*from, &error);
  std::optional<Side> target = source ? Open(*to, &error) : std::nullopt;
  if (!target) {
    std::fprintf(stderr, "copy-store: %s\n", error.c_str());
    return 1;
  }
  // FROM's retention back from the next hour, at most the 400 days a usage query may span.
  const int64_t until = std::time(nullptr) / 3600 * 3600 + 3600;
  const int64_t span = std::min<int64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(from->usage.retention).count() + 3600,
      kMaxUsageRangeSeconds);
  Copied copied = RunToCompletion(Copy(*source, *target, until - span, until));
  for (Side* side : {&*source, &*target}) {
    if (side->client) side->client->Shutdown();
  }
  if (!copied.error.empty()) {
    std::fprintf(stderr, "copy-store: %s\n", copied.error.c_str());
    return 1;
  }
  std::printf("copied %zu API-made keys and %zu usage rows from %s to %s\n", copied.keys,
              copied.usage_rows, source->name.c_str(), target->name.c_str());
  return 0;
}

}  // namespace trl
