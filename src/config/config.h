// The gateway's configuration: parsed once from YAML into immutable, validated structs.
// A Config is never modified after LoadConfig returns; a reload builds a new one and swaps a
// shared_ptr<const Config> snapshot. Per-request code only reads it.
#pragma once

#include <array>
#include <boost/json/fwd.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/host_port.h"
#include "common/journal.h"
#include "common/money.h"

namespace trl {

using Millis = std::chrono::milliseconds;
using Sha256 = std::array<uint8_t, 32>;

// An address range, "10.0.0.0/8" or "fd00::/8" (a bare address is the one host): IPv4 as
// IPv4-mapped IPv6, so one comparison serves both.
struct IpRange {
  std::array<uint8_t, 16> bytes{};
  int prefix_bits = 128;
  bool operator==(const IpRange&) const = default;
};

struct ServerConfig {
  int threads = 0;  // 0 = one per core
  uint64_t max_body_bytes = uint64_t{4} * 1024 * 1024;
  uint32_t max_header_bytes = 16 * 1024;
  Millis header_timeout{10'000};
  Millis idle_timeout{60'000};
  Millis shutdown_grace{30'000};
  size_t max_connections = 10'000;  // open client connections; more wait in the backlog
  // Clients whose X-Forwarded-* (and X-Real-IP, Forwarded) are believed: proxies in front of
  // the gateway. Anyone else's are dropped (IsTrustedProxy).
  std::vector<IpRange> trusted_proxies;
  // true: `listen` joins other processes' listeners on its port (SO_REUSEPORT: several gateways
  // on one host share the port and the kernel spreads connections). false: a port in use is a
  // failure to start.
  bool reuse_port = false;
};

struct AdminConfig {
  std::optional<HostPort> listen;  // absent: no admin listener
  std::string token;               // empty: every /admin/v1 route answers 401
};

enum class StoreBackend { kMemory, kRedis };
enum class OnStoreError { kAllow, kDeny };

struct RedisConfig {
  std::vector<std::string> urls;  // one URL: single node; several: cluster seed nodes
  Millis timeout{50};
};

struct StoreConfig {
  StoreBackend backend = StoreBackend::kMemory;
  std::string data_dir = "./data";
  RedisConfig redis;
  OnStoreError on_store_error = OnStoreError::kAllow;
  // A concurrency slot never released (a crashed instance) lapses this long after its request's
  // deadline (models[].request_timeout); settlements the store did not confirm are retried until
  // then (LimiterOptions::lease_ttl).
  Millis concurrency_lease_ttl{60 * 1000};
  // Keys made through the admin API are refused (503) while this instance has not synced them
  // from the store for longer than this: a revoke made meanwhile may not have reached it.
  Millis key_sync_max_stale{60 * 1000};
  // store.journal: the journal of budget changes (embedded store) and usage rows (both stores)
  // in data_dir/journal, committed every few milliseconds and synced to disk per this policy;
  // nullopt (`off`): none, and a crash forgets what changed since the last flush.
  std::optional<FsyncPolicy> journal = FsyncPolicy::kEverySecond;
};

struct UsageConfig {
  // Usage rows older than this are dropped (SQLite: by a scheduled task; Redis: by expiry).
  Millis retention{90LL * 24 * 3600 * 1000};
  // How often aggregated usage is written to the store (a SIGKILL loses at most this much).
  Millis flush_interval{1000};
};

struct MetricsConfig {
  // false: the per-key series (trl_requests_total, trl_tokens_total,
  // trl_ratelimit_rejections_total) have no `key` label, for installations with very many keys.
  bool key_label = true;
};

// The access log: one JSON line per data-plane request (docs/operations.md, "Access log").
struct AccessLogConfig {
  enum class Level { kInfo, kWarn, kError };
  // "stderr", "stdout", or a file the lines are appended to; empty: off.
  std::string output = "stderr";
  // kInfo: every request; kWarn: answers of 400 and above (and clients that left); kError: 5xx.
  Level level = Level::kInfo;
};

struct IdentityConfig {
  enum class Source { kApiKey, kHeader };
  Source source = Source::kApiKey;
  std::string header;  // lower-case header name when source == kHeader
  // kHeader: how many names that are not keys the header may bring (IdentityTable).
  size_t max_identities = 10'000;
  // Where the end user of a request is named, for limits with `scope: user`: this lower-case
  // header when set, else the body's OpenAI `user` field. A request naming none is the one
  // anonymous user "" (leaving the user out escapes no limit).
  std::string user_header;
};

struct BackendUrl {
  std::string url;  // as written, for logs and metrics labels
  std::string host;
  uint16_t port = 80;
  std::string base_path;  // "" or "/prefix" (no trailing slash), prepended to /v1/...
  std::string authority;  // "host:port": the key of its idle connections (ConnectionPool)
};

// What a request's media parts cost in prompt tokens: the gateway never decodes an image or a
// sound, so each part is charged this flat amount (set it to what the model's processor makes
// of one, e.g. a vision encoder's patch tokens).
// `audio_second`: per second of a transcription's audio (POST /v1/audio/transcriptions), by
// default 50, the positions a Whisper encoder makes of one second (1500 per 30 s window).
struct MediaTokens {
  int64_t image = 1024;
  int64_t audio = 1024;
  int64_t video = 4096;
  int64_t file = 1024;
  int64_t audio_second = 50;
};

struct ModelConfig {
  std::string name;
  std::vector<std::string> aliases;
  std::vector<BackendUrl> backends;
  // How prompts are counted for admission (limits/token_counter.h): "approx", a tokenizer.json
  // path, or "tiktoken:" and a rank file's path; with a file, chat_template ("" for none; llama2,
  // llama3, chatml) frames a chat's messages as the model's chat template does.
  std::string tokenizer = "approx";
  std::string chat_template;
  // The output cap per choice: reserved and sent when the request gives none, and the ceiling
  // a larger max_tokens is clamped to.
  int64_t max_output_tokens = 1024;
  MediaTokens media_tokens;
  // What its tokens cost, per million, in the config's currency (common/money.h). All 0 (no
  // `prices`): the model is free, and spend limits never hold back its requests.
  TokenPrices prices;
  // A prompt token the backend served from its cache (usage.prompt_tokens_details.cached_tokens)
  // counts against token limits as this fraction of a token, in millionths (1'000'000, the
  // default: a whole token; 250'000: a quarter), rounded up once per request.
  int64_t cached_token_weight = 1'000'000;
  // Paths the data plane forwards to this model's backends as they are, beyond its own routes
  // (which always win): authenticated and held to request and concurrency limits, never charged
  // tokens. "/v1/responses/*" ends in * to match every path under it.
  std::vector<std::string> passthrough;
  Millis timeout{120'000};          // the longest wait for the backend's next bytes
  Millis request_timeout{600'000};  // the longest a whole request may take (streams included)
};

// Whether `path` is one that `pattern` (a passthrough entry) names.
inline bool PassthroughMatches(std::string_view pattern, std::string_view path) {
  if (pattern.ends_with('*')) return path.starts_with(pattern.substr(0, pattern.size() - 1));
  return path == pattern;
}

enum class LimitKind { kTokens, kRequests, kConcurrent, kSpend };

// One budget: {tokens|requests|spend: amount, per: D [, reset: calendar]} or {concurrent: amount}.
// kSpend's amount is in nanos of the config's currency (common/money.h).
struct LimitConfig {
  LimitKind kind = LimitKind::kTokens;
  int64_t amount = 0;
  Millis per{0};          // 0 for kConcurrent
  bool calendar = false;  // fixed window aligned to UTC multiples of `per`
  std::string model;      // empty: applies to every model; else the canonical model name
  // `scope: user`: a budget per end user of the owner (key or tenant), as the request names it
  // (IdentityConfig::user_header), instead of one for the owner.
  bool per_user = false;

  bool operator==(const LimitConfig&) const = default;
};

// `queue: {max_wait: 10s, max_queued: 100}` on a key or tenant: a request its limits refuse
// waits up to max_wait for budget instead of a 429 (limits/wait_queue.h), while fewer than
// max_queued of the key's (the tenant's) requests wait on this instance. max_queued 0: no queue.
struct QueueConfig {
  Millis max_wait{0};
  uint32_t max_queued = 0;
  bool Enabled() const { return max_queued > 0; }
  bool operator==(const QueueConfig&) const = default;
};

struct TenantConfig {
  std::string name;
  std::vector<LimitConfig> limits;
  QueueConfig queue;
};

struct ApiKeyConfig {
  std::string name;
  Sha256 key_sha256{};
  std::string tenant;               // empty: none
  std::vector<std::string> models;  // canonical names; empty: every model
  std::vector<LimitConfig> limits;
  bool limits_set = false;  // false: default_limits apply
  QueueConfig queue;
  size_t key_length = 0;   // the plaintext `key`'s length (ConfigWarnings); 0: key_sha256
  int64_t expires_at = 0;  // Unix seconds from which the key is refused; 0: never
};

struct Config {
  HostPort listen{"0.0.0.0", 8080};
  // The currency of prices and spend limits (an ISO 4217 code, "USD"): a label only, in headers,
  // messages and usage answers; amounts are never converted.
  std::string currency = "USD";
  ServerConfig server;
  AdminConfig admin;
  StoreConfig store;
  IdentityConfig identity;
  UsageConfig usage;
  MetricsConfig metrics;
  AccessLogConfig access_log;
  std::vector<ModelConfig> models;
  std::vector<TenantConfig> tenants;
  std::vector<ApiKeyConfig> api_keys;
  std::vector<LimitConfig> default_limits;
};

// Looks up an environment variable for a ${VAR} reference in a config value.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

// Whether `address` ("192.0.2.7", "::1") is in server.trusted_proxies.
bool IsTrustedProxy(const ServerConfig& server, std::string_view address);
// "10.0.0.0/8", "fd00::/8", "127.0.0.1": nullopt when it is none of these.
std::optional<IpRange> ParseIpRange(std::string_view text);

// Reads and validates a config file. `env` looks up ${VAR}; by default the process environment.
// Returns the config, or every error found, each prefixed with its field path
// ("models[1].backends[0]: not a URL"). Never throws.
struct LoadResult {
  std::shared_ptr<const Config> config;  // null when errors is non-empty
  std::vector<std::string> errors;
};
LoadResult LoadConfigFile(const std::string& path);

// What a valid config probably gets wrong, one line each, naming the field ("admin.token: ..."):
// no admin token or an example one, a key secret shorter than kMinSecretLength, a model's
// max_output_tokens above a token limit that applies to it (a request without max_tokens could
// never fit), a backend URL ending in /v1. `--check-config` prints them and a start logs them;
// neither refuses the config. Never contains a secret.
inline constexpr size_t kMinSecretLength = 20;
std::vector<std::string> ConfigWarnings(const Config& config);

// The settings a reload does not apply (listeners, threads, timeouts, the store, usage, metrics
// labels: they are set up once at start) that differ between `running` and `next`, by field path
// ("server.threads"); empty when a reload applies everything that changed.
std::vector<std::string> RestartOnlyChanges(const Config& running, const Config& next);
LoadResult LoadConfigText(const std::string& yaml_text, const EnvLookup& env);

// A list of limits written as in the config, as JSON (the admin API's bodies, the keys kept in
// the store), read by the config's own parser with the config's rules and messages. With
// `models_from`, a limit's `model` must name one of its models or aliases and becomes the
// canonical name; without, it is taken as written. Errors are prefixed with `path`
// ("limits[0].per: ..."). Never throws.
struct LimitsParse {
  std::vector<LimitConfig> limits;
  std::vector<std::string> errors;
};
LimitsParse ParseLimitsJson(const boost::json::value& limits, const std::string& path,
                            const Config* models_from);

// A `queue` written as in the config, as JSON ({"max_wait": "10s", "max_queued": 100}): the admin
// API's bodies, the keys kept in the store. Errors are prefixed with `path`. Never throws.
struct QueueParse {
  QueueConfig queue;
  std::vector<std::string> errors;
};
QueueParse ParseQueueJson(const boost::json::value& queue, const std::string& path);

// API key names: 1-64 characters of A-Z a-z 0-9 _ - . not starting with '.', so a name is
// always one safe path segment.
bool IsValidKeyName(std::string_view name);

// Parses "250ms", "2s", "1m", "1h", "1d". Returns nullopt on anything else.
std::optional<Millis> ParseDuration(std::string_view text);
// Formats like OpenAI's reset headers: "1s", "6m0s", "250ms", "1h2m3s", "1.5s".
std::string FormatDuration(Millis d);
// The same, appended to `out` (every response's reset headers: no temporary strings).
void AppendDuration(std::string& out, Millis d);

}  // namespace trl
