#include "proxy/gateway.h"

#include <boost/asio/this_coro.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "common/decimal.h"
#include "proxy/errors.h"
#include "proxy/forward_body.h"
#include "proxy/upstream_exchange.h"

namespace trl {
namespace {

namespace bhttp = http::bhttp;

std::string_view PathOf(std::string_view target) {
  return target.substr(0, target.find('?'));
}

uint64_t NextInstance() {
  static std::atomic<uint64_t> next{0};
  return next.fetch_add(1, std::memory_order_relaxed);
}

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
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
    http::AppendField(lines, names.limit, Decimal(v.limit).view());
    http::AppendField(lines, names.remaining, Decimal(std::max<int64_t>(0, v.remaining)).view());
    lines.append(names.reset).append(std::string_view(": "));
    AppendDuration(lines, Millis(v.reset_ms));
    lines.append(std::string_view("\r\n"));
  };
  add(admission.requests, {"x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
                           "x-ratelimit-reset-requests"});
  add(admission.tokens, {"x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens",
                         "x-ratelimit-reset-tokens"});
  return lines;
}

std::string_view LimitLabel(LimitKind kind) {
  switch (kind) {
    case LimitKind::kTokens: return "tokens";
    case LimitKind::kRequests: return "requests";
    case LimitKind::kConcurrent: return "concurrency";
  }
  return "tokens";
}

}  // namespace

GatewaySnapshot::GatewaySnapshot(std::shared_ptr<const Config> cfg, const GatewaySnapshot* previous)
    : config(std::move(cfg)),
      models(config, previous ? &previous->models : nullptr),
      auth(*config) {
  for (const auto& model : config->models) {
    counters.emplace(model.name, MakeTokenCounter(model.tokenizer));
  }
}

GatewayMetrics::GatewayMetrics(MetricsRegistry& r)
    : requests(r.AddCounter("trl_requests_total", "Requests answered, by final status.",
                            {"model", "key", "status"})),
      tokens(r.AddCounter("trl_tokens_total", "Tokens settled (the backend's usage).",
                          {"model", "key", "kind"})),
      rejections(r.AddCounter("trl_ratelimit_rejections_total",
                              "Requests refused by a rate limit.", {"model", "key", "limit"})),
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
      upstream_errors(r.AddCounter("trl_upstream_errors_total",
                                   "Backend failures, by reason.", {"model", "backend", "reason"})),
      usage_invalid(r.AddCounter("trl_backend_usage_invalid_total",
                                 "Answers whose usage was not integers from 0 to 10^9 (or lacked "
                                 "a count): settled on the gateway's own count instead.",
                                 {"model"})),
      store_fail_open(r.AddCounter("trl_store_fail_open_total",
                                   "Requests let through because the store failed "
                                   "(on_store_error: allow).",
                                   {})) {}

Gateway::Gateway(MetricsRegistry& metrics, Limiter& limiter, const Clock& clock,
                 const KeyDirectory* keys, UsageRecorder* usage)
    : metrics_(metrics),
      overhead_(metrics_.overhead.With({})),
      instance_(NextInstance()),
      key_label_(metrics.Keeps("key")),
      limiter_(limiter),
      clock_(clock),
      keys_(keys),
      usage_(usage) {
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
  line("trl_limiter_decisions_total", "outcome", "too_large", s.too_large);
  line("trl_limiter_decisions_total", "outcome", "settled", s.settled);
  out += "# HELP trl_settlements_total Settlements by where the cost came from (the backend's "
         "usage, or the gateway's count when none came) and how they ended.\n";
  out += "# TYPE trl_settlements_total counter\n";
  for (const auto& [source, counts] :
       {std::pair{"usage", s.by_usage}, std::pair{"estimate", s.by_estimate}}) {
    for (const auto& [outcome, n] : {std::pair{"applied", counts.applied},
                                     std::pair{"retried", counts.retried},
                                     std::pair{"lost", counts.lost}}) {
      out += std::string("trl_settlements_total{source=\"") + source + "\",outcome=\"" +
             outcome + "\"} " + std::to_string(n) + "\n";
    }
  }
  out += "# HELP trl_reservations_unsettled Reservations charged (or maybe charged: a lost store "
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
  std::string_view path = PathOf(request.target());
  const bool post = request.method() == bhttp::verb::post;
  if (path == "/v1/chat/completions" && post) {
    co_await HandleInference(*snap, ApiEndpoint::kChatCompletions, request, writer);
  } else if (path == "/v1/completions" && post) {
    co_await HandleInference(*snap, ApiEndpoint::kCompletions, request, writer);
  } else if (path == "/v1/embeddings" && post) {
    co_await HandleInference(*snap, ApiEndpoint::kEmbeddings, request, writer);
  } else if (path == "/v1/models" && request.method() == bhttp::verb::get) {
    co_await HandleModels(*snap, request, writer);
  } else if (path == "/v1/chat/completions" || path == "/v1/completions" ||
             path == "/v1/embeddings" || path == "/v1/models") {
    co_await writer.Send(ErrorResponse(405, "invalid_request_error", "method_not_allowed",
                                       "Method " + std::string(request.method_string()) +
                                           " is not allowed on " + std::string(path) + "."));
  } else {
    co_await writer.Send(ErrorResponse(404, "invalid_request_error", "not_found",
                                       "Unknown path " + std::string(path) +
                                           ". This gateway serves /v1/chat/completions, "
                                           "/v1/completions, /v1/embeddings and /v1/models."));
  }
}

