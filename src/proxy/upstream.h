// Steps "forward" and "relay" as the gateway sees them: one admitted request goes to a backend
// of its model, its answer to the client, and what settlement needs comes back. The Gateway
// holds an Upstream; production's is PooledUpstream (upstream_exchange.h: pooled keep-alive
// connections, one pool per I/O thread), tests use tests/fakes/fake_upstream.h.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "http/server.h"
#include "limits/token_counter.h"
#include "models/model_registry.h"
#include "proxy/sse.h"

namespace trl {

namespace asio = boost::asio;

struct ExchangeRequest {
  const Model* model;
  std::string target;           // "/v1/chat/completions" (the backend's base path is added)
  const http::Request* client;  // headers to pass on
  std::string body;             // as forward_body.h rewrote it
  bool stream = false;
  bool client_wants_usage = false;  // keep the usage the backend streams (else removed)
  std::string head_lines;           // added to the client response's head as they are
                                    // (x-ratelimit-*: "name: value\r\n" each)
  const TokenCounter* counter;
  UsageFields usage_fields = UsageFields::kPromptAndCompletion;  // what a valid usage holds
  // The whole exchange ends by then (the model's request_timeout from the request's arrival):
  // a stream is cut with an error event, a plain answer not yet in is a 504.
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  // The client's address as the gateway saw it, and whether it is one of
  // server.trusted_proxies, whose X-Forwarded-* are believed (UpstreamHead).
  std::string_view client_address;
  bool client_is_trusted_proxy = false;
  // The request's id (the client's valid x-request-id, else the gateway's), sent to the backend
  // as X-Request-Id in place of whatever the client sent, so its logs match the gateway's.
  std::string_view request_id;
  std::string_view content_type = "application/json";  // the body's ("": none is sent)
  std::string_view method = "POST";
};

// Why an exchange failed: trl_upstream_errors_total{reason} (UpstreamFailureLabel).
enum class UpstreamFailure : uint8_t {
  kNone,
  kConnect,      // "connect": no backend accepted a connection (the last one tried is named)
  kReset,        // "reset": the connection failed before the backend answered
  kTimeout,      // "timeout": the backend was silent for the model's timeout, or the request
                 // passed its request_timeout
  kTruncated,    // "truncated": the answer stopped before its end, or was not valid HTTP
  kHttpStatus,   // "http<status>" ("http500", "http503", ...): the backend answered a 5xx
  kEncoding,     // "encoding": the answer was compressed although identity was asked for
  kShutdown,     // "shutdown": the gateway cut the exchange (its shutdown grace was over)
  kUnavailable,  // "unavailable": no backend of the model was available to try
};

// The reason label; `backend_status` names a kHttpStatus (one series per 5xx status, so that
// a dashboard tells a crashing backend, 500, from an overloaded one, 503).
std::string UpstreamFailureLabel(UpstreamFailure failure, unsigned backend_status);

struct ExchangeResult {
  unsigned status = 0;            // what the client got (0: nothing, the client left first)
  bool reached_backend = false;   // request bytes were sent to a backend
  bool backend_rejected = false;  // the backend answered 4xx or 5xx: nothing was served
  unsigned backend_status = 0;    // the backend's own status, once its answer's head was read
  std::optional<Usage> usage;     // as the backend reported it, when valid
  bool usage_invalid = false;     // the backend reported a usage that is not valid (sse.h): the
                                  // exchange counts as without usage
  int64_t relayed_tokens = 0;     // completion tokens relayed, counted by the gateway
  std::optional<int64_t> audio_seconds;  // a transcription's, as its usage reported them
  std::optional<std::chrono::steady_clock::time_point> first_byte;  // first body byte relayed
  std::string backend;  // the backend that served it (for metrics)
  UpstreamFailure failure = UpstreamFailure::kNone;
  // The backend answered in a form whose output cannot be counted (compressed although asked
  // for identity): what it generated is unknown, so the reservation stands as its cost.
  bool uncountable = false;
};

class Upstream {
 public:
  virtual ~Upstream() = default;
  // Sends `request` to a backend of its model (a connection refused is retried on another one;
  // no byte was sent) and relays the answer through `writer`: a JSON answer whole, a stream
  // event by event, a backend's 5xx as the gateway's own 502, a timeout as a 504, no backend as
  // a 503; a stream that fails midway ends with an error event. The client's leaving abandons
  // the exchange. Never throws. Runs on the client connection's executor; any number of
  // exchanges run at once on every I/O thread.
  virtual asio::awaitable<ExchangeResult> ForwardAndRelay(ExchangeRequest& request,
                                                          http::ResponseWriter& writer) = 0;
};

}  // namespace trl
