#include "mock/mock_responses.h"

#include <fmt/format.h>

#include <iterator>
#include <optional>
#include <string_view>
#include <utility>

#include "mock/mock_json.h"

namespace trl {
namespace {

namespace dom = simdjson::dom;

// The members a response repeats from its request, with what it shows when the request has none.
constexpr std::pair<std::string_view, std::string_view> kEchoed[] = {
    {"background", "false"},
    {"instructions", "null"},
    {"max_output_tokens", "null"},
    {"max_tool_calls", "null"},
    {"metadata", "{}"},
    {"parallel_tool_calls", "true"},
    {"previous_response_id", "null"},
    {"reasoning", R"({"effort":null,"summary":null})"},
    {"service_tier", R"("auto")"},
    {"store", "false"},
    {"temperature", "1.0"},
    {"text", R"({"format":{"type":"text"}})"},
    {"tool_choice", R"("auto")"},
    {"tools", "[]"},
    {"top_logprobs", "0"},
    {"top_p", "1.0"},
    {"truncation", R"("disabled")"},
    {"user", "null"},
};

void RenderEcho(dom::object root, std::string& echo) {
  for (auto [key, fallback] : kEchoed) {
    fmt::format_to(std::back_inserter(echo), R"("{}":)", key);
    auto value = LastValue(root, key);
    echo += value ? simdjson::minify(*value) : std::string(fallback);
    echo += ',';
  }
}

// The types of the members the mock reads, other than input and model.
std::optional<MockError> CheckTypes(dom::object root, MockRequest& request) {
  for (std::string_view key : {"instructions", "previous_response_id"}) {
    auto value = LastValue(root, key);
    if (value && !value->is_string())
      return BadRequest(std::string(key) + " must be a string", key);
  }
  for (std::string_view key : {"stream", "background"}) {
    auto value = LastValue(root, key);
    bool flag = false;
    if (value && value->get_bool().get(flag)) {
      return BadRequest(std::string(key) + " must be a boolean", key);
    }
    if (key == "stream") request.stream = flag;
  }
  if (auto tools = LastValue(root, "tools"); tools && !tools->is_array()) {
    return BadRequest("tools must be an array", "tools");
  }
  auto cap = LastValue(root, "max_output_tokens");
  if (cap && (cap->get_int64().get(request.max_tokens) || request.max_tokens < 0)) {
    return BadRequest("max_output_tokens must be an integer >= 0", "max_output_tokens");
  }
  return std::nullopt;
}

// input_tokens by the usage rule; CheckTypes has checked instructions and tools.
std::optional<MockError> CountPrompt(dom::object root, MockRequest& request) {
  if (auto instructions = LastValue(root, "instructions")) {
    request.prompt_tokens += kTokensPerMessage + CountWords(std::string_view(*instructions));
  }
  if (auto tools = LastValue(root, "tools")) request.prompt_tokens += CountStringWords(*tools);
  auto input = LastValue(root, "input");
  if (!input) return BadRequest("input is required", "input");
  if (input->is_string()) {
    request.prompt_tokens += kTokensPerMessage + CountWords(std::string_view(*input));
    return std::nullopt;
  }
  if (!CountMessages(*input, request.prompt_tokens, /*item_type_is_markup=*/true)) {
    return BadRequest("input must be a string or a non-empty array of item objects", "input");
  }
  return std::nullopt;
}

void AppendResponsesUsage(std::string& out, const MockUsage& usage, MockUsageReport report) {
  out += R"("usage":)";
  if (report == MockUsageReport::kNone) {
    out += "null";
    return;
  }
  std::string input = std::to_string(usage.prompt_tokens);
  std::string total = std::to_string(usage.Total());
  if (report == MockUsageReport::kNegative || report == MockUsageReport::kHuge) {
    const int64_t prompt = report == MockUsageReport::kNegative ? -1'000'000 : 1'000'000'001;
    input = std::to_string(prompt);
    total = std::to_string(prompt + usage.completion_tokens);
  } else if (report == MockUsageReport::kFloat) {
    input += ".5";
    total += ".5";
  }
  fmt::format_to(std::back_inserter(out), R"({{"input_tokens":{},"input_tokens_details":)", input);
  out += R"({"cached_tokens":0},)";
  if (report != MockUsageReport::kNoCompletion) {
    fmt::format_to(std::back_inserter(out), R"("output_tokens":{},)", usage.completion_tokens);
  }
  fmt::format_to(std::back_inserter(out),
                 R"("output_tokens_details":{{"reasoning_tokens":0}},"total_tokens":{}}})", total);
}

// {"type":"output_text","text":"w1 ... wN","annotations":[],"logprobs":[]}
void AppendTextPart(std::string& out, int64_t words) {
  out += R"({"type":"output_text","text":")";
  AppendAnswerText(out, words);
  out += R"(","annotations":[],"logprobs":[]})";
}

// The output message; words < 0 = just added: in progress, no content yet.
void AppendMessageItem(std::string& out, const MockResponseMeta& meta, int64_t words,
                       std::string_view status) {
  fmt::format_to(std::back_inserter(out),
                 R"({{"id":"{}","type":"message","status":"{}","role":"assistant","content":[)",
                 meta.item_id, status);
  if (words >= 0) AppendTextPart(out, words);
  out += "]}";
}

