// Steps "forward" and "relay": sends one admitted request to a backend of its model and relays
// the answer to the client, streaming chunk by chunk, and reports what settlement needs (the
// usage the backend reported, or the text actually relayed).
//
// Called on the client connection's I/O thread; uses that thread's ConnectionPool.
#pragma once

#include <chrono>
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
  std::string target;            // "/v1/chat/completions" (the backend's base path is added)
  const http::Request* client;   // headers to pass on
  std::string body;              // as forward_body.h rewrote it
  bool stream = false;
  bool client_wants_usage = false;  // keep the usage the backend streams (else removed)
  std::string head_lines;        // added to the client response's head as they are
                                 // (x-ratelimit-*: "name: value\r\n" each)
  const TokenCounter* counter;
  UsageFields usage_fields = UsageFields::kPromptAndCompletion;  // what a valid usage holds
  // The whole exchange ends by then (the model's request_timeout from the request's arrival):
  // a stream is cut with an error event, a plain answer not yet in is a 504.
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};

struct ExchangeResult {
  unsigned status = 0;           // what the client got (0: nothing, the client left first)
  bool reached_backend = false;  // request bytes were sent to a backend
  bool backend_rejected = false; // the backend answered 4xx or 5xx: nothing was served
  std::optional<Usage> usage;    // as the backend reported it, when valid
  bool usage_invalid = false;    // the backend reported a usage that is not valid (sse.h): the
                                 // exchange counts as without usage
  int64_t relayed_tokens = 0;    // completion tokens relayed, counted by the gateway
  std::optional<std::chrono::steady_clock::time_point> first_byte;  // first body byte relayed
  std::string backend;           // the backend that served it (for metrics)
  // "" on success; else connect|reset|timeout|truncated|http5xx|encoding|shutdown
  std::string error_reason;
  // The backend answered in a form whose output cannot be counted (compressed although asked
  // for identity): what it generated is unknown, so the reservation stands as its cost.
  bool uncountable = false;
};

asio::awaitable<ExchangeResult> ForwardAndRelay(ExchangeRequest& request,
                                                http::ResponseWriter& writer);

}  // namespace trl
