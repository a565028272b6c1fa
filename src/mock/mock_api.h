// The pure half of mock-llm: request parsing, usage counting, answer generation and the exact
// JSON / SSE bytes of every response. No sockets, no clocks: mock_server.cc owns those.
// Every function is thread-safe; Append* functions only append to `out`, so a session can reuse
// one buffer per response without allocating.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "mock/mock_options.h"

namespace trl {

enum class MockEndpoint { kChat, kCompletions, kEmbeddings };

// Injected by the request header `x-mock-fault`; unknown values mean kNone.
enum class MockFault { kNone, kHttp500, kReset, kHang, kTruncateStream, kNoUsage };
MockFault ParseMockFault(std::string_view header_value);

inline constexpr int64_t kTokensPerMessage = 3;

struct MockUsage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t Total() const { return prompt_tokens + completion_tokens; }
};

// A validated request. `model` points into MockOptions::models, so it outlives the body.
struct MockRequest {
  MockEndpoint endpoint = MockEndpoint::kChat;
  std::string_view model;
  int64_t max_tokens = -1;  // max_completion_tokens, else max_tokens; -1 when neither given
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool base64 = false;         // embeddings: encoding_format "base64"
  int64_t prompt_tokens = 0;   // words of all input text (+ kTokensPerMessage per chat message)
  std::vector<uint64_t> input_hashes;  // embeddings: one per input, seeds its vector
};

// An OpenAI-shaped error; empty param/code serialize as null.
struct MockError {
  int status = 400;
  std::string message;
  std::string_view type = "invalid_request_error";
  std::string_view param;
  std::string_view code;
};

// Parses and validates a body for `endpoint`. Pads `body` in place for simdjson (may
// reallocate it). Uses a thread-local parser.
std::variant<MockRequest, MockError> ParseMockRequest(MockEndpoint endpoint, std::string& body,
                                                      const MockOptions& options);

// How the answer to a chat/completions request comes out.
struct MockAnswer {
  int64_t words = 0;               // = completion tokens
  std::string_view finish_reason;  // "length" when max_tokens capped the answer, else "stop"
  MockUsage usage;
};
MockAnswer PlanMockAnswer(const MockRequest& request, const MockOptions& options);

// Identity shared by every event of one response.
struct MockResponseMeta {
  std::string_view id;
  int64_t created = 0;  // unix seconds
  std::string_view model;
};

// Number of whitespace-separated words.
int64_t CountWords(std::string_view text);
// The deterministic answer: "w1 w2 ... wN".
void AppendAnswerText(std::string& out, int64_t words);
// "chatcmpl-mock<seq>", "cmpl-mock<seq>" or "embd-mock<seq>".
void AppendResponseId(std::string& out, MockEndpoint endpoint, uint64_t seq);

void AppendErrorBody(std::string& out, const MockError& error);
void AppendModelsBody(std::string& out, const std::vector<std::string>& models, int64_t created);
// chat.completion or text_completion; `with_usage` false drops the usage member.
void AppendCompletionBody(std::string& out, MockEndpoint endpoint, const MockResponseMeta& meta,
                          const MockAnswer& answer, bool with_usage);
// One 8-float vector per input, derived from the input's text.
void AppendEmbeddingsBody(std::string& out, const MockRequest& request, bool with_usage);

// Server-sent events, each a complete "data: ...\n\n". Word k (1-based) streams as "wk" for
// k == 1 and " wk" after, so the deltas concatenate to exactly AppendAnswerText's text.
void AppendStreamToken(std::string& out, MockEndpoint endpoint, const MockResponseMeta& meta,
                       int64_t word);
void AppendStreamFinish(std::string& out, MockEndpoint endpoint, const MockResponseMeta& meta,
                        std::string_view finish_reason);
void AppendStreamUsage(std::string& out, MockEndpoint endpoint, const MockResponseMeta& meta,
                       const MockUsage& usage);
inline constexpr std::string_view kStreamDone = "data: [DONE]\n\n";

}  // namespace trl