// The response object; `answer` null = in progress (no output, usage null).
void AppendResponseObject(std::string& out, const MockRequest& request,
                          const MockResponseMeta& meta, const MockAnswer* answer,
                          MockUsageReport report) {
  fmt::format_to(std::back_inserter(out), R"({{"id":"{}","object":"response","created_at":{},)",
                 meta.id, meta.created);
  out += R"("model":)";
  AppendJsonString(out, meta.model);
  out += ',';
  out += request.echo;
  if (answer == nullptr) {
    out += R"("status":"in_progress","incomplete_details":null,"error":null,"output":[],)";
    out += R"("usage":null})";
    return;
  }
  const bool incomplete = answer->finish_reason == "length";
  out += incomplete
             ? R"("status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},)"
             : R"("status":"completed","incomplete_details":null,)";
  out += R"("error":null,"output":[)";
  AppendMessageItem(out, meta, answer->words, incomplete ? "incomplete" : "completed");
  out += "],";
  AppendResponsesUsage(out, answer->usage, report);
  out += '}';
}

// "event: <type>\ndata: {"type":"<type>","sequence_number":<n>," — the caller ends it.
void AppendEventStart(std::string& out, std::string_view type, int64_t sequence_number) {
  fmt::format_to(std::back_inserter(out),
                 "event: {}\ndata: {{\"type\":\"{}\",\"sequence_number\":{},", type, type,
                 sequence_number);
}

// "item_id":..,"output_index":0,"content_index":0,
void AppendPartAddress(std::string& out, const MockResponseMeta& meta) {
  fmt::format_to(std::back_inserter(out), R"("item_id":"{}","output_index":0,"content_index":0,)",
                 meta.item_id);
}

constexpr std::string_view kEventEnd = "}\n\n";

}  // namespace

std::variant<MockRequest, MockError> ParseResponsesRequest(std::string& body,
                                                           const MockOptions& options) {
  std::optional<dom::object> root = ParseJsonObject(body);
  if (!root) return BadRequest("request body is not a valid JSON object");
  MockRequest request;
  request.endpoint = MockEndpoint::kResponses;
  if (auto error = CheckTypes(*root, request)) return *error;
  if (auto error = ReadModel(*root, options, request.model)) return *error;
  if (auto error = CountPrompt(*root, request)) return *error;
  RenderEcho(*root, request.echo);
  return request;
}

void AppendResponsesItemId(std::string& out, uint64_t seq) {
  fmt::format_to(std::back_inserter(out), "msg_mock{}", seq);
}

void AppendResponsesBody(std::string& out, const MockRequest& request, const MockResponseMeta& meta,
                         const MockAnswer& answer, MockUsageReport report) {
  AppendResponseObject(out, request, meta, &answer, report);
}

void AppendResponsesStreamHead(std::string& out, const MockRequest& request,
                               const MockResponseMeta& meta) {
  int64_t sequence_number = 0;
  for (std::string_view type : {"response.created", "response.in_progress"}) {
    AppendEventStart(out, type, sequence_number++);
    out += R"("response":)";
    AppendResponseObject(out, request, meta, nullptr, MockUsageReport::kNone);
    out += kEventEnd;
  }
  AppendEventStart(out, "response.output_item.added", sequence_number++);
  out += R"("output_index":0,"item":)";
  AppendMessageItem(out, meta, -1, "in_progress");
  out += kEventEnd;
  AppendEventStart(out, "response.content_part.added", sequence_number++);
  AppendPartAddress(out, meta);
  out += R"("part":{"type":"output_text","text":"","annotations":[],"logprobs":[]})";
  out += kEventEnd;
}

void AppendResponsesStreamDelta(std::string& out, const MockResponseMeta& meta, int64_t word) {
  AppendEventStart(out, "response.output_text.delta", 3 + word);
  AppendPartAddress(out, meta);
  fmt::format_to(std::back_inserter(out), R"("delta":"{}w{}","logprobs":[])", word == 1 ? "" : " ",
                 word);
  out += kEventEnd;
}

void AppendResponsesStreamTail(std::string& out, const MockRequest& request,
                               const MockResponseMeta& meta, const MockAnswer& answer,
                               MockUsageReport report) {
  int64_t sequence_number = 4 + answer.words;
  AppendEventStart(out, "response.output_text.done", sequence_number++);
  AppendPartAddress(out, meta);
  out += R"("text":")";
  AppendAnswerText(out, answer.words);
  out += R"(","logprobs":[])";
  out += kEventEnd;
  AppendEventStart(out, "response.content_part.done", sequence_number++);
  AppendPartAddress(out, meta);
  out += R"("part":)";
  AppendTextPart(out, answer.words);
  out += kEventEnd;
  AppendEventStart(out, "response.output_item.done", sequence_number++);
  out += R"("output_index":0,"item":)";
  const bool incomplete = answer.finish_reason == "length";
  AppendMessageItem(out, meta, answer.words, incomplete ? "incomplete" : "completed");
  out += kEventEnd;
  AppendEventStart(out, "response.completed", sequence_number);
  out += R"("response":)";
  AppendResponseObject(out, request, meta, &answer, report);
  out += kEventEnd;
}

}  // namespace trl
