// The data plane: every /v1 request goes through Gateway::Handle, which runs the life of a
// request (docs/architecture/system-design.md): parse -> authenticate -> admit -> forward ->
// relay -> settle -> record, one function per step. Forwarding and relaying are the Upstream's
// (upstream.h; production's is PooledUpstream, upstream_exchange.cc).
//
// Threading: Handle runs on the connection's I/O thread; any number run at once on every
// thread. SetSnapshot may be called from any thread (config reload); requests already running
// keep the snapshot they started with.
#pragma once

#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/clock.h"
#include "config/config.h"
#include "http/server.h"
#include "limits/limiter.h"
#include "limits/token_counter.h"
#include "limits/wait_queue.h"
#include "metrics/metrics.h"
#include "models/model_registry.h"
#include "proxy/access_log.h"
#include "proxy/authenticator.h"
#include "proxy/errors.h"
#include "proxy/identity_table.h"
#include "proxy/request_fields.h"
#include "proxy/upstream.h"
#include "usage/usage.h"

namespace trl {

namespace asio = boost::asio;

// Everything derived from one config: swapped as a whole on reload.
struct GatewaySnapshot {
  // Loads each model's tokenizer once per (tokenizer, chat_template), or keeps `previous`'s
  // counter for a setting it had (a tokenizer file is read again at a restart or when a setting
  // names it anew). Throws std::runtime_error ("models[i].tokenizer: FILE: what is wrong").
  explicit GatewaySnapshot(std::shared_ptr<const Config> config,
                           const GatewaySnapshot* previous = nullptr);
  std::shared_ptr<const Config> config;
  ModelRegistry models;
  Authenticator auth;
  std::unordered_map<std::string, std::shared_ptr<const TokenCounter>> counters;  // by model
};

// The metrics the data plane keeps (docs/operations.md, "Metrics"), declared in one place.
struct GatewayMetrics {
  explicit GatewayMetrics(MetricsRegistry& registry);
  Family<Counter>& requests;         // {model, key, tenant, status}
  Family<Counter>& tokens;           // {model, key, tenant, kind}
  Family<Counter>& rejections;       // {model, key, tenant, limit, scope}
  Family<Histogram>& duration;       // {model}
  Family<Histogram>& ttft;           // {model}
  Family<Histogram>& overhead;       // {}
  Family<Gauge>& inflight;           // {model}
  Family<Gauge>& streams;            // {model}: streamed answers being relayed
  Family<Counter>& upstream_errors;  // {model, backend, reason}
  Family<Counter>& usage_invalid;    // {model}: backend usage out of range, not trusted
  Family<Counter>& store_decisions;  // {decision}: on_store_error applied (allow|deny)
  Family<Counter>& queue_outcomes;   // {key, tenant, outcome}: waits for budget, how they ended
  Family<Histogram>& queue_wait;     // {}
  // Read at scrape time: trl_backend_up, and the limiter's decision and store-error counters.
};

class Gateway {
 public:
  // `keys` (API-made keys) and `usage` (accounting) may be null: none / not recorded.
  // `upstream` null: a PooledUpstream of the Gateway's own (the I/O threads' pools). All must
  // outlive the Gateway.
  Gateway(MetricsRegistry& metrics, Limiter& limiter, const Clock& clock,
          const KeyDirectory* keys = nullptr, UsageRecorder* usage = nullptr,
          Upstream* upstream = nullptr);

  void SetSnapshot(std::shared_ptr<const GatewaySnapshot> snapshot);
  // Before serving; null (the default): no access log. Must outlive the Gateway's requests.
  void SetAccessLog(AccessLog* log) { access_log_ = log; }
  std::shared_ptr<const GatewaySnapshot> Snapshot() const { return snapshot_.load(); }

  asio::awaitable<void> Handle(http::Request& request, http::ResponseWriter& writer);

  GatewayMetrics& Metrics() { return metrics_; }
  // Appends the scrape-time series (backend health, limiter decisions, store errors).
  void RenderStateMetrics(std::string& out) const;