Gateway::RequestSeries& Gateway::SeriesFor(const std::string& model, std::string_view key) {
  // Per thread, so no lock; keyed by gateway instance too (a later Gateway never sees an earlier
  // one's registry). One entry per (model, key) a thread has served: the registry holds as many
  // series anyway.
  thread_local std::unordered_map<std::string, RequestSeries> cache;
  thread_local std::string id;
  id.assign(reinterpret_cast<const char*>(&instance_), sizeof(instance_));
  id.append(model);
  id.push_back('\0');
  if (key_label_) id.append(key);  // else one entry per model, however many keys
  auto it = cache.find(id);
  if (it != cache.end()) return it->second;
  RequestSeries series;
  std::string key_name(key);
  series.ok = &metrics_.requests.With({model, key_name, "200"});
  series.prompt = &metrics_.tokens.With({model, key_name, "prompt"});
  series.completion = &metrics_.tokens.With({model, key_name, "completion"});
  series.duration = &metrics_.duration.With({model});
  series.ttft = &metrics_.ttft.With({model});
  series.inflight = &metrics_.inflight.With({model});
  return cache.emplace(id, series).first->second;
}

std::optional<Identity> Gateway::Authenticate(const GatewaySnapshot& snap,
                                             const http::Request& request) const {
  if (!keys_) return snap.auth.Authenticate(request);
  std::shared_ptr<const ManagedKeys> managed = keys_->Current();
  return snap.auth.Authenticate(request, managed.get());
}

asio::awaitable<void> Gateway::HandleModels(const GatewaySnapshot& snap, http::Request& request,
                                            http::ResponseWriter& writer) {
  auto identity = Authenticate(snap, request);
  if (!identity) {
    co_await writer.Send(ErrorResponse(401, "invalid_request_error", "invalid_api_key",
                                       "Invalid or missing API key. Send it as "
                                       "'Authorization: Bearer <key>'."));
    co_return;
  }
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
  co_await writer.Send(std::move(res));
}

