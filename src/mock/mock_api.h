// The pure half of mock-llm: request parsing, usage counting, answer generation and the exact
// JSON / SSE bytes of every response. No sockets, no clocks: mock_server.cc owns those.
// Every function is thread-safe; Append* functions only append to `out`, so a session can reuse
// one buffer per response without allocating.
//
// Requests are read as vLLM reads them (Python's json, then pydantic):
// - In every object (the root, stream_options, messages, tools...) the last of repeated keys
//   wins entirely, and null means absent (Python's None), also when it comes last.
// - The output cap is `max_completion_tokens or max_tokens` with Python truthiness: 0 (or null)
//   is no cap. Negative or non-integer values are a 400.
// - stream_options without include_usage (or with null) sends no usage chunk, as OpenAI
//   documents it. (vLLM's pydantic default for a present stream_options would be true.)
//   continuous_usage_stats: true (with include_usage) puts the usage so far on every chunk
//   that carries choices as well, as vLLM does.
//
// Usage rule. Prompt tokens: whitespace-separated words (CountWords) of everything the model
// reads. Chat: every string value inside `messages` (content and its parts, `name`, tool calls,
// `tool_call_id`, any other member) except the values of a message's `role` and of a content
// part's `type`, plus kTokensPerMessage per message; plus every string value inside the
// top-level `tools`, `functions` and `response_format`, which vLLM renders into the prompt.
// Completions `prompt` and embeddings `input`: a string, an array of strings, an array of
// token ids or an array of token-id arrays; each id is one token. Completion tokens: the words
// generated.
//
// Answer rule. With a cap, an answer has min(cap, --max-output) words and finish_reason
// "length" when the cap ended it (cap <= --max-output), "stop" when it ended on its own at
// --max-output words. Without a cap it has --default-max-output words and finish_reason
// "length": like vLLM filling the context, the limit always ends it. A chat request with a
// non-empty `tools` array (tool_choice not "none") is answered with one call to the first tool
// instead of content: arguments `{"text":"w1 ... wN"}` for the same N words, finish_reason
// "tool_calls".
//
// Cached tokens. The request header `x-mock-cached-tokens: N` (chat and completions only; read
// with or without --faults, as it changes only the numbers reported) makes the usage say that
// M = min(N, prompt tokens) of the prompt tokens came from a prefix cache, as vLLM with prefix
// caching does: `"prompt_tokens_details":{"cached_tokens":M}` after total_tokens, in a whole
// answer's usage and in the include_usage chunk (not in continuous_usage_stats chunks, as vLLM
// puts none there). prompt_tokens and total_tokens do not change: cached tokens are part of the
// prompt. Without the header the usage has no prompt_tokens_details.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "mock/mock_options.h"

namespace trl {

// kResponses: POST /v1/responses (mock_responses.h), which reads and writes its own shapes but
// plans its answer, paces it and counts it as chat does.
enum class MockEndpoint { kChat, kCompletions, kEmbeddings, kResponses };

// Injected by the request header `x-mock-fault`; unknown values mean kNone. The usage-* faults
// answer normally but report a usage no client should trust (AppendUsage below).
enum class MockFault {
  kNone,
  kHttp500,
  kReset,
  kHang,
  kTruncateStream,
  kNoUsage,
  kUsageNegative,      // usage-negative
  kUsageHuge,          // usage-huge
  kUsageFloat,         // usage-float
  kUsageNoCompletion,  // usage-no-completion
};
MockFault ParseMockFault(std::string_view header_value);

// How a response reports its usage: not at all (x-mock-fault: no-usage), as it is, or wrong in
// one way (the usage-* faults):
//  - kNegative: prompt_tokens -1000000 (a refund of a million, to whoever trusts it);
//  - kHuge: prompt_tokens 1000000001 (one more than 10^9);
//  - kFloat: prompt_tokens with ".5" after the true count;
//  - kNoCompletion: no completion_tokens member (an embeddings usage has none anyway).
// completion_tokens is the true count (0 in a wrong embeddings usage), and total_tokens the sum
// of the two as written.
enum class MockUsageReport { kNone, kValid, kNegative, kHuge, kFloat, kNoCompletion };
MockUsageReport UsageReportFor(MockFault fault);

inline constexpr int64_t kTokensPerMessage = 3;

struct MockUsage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  // Of prompt_tokens, those served from the cache (x-mock-cached-tokens); unset: not reported.
  std::optional<int64_t> cached_tokens = std::nullopt;
  int64_t Total() const { return prompt_tokens + completion_tokens; }
};

