// An Upstream that plays scripted exchanges instead of talking to a backend: each one writes
// an answer to the client as PooledUpstream would (a relayed answer with the exchange's head
// lines, a stream as one chunk, a failure of the gateway's own without them) and reports the
// ExchangeResult the test chose. It keeps what the gateway asked for, so tests see the body it
// forwarded and the rate-limit head lines it attached.
//
// Threading: one test thread.
#pragma once

#include <deque>
#include <string>
#include <vector>

#include "proxy/upstream.h"

namespace trl {

class FakeUpstream final : public Upstream {
 public:
  struct Exchange {
    ExchangeResult result;  // result.status is what the client is sent (0: nothing, it left)
    std::string body;       // the answer's body, or the stream's events
    bool stream = false;
  };
  // What one exchange was asked to do.
  struct Seen {
    std::string model;
    std::string target;
    std::string body;
    bool stream = false;
    bool client_wants_usage = false;
    std::string head_lines;
    UsageFields usage_fields = UsageFields::kPromptAndCompletion;
    std::chrono::steady_clock::time_point deadline;
    std::string content_type;
    std::string method;
  };

  // A backend's 200 JSON answer reporting `usage` (nullopt: none, and `relayed` tokens counted).
  static Exchange Answer(std::optional<Usage> usage, int64_t relayed = 0) {
    Exchange e;
    e.result.status = 200;
    e.result.reached_backend = true;
    e.result.backend_status = 200;
    e.result.usage = usage;
    e.result.relayed_tokens = relayed;
    e.result.backend = "http://backend-1";
    e.body = R"({"object":"chat.completion"})";
    return e;
  }
  // The gateway's own error answer for a failed exchange.
  static Exchange Failure(unsigned status, UpstreamFailure failure, std::string body) {
    Exchange e;
    e.result.status = status;
    e.result.failure = failure;
    e.result.backend = "http://backend-1";
    e.body = std::move(body);
    return e;
  }

  // Played in order; once none is left, each exchange is Answer(nullopt).
  void Push(Exchange exchange) { script_.push_back(std::move(exchange)); }
  const std::vector<Seen>& seen() const { return seen_; }

  asio::awaitable<ExchangeResult> ForwardAndRelay(ExchangeRequest& request,
                                                  http::ResponseWriter& writer) override {
    seen_.push_back({request.model->config->name, request.target, request.body, request.stream,
                     request.client_wants_usage, request.head_lines, request.usage_fields,
                     request.deadline, std::string(request.content_type),
                     std::string(request.method)});
    Exchange e = script_.empty() ? Answer(std::nullopt) : std::move(script_.front());
    if (!script_.empty()) script_.pop_front();
    const unsigned status = e.result.status;
    if (status == 0) co_return e.result;
    if (e.stream) {
      http::Fields fields;
      fields.set(http::bhttp::field::content_type, "text/event-stream");
      if (co_await writer.StartStream(status, std::move(fields), request.head_lines) &&
          co_await writer.WriteChunk(e.body)) {
        co_await writer.FinishStream();
      }
      co_return e.result;
    }
    http::Response response{static_cast<http::bhttp::status>(status), 11};
    response.set(http::bhttp::field::content_type, "application/json");
    response.body() = std::move(e.body);
    const bool relayed = e.result.reached_backend && status < 500;
    co_await writer.Send(std::move(response),
                         relayed ? std::string_view(request.head_lines) : std::string_view());
    co_return e.result;
  }

 private:
  std::deque<Exchange> script_;
  std::vector<Seen> seen_;
};

}  // namespace trl