 private:
  // Who is calling; nullopt and *refusal (the answer to send) when the caller is refused.
  std::optional<Identity> Authenticate(const GatewaySnapshot& snap, const http::Request& request,
                                       ApiError* refusal) const;
  // The series every admitted request of (model, key) writes, looked up in the registry once
  // per thread and then kept (Family::With builds a label vector and takes a shared lock).
  struct RequestSeries {
    Counter* ok = nullptr;  // trl_requests_total{status="200"}
    Counter* prompt = nullptr;
    Counter* completion = nullptr;
    Histogram* duration = nullptr;
    Histogram* ttft = nullptr;
    Gauge* inflight = nullptr;
    Gauge* streams = nullptr;
  };
  RequestSeries& SeriesFor(const std::string& model, const Identity& identity);
  asio::awaitable<void> HandleModels(const GatewaySnapshot& snap, http::Request& request,
                                     http::ResponseWriter& writer, AccessRecord& record);
  // Writes the request's access-log line itself, when it is over.
  asio::awaitable<void> HandleInference(const GatewaySnapshot& snap, ApiEndpoint endpoint,
                                        http::Request& request, http::ResponseWriter& writer,
                                        AccessRecord& record);
  // The access-log line's fields known on arrival.
  AccessRecord NewRecord(const http::Request& request, const http::ResponseWriter& writer) const;
  // The error answer, its status and code noted in `record`.
  static http::Response Fail(AccessRecord& record, ApiError error, std::string_view message = {},
                             std::string_view param = {});
  void Log(AccessRecord& record) const;  // total_us, if not set, from the arrival on the clock
  class LogWhenDone;
  // HandleInference's steps, on the request's state; each returns the error answer that ends
  // the request there, if any.
  struct Inference;
  // What a request cost: its tokens (cached: those of the prompt the backend had cached), what
  // token limits are charged (cached tokens at the model's weight) and its price in nanos.
  struct Cost {
    int64_t prompt = 0;
    int64_t completion = 0;
    int64_t cached = 0;
    Amounts charged;
  };
  static Cost Priced(const ModelConfig& model, int64_t prompt, int64_t completion, int64_t cached);
  void CountStatus(const Inference& in, std::string_view model, unsigned status);
  std::optional<http::Response> Parse(Inference& in, http::Request& request);
  asio::awaitable<void> CountPrompt(Inference& in, size_t body_bytes);
  std::optional<http::Response> ReadFields(Inference& in, http::Request& request);
  std::optional<http::Response> FindPassthroughModel(Inference& in, http::Request& request);
  asio::awaitable<void> Admit(Inference& in, http::ResponseWriter& writer);
  std::optional<http::Response> Refusal(Inference& in, const asio::any_io_executor& executor);
  http::Response RateLimited(Inference& in);
  static ExchangeRequest MakeExchange(Inference& in, http::Request& request);
  static Cost CostOf(const Inference& in, const ExchangeResult& result);
  static Amounts Reserve(const Inference& in);
  http::Response SpendTooLarge(Inference& in);
  static int64_t PromptCost(const Inference& in, const ExchangeResult& result);
  void Record(Inference& in, RequestSeries& series, const ExchangeResult& result, const Cost& cost);
  static void RecordLine(Inference& in, const ExchangeResult& result, const Cost& cost,
                         std::chrono::steady_clock::time_point now);

  GatewayMetrics metrics_;
  Histogram& overhead_;      // trl_gateway_overhead_seconds has no labels: one series
  const uint64_t instance_;  // tells Gateways apart in SeriesFor's per-thread cache
  const bool key_label_;     // the registry keeps the `key` label (metrics.key_label)
  Limiter& limiter_;
  WaitQueue queue_;  // requests waiting for budget (keys and tenants with a `queue`)
  const Clock& clock_;
  const KeyDirectory* keys_;
  mutable IdentityTable identities_;  // identity.source header: the names that are no key
  UsageRecorder* usage_;
  std::unique_ptr<Upstream> own_upstream_;  // when none was given
  Upstream& upstream_;
  AccessLog* access_log_ = nullptr;
  std::atomic<std::shared_ptr<const GatewaySnapshot>> snapshot_;
  // Where large prompts are counted under a model's own tokenizer (CountPrompt), so that an I/O
  // thread never spends tens of milliseconds on one. Last: joined before anything it counts with.
  asio::thread_pool counting_;
};

}  // namespace trl