// A validated request. `model` points into MockOptions::models and `tool_name` is owned, so
// both outlive the body and the parser's buffers.
struct MockRequest {
  MockEndpoint endpoint = MockEndpoint::kChat;
  std::string_view model;
  int64_t max_tokens = 0;  // the cap: max_completion_tokens or max_tokens; 0 = no cap
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  // stream_options.continuous_usage_stats, as vLLM reads it: with include_usage, every chunk
  // that carries choices carries the usage so far too.
  bool continuous_usage = false;
  bool base64 = false;                   // embeddings: encoding_format "base64"
  int64_t prompt_tokens = 0;             // by the usage rule above
  std::optional<int64_t> cached_tokens;  // x-mock-cached-tokens as given (ReadCachedTokensHeader)
  std::vector<uint64_t> input_hashes;    // embeddings: one per input, seeds its vector
  std::string tool_name;  // chat: the first tool's function.name when answering with a tool call
  // Responses: the request fields a response object repeats ("instructions":..,"tools":[..],...
  // each followed by a comma), rendered once by ParseResponsesRequest.
  std::string echo;
  bool ToolCall() const { return !tool_name.empty(); }
};

// An OpenAI-shaped error; empty param/code serialize as null.
struct MockError {
  int status = 400;
  std::string message;
  std::string_view type = "invalid_request_error";
  std::string_view param;
  std::string_view code;
};

// Parses and validates a body for `endpoint`, by the rules above. Pads `body` in place for
// simdjson (may reallocate it; its bytes do not change). Uses a thread-local parser.
std::variant<MockRequest, MockError> ParseMockRequest(MockEndpoint endpoint, std::string& body,
                                                      const MockOptions& options);

inline constexpr std::string_view kCachedTokensHeader = "x-mock-cached-tokens";
// Reads an x-mock-cached-tokens value into request.cached_tokens: one or more ASCII digits (a
// number beyond int64 reads as its maximum, which the prompt then caps). Anything else (empty,
// a sign, a fraction, a list of values) is a 400 naming the header.
std::optional<MockError> ReadCachedTokensHeader(std::string_view value, MockRequest& request);

// How the answer to a chat/completions request comes out (the answer rule above). Its usage
// carries min(request.cached_tokens, prompt_tokens) when the request has cached_tokens.
struct MockAnswer {
  int64_t words = 0;               // = completion tokens
  std::string_view finish_reason;  // "length", "stop" or "tool_calls"
  MockUsage usage;
  bool tool_call = false;  // a tool call whose arguments carry the words
};
MockAnswer PlanMockAnswer(const MockRequest& request, const MockOptions& options);

// Identity shared by every event of one response.
struct MockResponseMeta {
  std::string_view id;
  int64_t created = 0;  // unix seconds
  std::string_view model;
  std::string_view tool_call_id;  // tool-call answers: "call_mock<seq>"
  std::string_view tool_name;     // tool-call answers: the function called
  std::string_view item_id;       // Responses: the output message's id, "msg_mock<seq>"
};

// Number of whitespace-separated words.
int64_t CountWords(std::string_view text);
// The deterministic answer: "w1 w2 ... wN".
void AppendAnswerText(std::string& out, int64_t words);
// The tool-call arguments: {"text":"w1 w2 ... wN"}.
void AppendToolArguments(std::string& out, int64_t words);
// "chatcmpl-mock<seq>", "cmpl-mock<seq>", "embd-mock<seq>" or "resp_mock<seq>".
void AppendResponseId(std::string& out, MockEndpoint endpoint, uint64_t seq);
// "call_mock<seq>".
void AppendToolCallId(std::string& out, uint64_t seq);

// `text` as a JSON string literal. Bytes that are not UTF-8 become U+FFFD, so the output is
// valid JSON for any input (a request body as received, say).
void AppendJsonString(std::string& out, std::string_view text);

// True when an Accept-Encoding value accepts gzip: a `gzip` coding whose q is not 0.
// `identity`, `*` and no header at all mean no compression.
bool AcceptsGzip(std::string_view accept_encoding);

