#include "proxy/gateway.h"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <map>
#include <stdexcept>
#include <thread>

#include "common/decimal.h"
#include "common/money.h"
#include "common/saturating.h"
#include "config/limit_text.h"
#include "proxy/errors.h"
#include "proxy/forward_body.h"
#include "proxy/trace_context.h"
#include "proxy/transcription_fields.h"
#include "proxy/upstream_exchange.h"

namespace trl {
namespace {

namespace bhttp = http::bhttp;

std::string_view PathOf(std::string_view target) { return target.substr(0, target.find('?')); }

uint64_t NextInstance() {
  static std::atomic<uint64_t> next{0};
  return next.fetch_add(1, std::memory_order_relaxed);
}

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

int64_t Micros(std::chrono::steady_clock::duration d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}

// The x-ratelimit-* headers as head lines ("name: value\r\n"): one string, not six fields.
std::string RateLimitHeadLines(const Admission& admission) {
  std::string lines;
  lines.reserve(256);  // six lines of ~40 bytes: one allocation
  struct Names {
    std::string_view limit, remaining, reset;
  };
  auto add = [&](const RateLimitHeaderValues& v, const Names& names) {
    if (!v.present) return;
    http::AppendField(lines, names.limit, Decimal(v.limit).View());
    http::AppendField(lines, names.remaining, Decimal(std::max<int64_t>(0, v.remaining)).View());
    lines.append(names.reset).append(std::string_view(": "));
    AppendDuration(lines, Millis(v.reset_ms));
    lines.append(std::string_view("\r\n"));
  };
  add(admission.requests, {"x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
                           "x-ratelimit-reset-requests"});
  add(admission.tokens,
      {"x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"});
  if (const RateLimitHeaderValues& v = admission.spend; v.present) {  // amounts of money
    http::AppendField(lines, "x-ratelimit-limit-spend", FormatMoney(v.limit));
    http::AppendField(lines, "x-ratelimit-remaining-spend",
                      FormatMoney(std::max<int64_t>(0, v.remaining)));
    lines.append(std::string_view("x-ratelimit-reset-spend: "));
    AppendDuration(lines, Millis(v.reset_ms));
    lines.append(std::string_view("\r\n"));
  }
  return lines;
}

// trl_ratelimit_rejections_total{scope}: whose limit refused.
std::string ScopeLabel(const Admission& admission) {
  std::string label = admission.refused_scope == ScopeKind::kKey ? "key" : "tenant";
  if (admission.refused_model_specific) label += "_model";
  return label;
}

// The error code a client was answered when its backend failed ("" if none did).
std::string_view ErrorCode(UpstreamFailure failure) {
  switch (failure) {
    case UpstreamFailure::kNone:
      return "";
    case UpstreamFailure::kTimeout:
      return ErrorCode(ApiError::kBackendTimeout);
    case UpstreamFailure::kUnavailable:
      return ErrorCode(ApiError::kNoBackend);
    case UpstreamFailure::kShutdown:
      return ErrorCode(ApiError::kShuttingDown);
    default:
      return ErrorCode(ApiError::kBackendError);
  }
}

ApiError RateLimitError(LimitKind kind) {
  switch (kind) {
    case LimitKind::kTokens:
      return ApiError::kRateLimitTokens;
    case LimitKind::kRequests:
      return ApiError::kRateLimitRequests;
    case LimitKind::kConcurrent:
      return ApiError::kRateLimitConcurrency;
    case LimitKind::kSpend:
      return ApiError::kRateLimitSpend;
  }
  return ApiError::kRateLimitTokens;
}

// The data plane's POST routes, each forwarded to the same path of a backend of its model.
struct InferenceRoute {
  std::string_view path;
  ApiEndpoint endpoint;
};
constexpr InferenceRoute kInferenceRoutes[] = {
    {"/v1/chat/completions", ApiEndpoint::kChatCompletions},
    {"/v1/completions", ApiEndpoint::kCompletions},
    {"/v1/embeddings", ApiEndpoint::kEmbeddings},
    {"/v1/responses", ApiEndpoint::kResponses},
    {"/v1/rerank", ApiEndpoint::kRerank},
    {"/v1/score", ApiEndpoint::kScore},
    {"/tokenize", ApiEndpoint::kTokenize},
    {"/detokenize", ApiEndpoint::kDetokenize},
    {"/v1/audio/transcriptions", ApiEndpoint::kTranscriptions},
};

const InferenceRoute* FindInferenceRoute(std::string_view path) {
  for (const InferenceRoute& route : kInferenceRoutes) {
    if (route.path == path) return &route;
  }
  return nullptr;
}

// "POST /v1/chat/completions, ..., GET /v1/models": what a 404 names, from kInferenceRoutes.
std::string ServedPaths() {
  std::string out;
  for (const InferenceRoute& route : kInferenceRoutes) {
    out.append("POST ").append(route.path).append(", ");
  }
  return out + "GET /v1/models";
}

// What a valid usage from the backend holds, per endpoint (sse.h).
UsageFields UsageFieldsOf(ApiEndpoint endpoint) {
  if (endpoint == ApiEndpoint::kResponses) return UsageFields::kResponses;
  if (endpoint == ApiEndpoint::kTranscriptions) return UsageFields::kTranscription;
  return Generates(endpoint) ? UsageFields::kPromptAndCompletion : UsageFields::kPromptOnly;
}

// The field a request too large for its limit should change: its output cap if it sent one,
// else what holds its prompt.
std::string_view CapOrInputParam(ApiEndpoint endpoint, const RequestFields& fields) {
  switch (endpoint) {
    case ApiEndpoint::kChatCompletions:
      return fields.max_tokens ? "max_tokens" : "messages";
    case ApiEndpoint::kCompletions:
      return fields.max_tokens ? "max_tokens" : "prompt";
    case ApiEndpoint::kResponses:
      return fields.max_tokens ? "max_output_tokens" : "input";
    case ApiEndpoint::kRerank:
      return "documents";
    case ApiEndpoint::kScore:
      return "text_2";
    case ApiEndpoint::kTranscriptions:
      return "file";
    default:
      return "input";
  }
}

// The limits of `limits` a request that costs no tokens is held to (requests, concurrency).
std::vector<LimitConfig> WithoutTokenLimits(std::span<const LimitConfig> limits) {
  std::vector<LimitConfig> kept;
  for (const LimitConfig& limit : limits) {
    if (limit.kind != LimitKind::kTokens) kept.push_back(limit);
  }
  return kept;
}

}  // namespace

GatewaySnapshot::GatewaySnapshot(std::shared_ptr<const Config> cfg, const GatewaySnapshot* previous)
    : config(std::move(cfg)),
      models(config, previous ? &previous->models : nullptr),
      auth(*config) {
  // One counter per (tokenizer, chat_template): models that share a file share its counter,
  // and a setting the previous snapshot had keeps its counter.
  std::map<std::pair<std::string, std::string>, std::shared_ptr<const TokenCounter>> by_setting;
  if (previous != nullptr) {
    for (const ModelConfig& m : previous->config->models) {
      by_setting.emplace(std::pair(m.tokenizer, m.chat_template), previous->counters.at(m.name));
    }
  }
  for (size_t i = 0; i < config->models.size(); ++i) {
    const ModelConfig& model = config->models[i];
    auto& counter = by_setting[std::pair(model.tokenizer, model.chat_template)];
    try {
      if (!counter) counter = MakeTokenCounter(model.tokenizer, model.chat_template);
    } catch (const std::runtime_error& e) {
      throw std::runtime_error("models[" + std::to_string(i) + "].tokenizer: " + e.what());
    }
    counters.emplace(model.name, counter);
  }
}

GatewayMetrics::GatewayMetrics(MetricsRegistry& r)
    : requests(r.AddCounter("trl_requests_total", "Requests answered, by final status.",
                            {"model", "key", "tenant", "status"})),
      tokens(r.AddCounter("trl_tokens_total", "Tokens settled (the backend's usage).",
                          {"model", "key", "tenant", "kind"})),
      rejections(r.AddCounter("trl_ratelimit_rejections_total",
                              "Requests refused by a rate limit, by the limit's kind and whose it "
                              "is (key, tenant, key_model, tenant_model).",
                              {"model", "key", "tenant", "limit", "scope"})),
      duration(r.AddHistogram("trl_request_duration_seconds",
                              "Time from the request's arrival to the end of its response.",
                              {"model"}, MetricsRegistry::LatencyBuckets())),
      ttft(r.AddHistogram("trl_time_to_first_token_seconds",
                          "Time from the request's arrival to the first body byte relayed.",
                          {"model"}, MetricsRegistry::LatencyBuckets())),
      overhead(r.AddHistogram("trl_gateway_overhead_seconds",
                              "Time spent in the gateway itself before forwarding.", {},
                              MetricsRegistry::LatencyBuckets())),
      inflight(r.AddGauge("trl_inflight_requests", "Requests being served now.", {"model"})),
      streams(r.AddGauge("trl_streams_open", "Streamed answers being relayed now.", {"model"})),
      upstream_errors(r.AddCounter("trl_upstream_errors_total", "Backend failures, by reason.",
                                   {"model", "backend", "reason"})),
      usage_invalid(r.AddCounter("trl_backend_usage_invalid_total",
                                 "Answers whose usage was not integers from 0 to 10^9 (or lacked "
                                 "a count): settled on the gateway's own count instead.",
                                 {"model"})),
      store_decisions(r.AddCounter("trl_store_error_decisions_total",
                                   "Requests the store failed to judge, by what on_store_error "
                                   "decided (allow: let through, deny: 503).",
                                   {"decision"})),
      queue_outcomes(r.AddCounter("trl_queue_requests_total",
                                  "Requests that waited for budget (a key's or tenant's queue), "
                                  "by how the wait ended (admitted, timeout, left, full).",
                                  {"key", "tenant", "outcome"})),
      queue_wait(r.AddHistogram("trl_queue_wait_seconds",
                                "Time requests waited for budget in a queue.", {},
                                MetricsRegistry::LatencyBuckets())) {}

Gateway::Gateway(MetricsRegistry& metrics, Limiter& limiter, const Clock& clock,
                 const KeyDirectory* keys, UsageRecorder* usage, Upstream* upstream)
    : metrics_(metrics),
      overhead_(metrics_.overhead.With({})),
      instance_(NextInstance()),
      key_label_(metrics.Keeps("key")),
      limiter_(limiter),
      clock_(clock),
      keys_(keys),
      usage_(usage),
      own_upstream_(upstream ? nullptr : std::make_unique<PooledUpstream>()),
      upstream_(upstream ? *upstream : *own_upstream_),
      counting_(std::clamp(std::thread::hardware_concurrency() / 2, 1u, 4u)) {
  metrics.AddCollector([this](std::string& out) { RenderStateMetrics(out); });
}

void Gateway::RenderStateMetrics(std::string& out) const {
  auto snap = snapshot_.load();
  out += "# HELP trl_backend_up 1 while the backend is in rotation, 0 while it is ejected.\n";
  out += "# TYPE trl_backend_up gauge\n";
  if (snap) {
    for (const Model& m : snap->models.Models()) {
      for (const auto& b : m.backends) {
        out += "trl_backend_up{model=\"" + EscapeLabelValue(m.config->name) + "\",backend=\"" +
               EscapeLabelValue(b->Url().url) + "\"} " + (b->Up() ? "1" : "0") + "\n";
      }
    }
  }
  out +=
      "# HELP trl_header_identities Names the identity header brought that are no key "
      "(at most identity.max_identities).\n";
  out += "# TYPE trl_header_identities gauge\n";
  out += "trl_header_identities " + std::to_string(identities_.Size()) + "\n";
  LimiterStats s = limiter_.Stats();
  out += "# HELP trl_limiter_decisions_total Admission decisions, by outcome.\n";
  out += "# TYPE trl_limiter_decisions_total counter\n";
  auto line = [&out](std::string_view name, std::string_view label, std::string_view value,
                     uint64_t n) {
    out += std::string(name) + "{" + std::string(label) + "=\"" + std::string(value) + "\"} " +
           std::to_string(n) + "\n";
  };
  line("trl_limiter_decisions_total", "outcome", "admitted", s.admitted);
  line("trl_limiter_decisions_total", "outcome", "refused_tokens", s.refused_tokens);
  line("trl_limiter_decisions_total", "outcome", "refused_requests", s.refused_requests);
  line("trl_limiter_decisions_total", "outcome", "refused_concurrency", s.refused_concurrency);
  line("trl_limiter_decisions_total", "outcome", "refused_spend", s.refused_spend);
  line("trl_limiter_decisions_total", "outcome", "too_large", s.too_large);
  line("trl_limiter_decisions_total", "outcome", "settled", s.settled);
  out += "# HELP trl_queue_waiting Requests waiting for budget now (every queue).\n";
  out += "# TYPE trl_queue_waiting gauge\n";
  out += "trl_queue_waiting " + std::to_string(queue_.Stats().waiting) + "\n";
  out +=
      "# HELP trl_settlements_total Settlements by where the cost came from (the backend's "
      "usage, or the gateway's count when none came) and how they ended.\n";
  out += "# TYPE trl_settlements_total counter\n";
  for (const auto& [source, counts] :
       {std::pair{"usage", s.by_usage}, std::pair{"estimate", s.by_estimate}}) {
    for (const auto& [outcome, n] :
         {std::pair{"applied", counts.applied}, std::pair{"retried", counts.retried},
          std::pair{"lost", counts.lost}}) {
      out += std::string("trl_settlements_total{source=\"") + source + "\",outcome=\"" + outcome +
             "\"} " + std::to_string(n) + "\n";
    }
  }
  out +=
      "# HELP trl_reservations_unsettled Reservations charged (or maybe charged: a lost store "
      "reply) and not yet settled.\n";
  out += "# TYPE trl_reservations_unsettled gauge\n";
  out += "trl_reservations_unsettled " + std::to_string(s.unsettled) + "\n";
  out += "# HELP trl_store_errors_total Store operations that failed, by operation.\n";
  out += "# TYPE trl_store_errors_total counter\n";
  line("trl_store_errors_total", "op", "admit", s.store_errors_admit);
  line("trl_store_errors_total", "op", "settle", s.store_errors_settle);
  line("trl_store_errors_total", "op", "read", s.store_errors_read);
}

void Gateway::SetSnapshot(std::shared_ptr<const GatewaySnapshot> snapshot) {
  snapshot_.store(std::move(snapshot));
}

asio::awaitable<void> Gateway::Handle(http::Request& request, http::ResponseWriter& writer) {
  std::shared_ptr<const GatewaySnapshot> snap = snapshot_.load();
  AccessRecord record = NewRecord(request, writer);
  const std::string_view path = record.path;
  const InferenceRoute* route = FindInferenceRoute(path);
  const bool get_models = path == "/v1/models";
  if (route && request.method() == bhttp::verb::post) {
    co_await HandleInference(*snap, route->endpoint, request, writer, record);
  } else if (get_models && request.method() == bhttp::verb::get) {
    co_await HandleModels(*snap, request, writer, record);
  } else if (!route && !get_models && !snap->models.PassthroughFor(path).empty()) {
    co_await HandleInference(*snap, ApiEndpoint::kPassthrough, request, writer, record);
  } else if (route || get_models) {
    const std::string_view allow = get_models ? "GET" : "POST";
    http::Response refusal =
        Fail(record, ApiError::kMethodNotAllowed,
             "Method " + std::string(request.method_string()) + " is not allowed on " +
                 std::string(path) + "; use " + std::string(allow) + ".");
    refusal.set(bhttp::field::allow, allow);
    co_await writer.Send(std::move(refusal));
    Log(record);
  } else {
    co_await writer.Send(
        Fail(record, ApiError::kNotFound,
             "Unknown path " + std::string(path) + ". This gateway serves " + ServedPaths() + "."));
    Log(record);
  }
}

AccessRecord Gateway::NewRecord(const http::Request& request,
                                const http::ResponseWriter& writer) const {
  AccessRecord record;
  record.unix_micros = clock_.NowMicros();
  record.request_id = writer.RequestId();
  record.client = writer.ClientAddress();
  record.method = request.method_string();
  record.path = PathOf(request.target());
  if (auto it = request.find("traceparent"); it != request.end()) {
    record.trace_id = TraceIdOf(it->value());
  }
  return record;
}

http::Response Gateway::Fail(AccessRecord& record, ApiError error, std::string_view message,
                             std::string_view param) {
  record.error = ErrorCode(error);
  http::Response response = ErrorResponse(error, message, param);
  record.status = response.result_int();
  return response;
}

void Gateway::Log(AccessRecord& record) const {
  if (!access_log_) return;
  if (record.total_us < 0) record.total_us = clock_.NowMicros() - record.unix_micros;
  access_log_->Write(record);
}

Gateway::RequestSeries& Gateway::SeriesFor(const std::string& model, const Identity& identity) {
  // Per thread, so no lock; keyed by gateway instance too (a later Gateway never sees an earlier
  // one's registry). One entry per (model, tenant, key) a thread has served: the registry holds
  // as many series anyway.
  thread_local std::unordered_map<std::string, RequestSeries> cache;
  thread_local std::string id;
  id.assign(reinterpret_cast<const char*>(&instance_), sizeof(instance_));
  id.append(model);
  id.push_back('\0');
  id.append(identity.tenant);
  id.push_back('\0');
  if (key_label_) id.append(identity.name);  // else one entry per model and tenant
  auto it = cache.find(id);
  if (it != cache.end()) return it->second;
  RequestSeries series;
  const std::string key(identity.name);
  const std::string tenant(identity.tenant);
  series.ok = &metrics_.requests.With({model, key, tenant, "200"});
  series.prompt = &metrics_.tokens.With({model, key, tenant, "prompt"});
  series.completion = &metrics_.tokens.With({model, key, tenant, "completion"});
  series.duration = &metrics_.duration.With({model});
  series.ttft = &metrics_.ttft.With({model});
  series.inflight = &metrics_.inflight.With({model});
  series.streams = &metrics_.streams.With({model});
  return cache.emplace(id, series).first->second;
}

std::optional<Identity> Gateway::Authenticate(const GatewaySnapshot& snap,
                                              const http::Request& request,
                                              ApiError* refusal) const {
  const IdentityConfig& config = snap.config->identity;
  std::shared_ptr<const ManagedKeys> managed = keys_ ? keys_->Current() : nullptr;
  std::optional<Identity> identity = snap.auth.Authenticate(request, managed.get());
  if (!identity) {
    *refusal = config.source == IdentityConfig::Source::kHeader ? ApiError::kInvalidIdentity
                                                                : ApiError::kInvalidApiKey;
  } else if (identity->named_by_header &&
             !identities_.Admit(identity->name, config.max_identities)) {
    *refusal = ApiError::kIdentityLimitReached;
    identity.reset();
  } else if (identity->expires_at && clock_.NowMicros() / 1'000'000 >= identity->expires_at) {
    *refusal = ApiError::kKeyExpired;
    identity.reset();
  } else if (identity->record && keys_->Stale(snap.config->store.key_sync_max_stale)) {
    // An API-made key whose copy here is too old may have been revoked on another instance.
    *refusal = ApiError::kKeyStoreUnavailable;
    identity.reset();
  }
  return identity;
}

asio::awaitable<void> Gateway::HandleModels(const GatewaySnapshot& snap, http::Request& request,
                                            http::ResponseWriter& writer, AccessRecord& record) {
  ApiError refusal{};
  auto identity = Authenticate(snap, request, &refusal);
  if (!identity) {
    co_await writer.Send(Fail(record, refusal));
    Log(record);
    co_return;
  }
  record.key = identity->name;
  record.tenant = identity->tenant;
  boost::json::array data;
  for (const Model& m : snap.models.Models()) {
    if (!Authenticator::ModelAllowed(*identity, m.config->name)) continue;
    boost::json::object entry;
    entry["id"] = m.config->name;
    entry["object"] = "model";
    entry["created"] = 0;
    entry["owned_by"] = "token-rate-limiter";
    data.push_back(std::move(entry));
  }
  boost::json::object root;
  root["object"] = "list";
  root["data"] = std::move(data);
  http::Response res{bhttp::status::ok, 11};
  res.set(bhttp::field::content_type, "application/json");
  res.body() = boost::json::serialize(root);
  record.status = res.result_int();
  co_await writer.Send(std::move(res));
  Log(record);
}

// One inference request's state, from step to step.
struct Gateway::Inference {
  Inference(const GatewaySnapshot& s, ApiEndpoint e, AccessRecord& r)
      : snap(s), endpoint(e), started(std::chrono::steady_clock::now()), record(r) {}
  const GatewaySnapshot& snap;
  const ApiEndpoint endpoint;
  const std::chrono::steady_clock::time_point started;
  AccessRecord& record;  // its access-log line, filled step by step
  std::optional<Identity> identity;
  std::string key_name;
  // parse
  RequestFields fields;
  const Model* model = nullptr;
  const TokenCounter* counter = nullptr;
  int64_t prompt_estimate = 0;
  int64_t cap = 0;  // per choice: what the backend is sent, so what it may generate is reserved
  int64_t output_allowance = 0;
  std::string_view user;  // the end user (scope: user limits): the request's header or field
  // admit
  std::vector<LimitConfig> untokened_limits[2];  // a request that costs no tokens: key, tenant
  Admission admission;
  bool left_while_waiting = false;  // the client left while it waited for budget
  std::string rate_lines;           // the x-ratelimit-* head lines
  // record: what the access-log line points at
  std::string backend, backend_error;
};

// Writes the request's access-log line when the request is over, whichever way it ends.
class Gateway::LogWhenDone {
 public:
  LogWhenDone(const Gateway& gateway, AccessRecord& record) : gateway_(gateway), record_(record) {}
  LogWhenDone(const LogWhenDone&) = delete;
  LogWhenDone& operator=(const LogWhenDone&) = delete;
  ~LogWhenDone() { gateway_.Log(record_); }