asio::awaitable<void> Gateway::HandleInference(const GatewaySnapshot& snap, ApiEndpoint endpoint,
                                               http::Request& request,
                                               http::ResponseWriter& writer) {
  const auto started = std::chrono::steady_clock::now();
  // authenticate
  auto identity = Authenticate(snap, request);
  if (!identity) {
    metrics_.requests.With({"", "", "401"}).Add();
    co_await writer.Send(ErrorResponse(401, "invalid_request_error", "invalid_api_key",
                                       "Invalid or missing API key. Send it as "
                                       "'Authorization: Bearer <key>'."));
    co_return;
  }
  std::string key_name(identity->name);
  auto count_status = [&](std::string_view model, unsigned status) {
    metrics_.requests.With({std::string(model), key_name, std::to_string(status)}).Add();
  };
  // parse
  RequestFields fields;
  if (auto error = ExtractRequestFields(endpoint, request.body(), fields)) {
    count_status("", 400);
    co_await writer.Send(ErrorResponse(400, "invalid_request_error", "invalid_request",
                                       error->message, error->param));
    co_return;
  }
  const Model* model = snap.models.Find(fields.model);
  if (!model) {
    count_status("", 404);
    co_await writer.Send(ErrorResponse(404, "invalid_request_error", "model_not_found",
                                       "The model '" + fields.model +
                                           "' does not exist. GET /v1/models lists the models "
                                           "you can use.",
                                       "model"));
    co_return;
  }
  const std::string& model_name = model->config->name;
  if (!Authenticator::ModelAllowed(*identity, model_name)) {
    count_status(model_name, 403);
    co_await writer.Send(ErrorResponse(403, "permission_error", "model_not_allowed",
                                       "This API key may not use the model '" + model_name +
                                           "'. GET /v1/models lists the models you can use.",
                                       "model"));
    co_return;
  }
  const TokenCounter& counter = *snap.counters.at(model_name);
  const int64_t prompt_estimate = CountPromptTokens(fields, counter, model->config->media_tokens);
  // The cap per choice is what the backend will be sent (forward below), so what it may generate
  // is exactly what is reserved.
  const int64_t cap = ReservedCap(endpoint, fields, model->config->max_output_tokens);
  const int64_t output_allowance = OutputAllowance(fields, cap);
  const int64_t reservation = prompt_estimate + output_allowance;  // each at most 1e15

  // admit
  RequestScope scope{identity->name,   identity->tenant,       model_name,
                     identity->limits, identity->tenant_limits, writer.RequestId(),
                     model->config->request_timeout};
  Admission admission = co_await limiter_.Admit(scope, reservation);
  std::string rate_lines = RateLimitHeadLines(admission);
  switch (admission.outcome) {
    case Admission::Outcome::kAdmitted:
      break;
    case Admission::Outcome::kTooLarge: {
      count_status(model_name, 400);
      http::Response res =
          ErrorResponse(400, "invalid_request_error", "tokens_exceed_limit",
                        "This request needs " + std::to_string(admission.requested) +
                            " tokens (prompt " + std::to_string(prompt_estimate) +
                            " + output allowance " + std::to_string(output_allowance) +
                            "), more than the limit " + admission.refused_limit +
                            " can ever grant. Lower max_tokens (or n), or shorten the prompt.",
                        fields.max_tokens ? "max_tokens" : "messages");
      co_await writer.Send(std::move(res), rate_lines);
      co_return;
    }
    case Admission::Outcome::kRefused: {
      count_status(model_name, 429);
      if (usage_) {
        usage_->RecordRejected(key_name, identity->tenant, model_name,
                               clock_.NowMicros() / 1'000'000, admission.refused_kind);
      }
      metrics_.rejections.With({model_name, key_name, std::string(LimitLabel(admission.refused_kind))})
          .Add();
      int64_t retry_ms = std::max<int64_t>(1, admission.retry_after_ms);
      http::Response res =
          ErrorResponse(429, LimitLabel(admission.refused_kind), "rate_limit_exceeded",
                        "Rate limit reached for " + admission.refused_limit + ": remaining " +
                            std::to_string(std::max<int64_t>(0, admission.remaining)) +
                            ", requested " + std::to_string(admission.requested) +
                            ". Retry in " + FormatDuration(Millis(retry_ms)) + ".");
      res.set(bhttp::field::retry_after, std::to_string(std::max<int64_t>(1, (retry_ms + 999) / 1000)));
      res.set("retry-after-ms", std::to_string(retry_ms));
      co_await writer.Send(std::move(res), rate_lines);
      co_return;
    }
    case Admission::Outcome::kStoreError: {
      if (snap.config->store.on_store_error == OnStoreError::kDeny) {
        // The store may have charged it before its reply was lost: given back.
        limiter_.SettleInBackground(co_await asio::this_coro::executor,
                                    std::move(admission.reservation), 0,
                                    SettlementSource::kEstimate);
        count_status(model_name, 503);
        co_await writer.Send(ErrorResponse(503, "api_error", "model_unavailable",
                                           "The rate-limit store is unavailable. Retry later."));
        co_return;
      }
      metrics_.store_fail_open.With({}).Add();
      break;
    }
  }

  // forward + relay
  RequestSeries& series = SeriesFor(model_name, key_name);
  series.inflight->Add(1);
  ExchangeRequest exchange{model,
                           std::string(PathOf(request.target())),
                           &request,
                           {},
                           fields.stream,
                           fields.include_usage,
                           std::move(rate_lines),
                           &counter};
  exchange.deadline = started + model->config->request_timeout;
  exchange.usage_fields = endpoint == ApiEndpoint::kEmbeddings ? UsageFields::kPromptOnly
                                                               : UsageFields::kPromptAndCompletion;
  // The canonical model name, the reserved cap, include_usage: edited in place, moved not copied.
  RewriteForwardBody(endpoint, fields, model_name, cap, request.body());
  exchange.body = std::move(request.body());
  overhead_.Observe(Seconds(std::chrono::steady_clock::now() - started));
  ExchangeResult result = co_await ForwardAndRelay(exchange, writer);
  series.inflight->Add(-1);

  // settle: the backend's usage, else what was sent to it and relayed, counted here
  int64_t prompt = 0, completion = 0;
  if (result.usage) {
    prompt = result.usage->prompt_tokens;
    completion = result.usage->completion_tokens;
  } else if (result.uncountable) {
    prompt = prompt_estimate;  // it may have generated all it was allowed
    completion = output_allowance;
  } else if (result.reached_backend && !result.backend_rejected) {
    prompt = prompt_estimate;
    completion = result.relayed_tokens;
  }
  // (A let-through store failure's reservation too: the store may have charged it.)
  limiter_.SettleInBackground(co_await asio::this_coro::executor, std::move(admission.reservation),
                              prompt + completion,
                              result.usage ? SettlementSource::kUsage : SettlementSource::kEstimate);

  // record
  if (usage_) {
    usage_->RecordAdmitted(key_name, identity->tenant, model_name, clock_.NowMicros() / 1'000'000,
                           prompt, completion);
  }
  if (!result.error_reason.empty()) {
    metrics_.upstream_errors.With({model_name, result.backend, result.error_reason}).Add();
  }
  if (result.usage_invalid) metrics_.usage_invalid.With({model_name}).Add();
  series.prompt->Add(static_cast<double>(prompt));
  series.completion->Add(static_cast<double>(completion));
  if (result.status == 200) {
    series.ok->Add();
  } else {
    count_status(model_name, result.status ? result.status : 499);
  }
  const auto now = std::chrono::steady_clock::now();
  series.duration->Observe(Seconds(now - started));
  if (result.first_byte) series.ttft->Observe(Seconds(*result.first_byte - started));
}

}  // namespace trl