// One request as GET /mock/requests lists it.
struct MockHeader {
  std::string_view name;
  std::string_view value;
};
struct MockRequestRecord {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;  // lower-case names, in order
  std::string body;        // as received, cut to the limit at a UTF-8 character boundary
  bool truncated = false;  // the body was longer than the limit
};
// Lower-cases the header names and joins the values of a repeated name with ", " (at its first
// place), so the names are unique JSON keys; keeps at most `body_limit` bytes of the body.
MockRequestRecord MakeRequestRecord(std::string_view method, std::string_view target,
                                    const std::vector<MockHeader>& headers, std::string_view body,
                                    size_t body_limit);
// {"method":..,"target":..,"headers":{name:value,...},"body":"..."}, with "truncated":true last
// when the body was cut.
void AppendRequestRecord(std::string& out, const MockRequestRecord& record);

void AppendErrorBody(std::string& out, const MockError& error);
void AppendModelsBody(std::string& out, const std::vector<std::string>& models, int64_t created);
// "usage":{...} as `report` says (kNone appends nothing), ending with
// "prompt_tokens_details":{"cached_tokens":M} when usage.cached_tokens is set (the true M in
// the wrong usages too: the usage-* faults keep their one lie).
void AppendUsage(std::string& out, const MockUsage& usage, MockUsageReport report);
// chat.completion or text_completion, its usage member as `report` says (kNone: none). A
// tool-call answer's message is {"role":"assistant","content":null,"tool_calls":[one call]}.
void AppendCompletionBody(std::string& out, MockEndpoint endpoint, const MockResponseMeta& meta,
                          const MockAnswer& answer, MockUsageReport report);
// One 8-float vector per input, derived from the input's text; usage as `report` says.
void AppendEmbeddingsBody(std::string& out, const MockRequest& request, MockUsageReport report);

// The usage a chunk with choices carries (vLLM's continuous_usage_stats): the prompt and the
// words generated so far, this chunk's included. The default, kNone, puts none on the chunk.
struct MockChunkUsage {
  MockUsageReport report = MockUsageReport::kNone;
  MockUsage usage;
};

// Server-sent events, each a complete "data: ...\n\n". Word k (1-based) streams as "wk" for
// k == 1 and " wk" after, so the deltas concatenate to exactly AppendAnswerText's text.
void AppendStreamToken(std::string& out, MockEndpoint endpoint, const MockResponseMeta& meta,
                       int64_t word, const MockChunkUsage& usage = {});
// A tool-call answer streams as OpenAI and vLLM stream tool calls: a head event whose delta
// names the call (index 0, id, type, function.name, arguments ""), then one event per word
// whose delta carries the next arguments fragment: `{"text":"w1` for word 1, ` wk` after, and
// `"}` closing the last, so the fragments concatenate to AppendToolArguments' text.
void AppendStreamToolCallHead(std::string& out, const MockResponseMeta& meta,
                              const MockChunkUsage& usage = {});
void AppendStreamToolCallToken(std::string& out, const MockResponseMeta& meta, int64_t word,
                               int64_t words, const MockChunkUsage& usage = {});
void AppendStreamFinish(std::string& out, MockEndpoint endpoint, const MockResponseMeta& meta,
                        std::string_view finish_reason, const MockChunkUsage& usage = {});
// The include_usage chunk: no choices, the whole usage as `report` says.
void AppendStreamUsage(std::string& out, MockEndpoint endpoint, const MockResponseMeta& meta,
                       const MockUsage& usage, MockUsageReport report = MockUsageReport::kValid);
inline constexpr std::string_view kStreamDone = "data: [DONE]\n\n";

class MockVocabulary;

// What one request to a utility endpoint (rerank, score, tokenize, detokenize, transcriptions:
// the answers that are one body, generated at once) is given.
struct MockCall {
  std::string& body;              // as received; JSON readers pad it in place
  std::string_view content_type;  // the request's Content-Type (multipart reads its boundary)
  const MockOptions& options;
  MockVocabulary& vocabulary;                        // tokenize and detokenize
  uint64_t seq = 0;                                  // the response's sequence number, for its id
  int64_t created = 0;                               // unix seconds
  MockUsageReport report = MockUsageReport::kValid;  // kNone leaves usage out
};

// A utility endpoint's whole answer.
struct MockReply {
  std::string body;
  std::string_view content_type = "application/json";
  std::string_view model;       // the resolved model, for the metrics
  int64_t prompt_tokens = 0;    // what the model read, for the served_* stats
  bool usage_reported = false;  // the body reports a valid usage of prompt_tokens
  bool prefill = true;          // waits --ttft before answering, as a model's forward pass does
};
using MockResult = std::variant<MockReply, MockError>;

}  // namespace trl