 private:
  const Gateway& gateway_;
  AccessRecord& record_;
};

asio::awaitable<void> Gateway::HandleInference(const GatewaySnapshot& snap, ApiEndpoint endpoint,
                                               http::Request& request, http::ResponseWriter& writer,
                                               AccessRecord& record) {
  Inference in(snap, endpoint, record);
  const LogWhenDone log(*this, record);  // before `in` goes, whose strings the line points at
  ApiError refusal{};
  in.identity = Authenticate(snap, request, &refusal);
  if (!in.identity) {
    http::Response response = Fail(record, refusal);
    metrics_.requests.With({"", "", "", std::to_string(response.result_int())}).Add();
    co_await writer.Send(std::move(response));
    co_return;
  }
  in.key_name = in.identity->name;
  record.key = in.key_name;
  record.tenant = in.identity->tenant;
  std::optional<http::Response> error = Parse(in, request);
  if (!error) {
    co_await CountPrompt(in, request.body().size());
    co_await Admit(in, writer);
    if (in.left_while_waiting) {
      CountStatus(in, in.model->config->name, 499);
      record.status = 499;  // the client left first
      co_return;
    }
    in.rate_lines = RateLimitHeadLines(in.admission);
    error = Refusal(in, co_await asio::this_coro::executor);
  }
  if (error) {
    co_await writer.Send(std::move(*error), in.rate_lines);
    co_return;
  }

  RequestSeries& series = SeriesFor(in.model->config->name, *in.identity);
  series.inflight->Add(1);
  if (in.fields.stream) series.streams->Add(1);
  ExchangeRequest exchange = MakeExchange(in, request);
  exchange.client_address = writer.ClientAddress();
  exchange.request_id = writer.RequestId();
  exchange.client_is_trusted_proxy = IsTrustedProxy(snap.config->server, writer.ClientAddress());
  const auto queued = std::chrono::steady_clock::now() - in.started;
  overhead_.Observe(Seconds(queued));
  record.queue_us = Micros(queued);
  record.stream = in.fields.stream;
  record.reserved_tokens = in.prompt_estimate + in.output_allowance;
  ExchangeResult result = co_await upstream_.ForwardAndRelay(exchange, writer);
  series.inflight->Add(-1);
  if (in.fields.stream) series.streams->Add(-1);

  const Cost cost = CostOf(in, result);
  // (A let-through store failure's reservation too: the store may have charged it.)
  limiter_.SettleInBackground(co_await asio::this_coro::executor,
                              std::move(in.admission.reservation), cost.charged,
                              result.usage || result.audio_seconds ? SettlementSource::kUsage
                                                                   : SettlementSource::kEstimate);
  queue_.Kick(in.key_name, in.identity->tenant);  // budget given back: a waiter may fit now
  Record(in, series, result, cost);
}

void Gateway::CountStatus(const Inference& in, std::string_view model, unsigned status) {
  metrics_.requests
      .With({std::string(model), in.key_name, std::string(in.identity->tenant),
             std::to_string(status)})
      .Add();
}

// Step "parse": the request's fields, its model (allowed for the key) and what it may cost.
std::optional<http::Response> Gateway::Parse(Inference& in, http::Request& request) {
  if (auto error = in.endpoint == ApiEndpoint::kPassthrough ? FindPassthroughModel(in, request)
                                                            : ReadFields(in, request)) {
    return error;
  }
  const ModelConfig& model = *in.model->config;
  in.record.model = model.name;
  if (!Authenticator::ModelAllowed(*in.identity, model.name)) {
    CountStatus(in, model.name, 403);
    return Fail(in.record, ApiError::kModelNotAllowed,
                "This API key may not use the model '" + model.name +
                    "'. GET /v1/models lists the models you can use.",
                "model");
  }
  const std::string& user_header = in.snap.config->identity.user_header;
  in.user = user_header.empty() ? std::string_view(in.fields.user)
                                : std::string_view(request[user_header]);
  if (in.user.size() > kMaxUserBytes) {  // a budget's name (scope: user): bounded
    CountStatus(in, model.name, 400);
    return Fail(in.record, ApiError::kInvalidRequest,
                "The header '" + user_header + "' must name the end user in at most " +
                    std::to_string(kMaxUserBytes) + " bytes.",
                user_header);
  }
  in.counter = in.snap.counters.at(model.name).get();
  in.cap = ReservedCap(in.endpoint, in.fields, model.max_output_tokens);
  in.output_allowance = OutputAllowance(in.fields, in.cap);  // each at most 1e15
  return std::nullopt;
}

// Step "count": the prompt's tokens for the reservation. Under a model's own tokenizer (tens of
// milliseconds a megabyte), a body past kCountInlineBytes is counted on the counting threads,
// from a copy of its texts (the parser's buffers are this thread's, reused by its next request).
asio::awaitable<void> Gateway::CountPrompt(Inference& in, size_t body_bytes) {
  constexpr size_t kCountInlineBytes = size_t{64} * 1024;
  const MediaTokens& media = in.model->config->media_tokens;
  if (!in.counter->Exact() || body_bytes < kCountInlineBytes) {
    in.prompt_estimate = CountPromptTokens(in.fields, *in.counter, media);
    co_return;
  }
  const OwnedRequestFields owned(in.fields);
  const TokenCounter& counter = *in.counter;
  in.prompt_estimate = co_await asio::co_spawn(
      counting_,
      [&]() -> asio::awaitable<int64_t> {
        co_return CountPromptTokens(owned.fields, counter, media);
      },
      asio::use_awaitable);
}

// Step "parse", the body: the request's fields and the model they name.
std::optional<http::Response> Gateway::ReadFields(Inference& in, http::Request& request) {
  const std::optional<FieldError> error =
      in.endpoint == ApiEndpoint::kTranscriptions
          ? ExtractTranscriptionFields(request[bhttp::field::content_type], request.body(),
                                       in.fields)
          : ExtractRequestFields(in.endpoint, request.body(), in.fields);
  if (error) {
    CountStatus(in, "", 400);
    return Fail(in.record, ApiError::kInvalidRequest, error->message, error->param);
  }
  in.model = in.snap.models.Find(in.fields.model);
  if (in.model) return std::nullopt;
  CountStatus(in, "", 404);
  return Fail(in.record, ApiError::kModelNotFound,
              "The model '" + in.fields.model +
                  "' does not exist. GET /v1/models lists the models you can use.",
              "model");
}

// Step "parse" for a passthrough path: the model a JSON body names (it must list the path), else
// the one model whose passthrough lists it. The body is forwarded as it came, but for the
// model's canonical name.
std::optional<http::Response> Gateway::FindPassthroughModel(Inference& in, http::Request& request) {
  const std::vector<const Model*> serving = in.snap.models.PassthroughFor(in.record.path);
  RequestFields named;
  const bool names_model = !request.body().empty() &&
                           !ExtractRequestFields(ApiEndpoint::kPassthrough, request.body(), named);
  if (names_model) {
    in.model = in.snap.models.Find(named.model);
    if (in.model && std::ranges::find(serving, in.model) != serving.end()) {
      in.fields = std::move(named);
      return std::nullopt;
    }
    CountStatus(in, "", 404);
    return Fail(
        in.record, ApiError::kModelNotFound,
        "The model '" + named.model + "' does not serve " + std::string(in.record.path) + ".",
        "model");
  }
  if (serving.size() == 1) {
    in.model = serving.front();
    return std::nullopt;
  }
  CountStatus(in, "", 400);
  return Fail(in.record, ApiError::kInvalidRequest,
              "Several models serve " + std::string(in.record.path) +
                  ": name one in the JSON body's 'model'.",
              "model");
}

// Step "admit": the limiter's answer (in.admission), once the request has waited for budget if
// its key or tenant has a queue and its limits refuse it now.
asio::awaitable<void> Gateway::Admit(Inference& in, http::ResponseWriter& writer) {
  const ModelConfig& model = *in.model->config;
  RequestScope scope{in.identity->name,
                     in.identity->tenant,
                     model.name,
                     in.identity->limits,
                     in.identity->tenant_limits,
                     writer.RequestId(),
                     model.request_timeout,
                     ChargesTokens(in.endpoint) && !model.prices.Free()};
  scope.user = in.user;
  if (!ChargesTokens(in.endpoint)) {
    in.untokened_limits[0] = WithoutTokenLimits(scope.key_limits);
    in.untokened_limits[1] = WithoutTokenLimits(scope.tenant_limits);
    scope.key_limits = in.untokened_limits[0];
    scope.tenant_limits = in.untokened_limits[1];
  }
  const Amounts reserve = Reserve(in);
  const QueueTicket ticket{in.key_name, in.identity->tenant, in.identity->key_queue,
                           in.identity->tenant_queue};
  if (!queue_.ShouldQueueFirst(ticket, &in.admission)) {  // (never without a queue)
    in.admission = co_await limiter_.Admit(scope, reserve);
    if (!ticket.Enabled() || in.admission.outcome != Admission::Outcome::kRefused) co_return;
  }
  WaitResult waited = co_await queue_.Wait(
      ticket, std::move(in.admission),
      [&]() -> asio::awaitable<Admission> { co_return co_await limiter_.Admit(scope, reserve); },
      [&writer](std::function<void()> gone) { writer.WatchClient(std::move(gone)); });
  writer.UnwatchClient();
  in.left_while_waiting = waited.outcome == WaitOutcome::kLeft && !writer.Cut();
  in.admission = std::move(waited.admission);
  in.record.wait = WaitOutcomeLabel(waited.outcome);
  in.record.wait_us = waited.waited.count();
  metrics_.queue_outcomes
      .With({in.key_name, std::string(in.identity->tenant),
             std::string(WaitOutcomeLabel(waited.outcome))})
      .Add();
  metrics_.queue_wait.With({}).Observe(Seconds(waited.waited));
}

// Step "admit", its answer: none when the request goes on (admitted, or let through by
// on_store_error: allow).
std::optional<http::Response> Gateway::Refusal(Inference& in,
                                               const asio::any_io_executor& executor) {
  const std::string& model_name = in.model->config->name;
  const Admission& admission = in.admission;
  switch (admission.outcome) {
    case Admission::Outcome::kAdmitted:
      return std::nullopt;
    case Admission::Outcome::kTooLarge:
      CountStatus(in, model_name, 400);
      if (admission.refused_kind == LimitKind::kSpend) return SpendTooLarge(in);
      return Fail(in.record, ApiError::kTokensExceedLimit,
                  "This request needs " + std::to_string(admission.requested) + " tokens (prompt " +
                      std::to_string(in.prompt_estimate) + " + output allowance " +
                      std::to_string(in.output_allowance) + "), more than the limit " +
                      admission.refused_limit +
                      " can ever grant. Lower max_tokens (or n), or shorten the prompt.",
                  CapOrInputParam(in.endpoint, in.fields));
    case Admission::Outcome::kRefused:
      return RateLimited(in);
    case Admission::Outcome::kStoreError:
      if (in.snap.config->store.on_store_error == OnStoreError::kDeny) {
        // The store may have charged it before its reply was lost: given back.
        limiter_.SettleInBackground(executor, std::move(in.admission.reservation), {},
                                    SettlementSource::kEstimate);
        CountStatus(in, model_name, 503);
        metrics_.store_decisions.With({"deny"}).Add();
        return Fail(in.record, ApiError::kStoreUnavailable);
      }
      metrics_.store_decisions.With({"allow"}).Add();
      return std::nullopt;
  }
  return std::nullopt;
}

// The 429 of a request a limit refused, with its Retry-After, counted and recorded.
http::Response Gateway::RateLimited(Inference& in) {
  const std::string& model_name = in.model->config->name;
  const Admission& admission = in.admission;
  CountStatus(in, model_name, 429);
  if (usage_) {
    usage_->RecordRejected(in.key_name, in.identity->tenant, model_name,
                           clock_.NowMicros() / 1'000'000, admission.refused_kind, in.user);
  }
  metrics_.rejections
      .With({model_name, in.key_name, std::string(in.identity->tenant),
             std::string(LimitKindLabel(admission.refused_kind)), ScopeLabel(admission)})
      .Add();
  const int64_t retry_ms = std::max<int64_t>(1, admission.retry_after_ms);
  const auto amount = [&](int64_t value) {
    return admission.refused_kind == LimitKind::kSpend
               ? FormatMoney(value) + " " + in.snap.config->currency
               : std::to_string(value);
  };
  http::Response res = Fail(in.record, RateLimitError(admission.refused_kind),
                            "Rate limit reached for " + admission.refused_limit + ": remaining " +
                                amount(std::max<int64_t>(0, admission.remaining)) + ", requested " +
                                amount(admission.requested) + ". Retry in " +
                                FormatDuration(Millis(retry_ms)) + ".");
  res.set(bhttp::field::retry_after, std::to_string(std::max<int64_t>(1, (retry_ms + 999) / 1000)));
  res.set("retry-after-ms", std::to_string(retry_ms));
  return res;
}

// Step "forward": what the upstream is asked to send. The body is edited in place (the
// canonical model name, the reserved cap, include_usage) and moved, not copied.
ExchangeRequest Gateway::MakeExchange(Inference& in, http::Request& request) {
  const std::string& model_name = in.model->config->name;
  const bool passthrough = in.endpoint == ApiEndpoint::kPassthrough;
  ExchangeRequest exchange{
      in.model,
      std::string(passthrough ? std::string_view(request.target()) : PathOf(request.target())),
      &request,
      {},
      in.fields.stream,
      in.fields.include_usage,
      std::move(in.rate_lines),
      in.counter};
  exchange.deadline = in.started + in.model->config->request_timeout;
  exchange.usage_fields = UsageFieldsOf(in.endpoint);
  if (in.endpoint == ApiEndpoint::kTranscriptions || passthrough) {
    exchange.content_type = request[bhttp::field::content_type];
  }
  if (passthrough) exchange.method = request.method_string();
  // The Responses API's usage is part of the response the client reads: never taken out.
  if (in.endpoint == ApiEndpoint::kResponses) exchange.client_wants_usage = true;
  // (A passthrough body that names no model is forwarded as it came.)
  if (in.fields.model_span.Present()) {
    RewriteForwardBody(in.endpoint, in.fields, model_name, in.cap, request.body());
  }
  exchange.body = std::move(request.body());
  return exchange;
}

// The 400 of a request whose possible cost is more than a spend limit ever holds.
http::Response Gateway::SpendTooLarge(Inference& in) {
  const std::string& currency = in.snap.config->currency;
  return Fail(in.record, ApiError::kSpendExceedsLimit,
              "This request may cost " + FormatMoney(in.admission.requested) + " " + currency +
                  " (prompt " + std::to_string(in.prompt_estimate) + " + output allowance " +
                  std::to_string(in.output_allowance) + " tokens at " + in.model->config->name +
                  "'s prices), more than the limit " + in.admission.refused_limit +
                  " can ever grant. Lower max_tokens (or n), or shorten the prompt.",
              CapOrInputParam(in.endpoint, in.fields));
}

// Step "admit", what is reserved: the prompt's count and the output allowance, and their price
// (prompt tokens at the uncached price: whether the backend has them cached is not known yet).
Amounts Gateway::Reserve(const Inference& in) {
  return Priced(*in.model->config, in.prompt_estimate, in.output_allowance, 0).charged;
}

// A cost of tokens: cached prompt tokens at the model's weight (rounded up) for token limits,
// each kind of token at its price for spend limits.
Gateway::Cost Gateway::Priced(const ModelConfig& model, int64_t prompt, int64_t completion,
                              int64_t cached) {
  cached = std::clamp<int64_t>(cached, 0, prompt);
  const int64_t weighted_cached = static_cast<int64_t>(
      (static_cast<__int128>(cached) * model.cached_token_weight + 999'999) / 1'000'000);
  return {prompt,
          completion,
          cached,
          {ClampedAdd(prompt - cached + weighted_cached, completion, kMaxTokenCount),
           CostNanos(model.prices, prompt, cached, completion)}};
}

// Step "settle", its cost: the backend's usage, else what was sent to it and relayed, counted
// here.
Gateway::Cost Gateway::CostOf(const Inference& in, const ExchangeResult& result) {
  if (!ChargesTokens(in.endpoint)) return {};
  const ModelConfig& model = *in.model->config;
  if (result.usage) {
    return Priced(model, result.usage->prompt_tokens, result.usage->completion_tokens,
                  result.usage->cached_tokens);
  }
  // It may have generated all it was allowed.
  if (result.uncountable) return Priced(model, in.prompt_estimate, in.output_allowance, 0);
  if (result.reached_backend && !result.backend_rejected) {
    return Priced(model, PromptCost(in, result), result.relayed_tokens, 0);
  }
  return {};
}

// The prompt's cost without a token usage: the estimate, but a transcription's audio at the
// seconds its backend reported, if it did.
int64_t Gateway::PromptCost(const Inference& in, const ExchangeResult& result) {
  if (!result.audio_seconds) return in.prompt_estimate;
  const int64_t rate = in.model->config->media_tokens.audio_second;
  const int64_t estimated = ClampedMul(in.fields.audio_seconds, rate, kMaxTokenCount);
  const int64_t reported = ClampedMul(*result.audio_seconds, rate, kMaxTokenCount);
  return ClampedAdd(in.prompt_estimate - estimated, reported, kMaxTokenCount);
}

// Step "record": usage, and the request's metrics.
void Gateway::Record(Inference& in, RequestSeries& series, const ExchangeResult& result,
                     const Cost& cost) {
  const std::string& model_name = in.model->config->name;
  const auto now = std::chrono::steady_clock::now();
  if (usage_) {
    usage_->RecordAdmitted(in.key_name, in.identity->tenant, model_name,
                           clock_.NowMicros() / 1'000'000, cost.prompt, cost.completion,
                           cost.cached, cost.charged.spend, in.user);
  }
  if (result.failure != UpstreamFailure::kNone) {
    in.backend_error = UpstreamFailureLabel(result.failure, result.backend_status);
    metrics_.upstream_errors.With({model_name, result.backend, in.backend_error}).Add();
  }
  if (result.usage_invalid) metrics_.usage_invalid.With({model_name}).Add();
  series.prompt->Add(static_cast<double>(cost.prompt));
  series.completion->Add(static_cast<double>(cost.completion));
  if (result.status == 200) {
    series.ok->Add();
  } else {
    CountStatus(in, model_name, result.status ? result.status : 499);
  }
  series.duration->Observe(Seconds(now - in.started));
  if (result.first_byte) series.ttft->Observe(Seconds(*result.first_byte - in.started));
  RecordLine(in, result, cost, now);
}

// The access-log line of a request that was forwarded.
void Gateway::RecordLine(Inference& in, const ExchangeResult& result, const Cost& cost,
                         std::chrono::steady_clock::time_point now) {
  AccessRecord& record = in.record;
  in.backend = result.backend;
  record.backend = in.backend;
  record.backend_error = in.backend_error;
  record.status = result.status ? result.status : 499;  // 499: the client left first
  record.error = ErrorCode(result.failure);
  record.prompt_tokens = cost.prompt;
  record.completion_tokens = cost.completion;
  record.cost_source = result.usage || result.audio_seconds ? "usage" : "estimate";
  if (result.first_byte) record.ttft_us = Micros(*result.first_byte - in.started);
  record.total_us = Micros(now - in.started);
}

}  // namespace trl
