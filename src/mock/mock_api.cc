#include "mock/mock_api.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstring>
#include <iterator>
#include <limits>
#include <optional>
#include <utility>

#include "mock/mock_json.h"

namespace trl {
namespace {

namespace dom = simdjson::dom;
using dom::element_type;

constexpr int kEmbeddingDims = 8;
constexpr uint64_t kFnvOffset = 14695981039346656037ull;

uint64_t Fnv1a(std::string_view text, uint64_t hash = kFnvOffset) {
  for (unsigned char c : text) hash = (hash ^ c) * 1099511628211ull;
  return hash;
}

// Exact binary fractions (k/128 - 1), so text and base64 forms carry the same value.
float EmbeddingValue(uint64_t hash, int dim) {
  return static_cast<float>((hash >> (8 * dim)) & 0xff) / 128.0f - 1.0f;
}

void AppendBase64(std::string& out, const unsigned char* data, size_t size) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (size_t i = 0; i < size; i += 3) {
    uint32_t chunk = data[i] << 16;
    if (i + 1 < size) chunk |= data[i + 1] << 8;
    if (i + 2 < size) chunk |= data[i + 2];
    out += kAlphabet[(chunk >> 18) & 63];
    out += kAlphabet[(chunk >> 12) & 63];
    out += i + 1 < size ? kAlphabet[(chunk >> 6) & 63] : '=';
    out += i + 2 < size ? kAlphabet[chunk & 63] : '=';
  }
}

// Length of the well-formed UTF-8 sequence at the start of `text` (RFC 3629: no overlongs, no
// surrogates, nothing above U+10FFFF), or 0 when it is not one.
size_t Utf8SequenceLength(std::string_view text) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  size_t length = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
  if (lead < 0xc2 || lead > 0xf4 || text.size() < length) return 0;
  unsigned char low = 0x80, high = 0xbf;  // the second byte's range, narrowed for some leads
  if (lead == 0xe0) low = 0xa0;
  if (lead == 0xed) high = 0x9f;
  if (lead == 0xf0) low = 0x90;
  if (lead == 0xf4) high = 0x8f;
  if (byte(1) < low || byte(1) > high) return 0;
  for (size_t i = 2; i < length; ++i) {
    if ((byte(i) & 0xc0) != 0x80) return 0;
  }
  return length;
}

void AppendNullableString(std::string& out, std::string_view text) {
  if (text.empty()) {
    out += "null";
  } else {
    AppendJsonString(out, text);
  }
}

// {"id":..,"object":..,"created":..,"model":..,
void AppendPrefix(std::string& out, const MockResponseMeta& meta, std::string_view object) {
  fmt::format_to(std::back_inserter(out), R"({{"id":"{}","object":"{}","created":{},"model":)",
                 meta.id, object, meta.created);
  AppendJsonString(out, meta.model);
  out += ',';
}

// A chunk's end: its choices array is written up to its closing ']'.
void AppendChunkEnd(std::string& out, const MockChunkUsage& usage) {
  if (usage.report != MockUsageReport::kNone) {
    out += ',';
    AppendUsage(out, usage.usage, usage.report);
  }
  out += "}\n\n";
}

std::string_view ChunkObject(MockEndpoint endpoint) {
  return endpoint == MockEndpoint::kChat ? "chat.completion.chunk" : "text_completion";
}

// A non-empty array of integers: one token each; returns false for anything else.
bool CountTokenIds(dom::array ids, int64_t& tokens, uint64_t& hash) {
  size_t count = 0;
  for (dom::element id : ids) {
    int64_t value = 0;
    if (id.get_int64().get(value)) return false;
    hash = Fnv1a(std::string_view(reinterpret_cast<const char*>(&value), sizeof(value)), hash);
    ++count;
  }
  tokens += static_cast<int64_t>(count);
  return count > 0;
}

// The shapes of `prompt` and `input`: a string, or a non-empty array of strings, of token ids
// (one input) or of non-empty token-id arrays. `hashes` gets one hash per input.
bool CountTextInputs(dom::element value, int64_t& tokens, std::vector<uint64_t>* hashes) {
  const auto add = [&](uint64_t hash) {
    if (hashes) hashes->push_back(hash);
  };
  if (value.is_string()) {
    std::string_view text(value);
    tokens += CountWords(text);
    add(Fnv1a(text));
    return true;
  }
  if (!value.is_array() || dom::array(value).size() == 0) return false;
  dom::array items(value);
  if ((*items.begin()).is_number()) {
    uint64_t hash = kFnvOffset;
    if (!CountTokenIds(items, tokens, hash)) return false;
    add(hash);
    return true;
  }
  for (dom::element item : items) {
    if (item.is_string()) {
      std::string_view text(item);
      tokens += CountWords(text);
      add(Fnv1a(text));
      continue;
    }
    uint64_t hash = kFnvOffset;
    if (!item.is_array() || !CountTokenIds(dom::array(item), tokens, hash)) return false;
    add(hash);
  }
  return true;
}

// The last value of each root member the mock reads; absent and null members stay empty.
struct RootFields {
  std::optional<dom::element> model, max_tokens, max_completion_tokens, stream, stream_options,
      encoding_format, messages, prompt, input, tools, functions, response_format, tool_choice;

  explicit RootFields(dom::object root) {
    const std::pair<std::string_view, std::optional<dom::element>*> members[] = {
        {"model", &model},
        {"max_tokens", &max_tokens},
        {"max_completion_tokens", &max_completion_tokens},
        {"stream", &stream},
        {"stream_options", &stream_options},
        {"encoding_format", &encoding_format},
        {"messages", &messages},
        {"prompt", &prompt},
        {"input", &input},
        {"tools", &tools},
        {"functions", &functions},
        {"response_format", &response_format},
        {"tool_choice", &tool_choice}};
    for (auto field : root) {  // later occurrences overwrite earlier ones: the last wins
      for (auto& [name, slot] : members) {
        if (field.key == name) *slot = field.value;
      }
    }
    for (auto& [name, slot] : members) {
      if (*slot && (*slot)->is_null()) slot->reset();
    }
  }
};

// max_tokens / max_completion_tokens: absent is 0; anything but an integer >= 0 is an error.
std::optional<MockError> ReadCap(const std::optional<dom::element>& value, std::string_view param,
                                 int64_t& cap) {
  cap = 0;
  if (value && (value->get_int64().get(cap) || cap < 0)) {
    return BadRequest(std::string(param) + " must be an integer >= 0", param);
  }
  return std::nullopt;
}

// stream and stream_options.include_usage.
std::optional<MockError> ReadStreamFlags(const RootFields& root, MockRequest& request) {
  if (root.stream && root.stream->get_bool().get(request.stream)) {
    return BadRequest("stream must be a boolean", "stream");
  }
  if (!root.stream_options) return std::nullopt;
  if (!root.stream_options->is_object()) return BadRequest("bad stream_options", "stream_options");
  dom::object options(*root.stream_options);
  auto include_usage = LastValue(options, "include_usage");
  if (include_usage && include_usage->get_bool().get(request.include_usage)) {
    return BadRequest("include_usage must be a boolean", "stream_options");
  }
  auto continuous = LastValue(options, "continuous_usage_stats");
  if (continuous && continuous->get_bool().get(request.continuous_usage)) {
    return BadRequest("continuous_usage_stats must be a boolean", "stream_options");
  }
  return std::nullopt;
}

// messages, tools, functions and response_format; and whether to answer with a tool call.
// An absent messages is left to the caller, which reports an unknown model first.
std::optional<MockError> ReadChat(const RootFields& root, MockRequest& request) {
  if (root.messages && !CountMessages(*root.messages, request.prompt_tokens)) {
    return BadRequest("messages must be a non-empty array of message objects", "messages");
  }
  for (const auto* rendered : {&root.tools, &root.functions, &root.response_format}) {
    if (*rendered) request.prompt_tokens += CountStringWords(**rendered);
  }
  if (!root.tools) return std::nullopt;
  if (!root.tools->is_array()) return BadRequest("tools must be an array", "tools");
  dom::array tools(*root.tools);
  std::string_view choice;
  const bool none = root.tool_choice &&
                    root.tool_choice->get_string().get(choice) == simdjson::SUCCESS &&
                    choice == "none";
  if (tools.size() == 0 || none) return std::nullopt;
  const MockError bad_tool = BadRequest("tools[0].function.name must be a string", "tools");
  dom::element first = *tools.begin();
  if (!first.is_object()) return bad_tool;
  auto function = LastValue(dom::object(first), "function");
  if (!function || !function->is_object()) return bad_tool;
  auto name = LastValue(dom::object(*function), "name");
  if (!name || !name->is_string() || std::string_view(*name).empty()) return bad_tool;
  request.tool_name = std::string_view(*name);
  return std::nullopt;
}

// prompt (completions) or input (embeddings, with encoding_format); absent ones as in ReadChat.
std::optional<MockError> ReadTextInputs(const RootFields& root, MockRequest& request) {
  if (request.endpoint == MockEndpoint::kCompletions) {
    if (root.prompt && !CountTextInputs(*root.prompt, request.prompt_tokens, nullptr)) {
      return BadRequest("prompt must be a string, an array of strings or token ids", "prompt");
    }
    return std::nullopt;
  }
  if (root.encoding_format) {
    std::string_view format;
    if (root.encoding_format->get_string().get(format) ||
        (format != "float" && format != "base64")) {
      return BadRequest("encoding_format must be \"float\" or \"base64\"", "encoding_format");
    }
    request.base64 = format == "base64";
  }
  if (root.input && !CountTextInputs(*root.input, request.prompt_tokens, &request.input_hashes)) {
    return BadRequest("input must be a string, an array of strings or token ids", "input");
  }
  return std::nullopt;
}

std::optional<MockError> ResolveModel(std::string_view model, const MockOptions& options,
                                      MockRequest& request) {
  return FindModel(model, options, request.model);
}

// The endpoint's required input (messages, prompt or input); embeddings never stream.
std::optional<MockError> RequireInput(const RootFields& root, MockRequest& request) {
  switch (request.endpoint) {
    case MockEndpoint::kChat:
      if (!root.messages) return BadRequest("messages is required", "messages");
      break;
    case MockEndpoint::kCompletions:
      if (!root.prompt) return BadRequest("prompt is required", "prompt");
      break;
    case MockEndpoint::kEmbeddings:
      if (!root.input) return BadRequest("input is required", "input");
      request.stream = false;
      break;
    case MockEndpoint::kResponses:  // read by ParseResponsesRequest instead
      break;
  }
  return std::nullopt;
}

}  // namespace

MockFault ParseMockFault(std::string_view header_value) {
  if (header_value == "http500") return MockFault::kHttp500;
  if (header_value == "reset") return MockFault::kReset;
  if (header_value == "hang") return MockFault::kHang;
  if (header_value == "truncate-stream") return MockFault::kTruncateStream;
  if (header_value == "no-usage") return MockFault::kNoUsage;
  if (header_value == "usage-negative") return MockFault::kUsageNegative;
  if (header_value == "usage-huge") return MockFault::kUsageHuge;
  if (header_value == "usage-float") return MockFault::kUsageFloat;
  if (header_value == "usage-no-completion") return MockFault::kUsageNoCompletion;
  return MockFault::kNone;
}

MockUsageReport UsageReportFor(MockFault fault) {
  switch (fault) {
    case MockFault::kNoUsage:
      return MockUsageReport::kNone;
    case MockFault::kUsageNegative:
      return MockUsageReport::kNegative;
    case MockFault::kUsageHuge:
      return MockUsageReport::kHuge;
    case MockFault::kUsageFloat:
      return MockUsageReport::kFloat;
    case MockFault::kUsageNoCompletion:
      return MockUsageReport::kNoCompletion;
    default:
      return MockUsageReport::kValid;
  }
}

int64_t CountWords(std::string_view text) {
  int64_t words = 0;
  bool in_word = false;
  for (char c : text) {
    bool space = IsSpace(c);
    if (!space && !in_word) ++words;
    in_word = !space;
  }
  return words;
}

std::variant<MockRequest, MockError> ParseMockRequest(MockEndpoint endpoint, std::string& body,
                                                      const MockOptions& options) {
  std::optional<dom::object> doc = ParseJsonObject(body);
  if (!doc) return BadRequest("request body is not a valid JSON object");
  const RootFields root{*doc};

  MockRequest request;
  request.endpoint = endpoint;
  std::string_view model;
  if (root.model && root.model->get_string().get(model)) {
    return BadRequest("model must be a string", "model");
  }
  int64_t max_tokens = 0;
  int64_t max_completion_tokens = 0;
  for (auto error :
       {ReadCap(root.max_tokens, "max_tokens", max_tokens),
        ReadCap(root.max_completion_tokens, "max_completion_tokens", max_completion_tokens)}) {
    if (error) return *error;
  }
  // vLLM: `max_completion_tokens or max_tokens`, so a 0 is passed over like a None.
  request.max_tokens = max_completion_tokens ? max_completion_tokens : max_tokens;
  if (auto error = ReadStreamFlags(root, request)) return *error;
  if (auto error = endpoint == MockEndpoint::kChat ? ReadChat(root, request)
                                                   : ReadTextInputs(root, request)) {
    return *error;
  }
  if (auto error = ResolveModel(model, options, request)) return *error;
  if (auto error = RequireInput(root, request)) return *error;
  return request;
}

std::optional<MockError> ReadCachedTokensHeader(std::string_view value, MockRequest& request) {
  const bool digits = !value.empty() && std::all_of(value.begin(), value.end(),
                                                    [](char c) { return c >= '0' && c <= '9'; });
  if (!digits) {
    std::string message(kCachedTokensHeader);
    message += " must be a non-negative integer, got \"";
    message += value;
    message += '"';
    return BadRequest(std::move(message), kCachedTokensHeader);
  }
  int64_t tokens = 0;
  if (std::from_chars(value.data(), value.data() + value.size(), tokens).ec != std::errc{}) {
    tokens = std::numeric_limits<int64_t>::max();  // only digits, so too large
  }
  request.cached_tokens = tokens;
  return std::nullopt;
}

MockAnswer PlanMockAnswer(const MockRequest& request, const MockOptions& options) {
  MockAnswer answer;
  if (request.endpoint == MockEndpoint::kEmbeddings) {
    answer.finish_reason = "stop";
    answer.usage.prompt_tokens = request.prompt_tokens;
    return answer;
  }
  if (request.max_tokens > 0) {
    const bool cut = request.max_tokens <= options.max_output;
    answer.words = cut ? request.max_tokens : options.max_output;
    answer.finish_reason = cut ? "length" : "stop";
  } else {
    answer.words = options.DefaultMaxOutput();
    answer.finish_reason = "length";
  }
  answer.tool_call = request.ToolCall();
  if (answer.tool_call) answer.finish_reason = "tool_calls";
  answer.usage = MockUsage{request.prompt_tokens, answer.words};
  if (request.cached_tokens) {
    answer.usage.cached_tokens = std::min(*request.cached_tokens, request.prompt_tokens);
  }
  return answer;
}

void AppendAnswerText(std::string& out, int64_t words) {
  char digits[24];
  for (int64_t k = 1; k <= words; ++k) {
    if (k > 1) out += ' ';
    out += 'w';
    out.append(digits, std::to_chars(digits, digits + sizeof(digits), k).ptr);
  }
}

void AppendToolArguments(std::string& out, int64_t words) {
  out += R"({"text":")";
  AppendAnswerText(out, words);
  out += R"("})";
}

void AppendResponseId(std::string& out, MockEndpoint endpoint, uint64_t seq) {
  std::string_view prefix = endpoint == MockEndpoint::kChat          ? "chatcmpl-mock"
                            : endpoint == MockEndpoint::kCompletions ? "cmpl-mock"
                            : endpoint == MockEndpoint::kEmbeddings  ? "embd-mock"
                                                                     : "resp_mock";
  fmt::format_to(std::back_inserter(out), "{}{}", prefix, seq);
}

void AppendToolCallId(std::string& out, uint64_t seq) {
  fmt::format_to(std::back_inserter(out), "call_mock{}", seq);
}

void AppendJsonString(std::string& out, std::string_view text) {
  out += '"';
  while (!text.empty()) {
    const char c = text.front();
    const size_t length = Utf8SequenceLength(text);
    if (length == 0) {
      out += "\\ufffd";  // as Python's errors="replace" decodes a stray byte
      text.remove_prefix(1);
      continue;
    }
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      fmt::format_to(std::back_inserter(out), "\\u{:04x}", static_cast<unsigned>(c));
    } else {
      out.append(text.data(), length);
    }
    text.remove_prefix(length);
  }
  out += '"';
}

bool AcceptsGzip(std::string_view accept_encoding) {
  const auto trim = [](std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
    return text;
  };
  const auto iequals = [](std::string_view a, std::string_view b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
      return std::tolower(static_cast<unsigned char>(x)) ==
             std::tolower(static_cast<unsigned char>(y));
    });
  };
  while (!accept_encoding.empty()) {
    const size_t comma = accept_encoding.find(',');
    std::string_view item = accept_encoding.substr(0, comma);
    accept_encoding.remove_prefix(comma == std::string_view::npos ? accept_encoding.size()
                                                                  : comma + 1);
    const size_t semicolon = item.find(';');
    if (!iequals(trim(item.substr(0, semicolon)), "gzip")) continue;
    if (semicolon == std::string_view::npos) return true;
    // RFC 9110: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ); only 0 refuses.
    std::string_view params = item.substr(semicolon + 1);
    bool refused = false;
    while (!params.empty()) {
      const size_t next = params.find(';');
      std::string_view param = trim(params.substr(0, next));
      params.remove_prefix(next == std::string_view::npos ? params.size() : next + 1);
      if (param.size() < 2 || std::tolower(static_cast<unsigned char>(param[0])) != 'q' ||
          trim(param.substr(1)).front() != '=') {
        continue;
      }
      std::string_view q = trim(trim(param.substr(1)).substr(1));
      refused = !q.empty() && q.find_first_not_of("0.") == std::string_view::npos;
    }
    if (!refused) return true;
  }
  return false;
}

MockRequestRecord MakeRequestRecord(std::string_view method, std::string_view target,
                                    const std::vector<MockHeader>& headers, std::string_view body,
                                    size_t body_limit) {
  MockRequestRecord record{std::string(method), std::string(target), {}, {}, false};
  // Quadratic in the header count, which the server's 64 KiB header limit bounds.
  for (const MockHeader& header : headers) {
    std::string name(header.name);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto same = std::find_if(record.headers.begin(), record.headers.end(),
                             [&](const auto& kept) { return kept.first == name; });
    if (same == record.headers.end()) {
      record.headers.emplace_back(std::move(name), std::string(header.value));
    } else {
      same->second += ", ";
      same->second += header.value;
    }
  }
  record.truncated = body.size() > body_limit;
  if (record.truncated) {
    size_t keep = body_limit;
    // Cut before a UTF-8 sequence that straddles the limit rather than through it.
    for (int back = 0; back < 3 && keep > 0; ++back) {
      if ((static_cast<unsigned char>(body[keep]) & 0xc0) != 0x80) break;
      --keep;
    }
    body = body.substr(0, keep);
  }
  record.body = std::string(body);
  return record;
}

void AppendRequestRecord(std::string& out, const MockRequestRecord& record) {
  out += R"({"method":)";
  AppendJsonString(out, record.method);
  out += R"(,"target":)";
  AppendJsonString(out, record.target);
  out += R"(,"headers":{)";
  for (size_t i = 0; i < record.headers.size(); ++i) {
    if (i > 0) out += ',';
    AppendJsonString(out, record.headers[i].first);
    out += ':';
    AppendJsonString(out, record.headers[i].second);
  }
  out += R"(},"body":)";
  AppendJsonString(out, record.body);
  if (record.truncated) out += R"(,"truncated":true)";
  out += '}';
}

void AppendUsage(std::string& out, const MockUsage& usage, MockUsageReport report) {
  auto it = std::back_inserter(out);
  const int64_t completion = usage.completion_tokens;
  switch (report) {
    case MockUsageReport::kNone:
      return;
    case MockUsageReport::kValid:
      fmt::format_to(it, R"("usage":{{"prompt_tokens":{},"completion_tokens":{},"total_tokens":{})",
                     usage.prompt_tokens, completion, usage.Total());
      break;
    case MockUsageReport::kNegative:
    case MockUsageReport::kHuge: {
      const int64_t prompt = report == MockUsageReport::kNegative ? -1'000'000 : 1'000'000'001;
      fmt::format_to(it, R"("usage":{{"prompt_tokens":{},"completion_tokens":{},"total_tokens":{})",
                     prompt, completion, prompt + completion);
      break;
    }
    case MockUsageReport::kFloat:
      fmt::format_to(it,
                     R"("usage":{{"prompt_tokens":{}.5,"completion_tokens":{},"total_tokens":{}.5)",
                     usage.prompt_tokens, completion, usage.Total());
      break;
    case MockUsageReport::kNoCompletion:
      fmt::format_to(it, R"("usage":{{"prompt_tokens":{},"total_tokens":{})", usage.prompt_tokens,
                     usage.Total());
      break;
  }
  if (usage.cached_tokens) {
    fmt::format_to(it, R"(,"prompt_tokens_details":{{"cached_tokens":{}}})", *usage.cached_tokens);
  }
  out += '}';
}

void AppendErrorBody(std::string& out, const MockError& error) {
  out += R"({"error":{"message":)";
  AppendJsonString(out, error.message);
  out += R"(,"type":)";
  AppendJsonString(out, error.type);
  out += R"(,"param":)";
  AppendNullableString(out, error.param);
  out += R"(,"code":)";
  AppendNullableString(out, error.code);
  out += "}}";
}

void AppendModelsBody(std::string& out, const std::vector<std::string>& models, int64_t created) {
  out += R"({"object":"list","data":[)";
  for (size_t i = 0; i < models.size(); ++i) {
    if (i > 0) out += ',';
    out += R"({"id":)";
    AppendJsonString(out, models[i]);
    fmt::format_to(std::back_inserter(out),
                   R"(,"object":"model","created":{},"owned_by":"mock-llm"}})", created);
  }
  out += "]}";
}

void AppendCompletionBody(std::string& out, MockEndpoint endpoint, const MockResponseMeta& meta,
                          const MockAnswer& answer, MockUsageReport report) {
  bool chat = endpoint == MockEndpoint::kChat;
  AppendPrefix(out, meta, chat ? "chat.completion" : "text_completion");
  if (chat && answer.tool_call) {
    out += R"("choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[)";
    fmt::format_to(std::back_inserter(out), R"({{"id":"{}","type":"function","function":{{"name":)",
                   meta.tool_call_id);
    AppendJsonString(out, meta.tool_name);
    out += R"(,"arguments":)";
    std::string arguments;
    AppendToolArguments(arguments, answer.words);
    AppendJsonString(out, arguments);
    out += R"(}}]},"logprobs":null,"finish_reason":")";
  } else {
    out += chat ? R"("choices":[{"index":0,"message":{"role":"assistant","content":")"
                : R"("choices":[{"index":0,"text":")";
    AppendAnswerText(out, answer.words);
    out +=
        chat ? R"("},"logprobs":null,"finish_reason":")" : R"(","logprobs":null,"finish_reason":")";
  }
  out += answer.finish_reason;
  out += R"("}])";
  if (report != MockUsageReport::kNone) {
    out += ',';
    AppendUsage(out, answer.usage, report);
  }
  out += '}';
}

void AppendEmbeddingsBody(std::string& out, const MockRequest& request, MockUsageReport report) {
  out += R"({"object":"list","data":[)";
  for (size_t i = 0; i < request.input_hashes.size(); ++i) {
    if (i > 0) out += ',';
    fmt::format_to(std::back_inserter(out), R"({{"object":"embedding","index":{},"embedding":)", i);
    std::array<float, kEmbeddingDims> vector;
    for (int d = 0; d < kEmbeddingDims; ++d) vector[d] = EmbeddingValue(request.input_hashes[i], d);
    if (request.base64) {
      // OpenAI's base64 form is the little-endian float32 array; x86-64 is little-endian.
      std::array<unsigned char, sizeof(vector)> bytes;
      std::memcpy(bytes.data(), vector.data(), sizeof(vector));
      out += '"';
      AppendBase64(out, bytes.data(), bytes.size());
      out += '"';
    } else {
      fmt::format_to(std::back_inserter(out), "[{}]", fmt::join(vector, ","));
    }
    out += '}';
  }
  out += R"(],"model":)";
  AppendJsonString(out, request.model);
  // Embeddings generate nothing: their usage has no completion_tokens, so kNoCompletion is the
  // valid one.
  if (report == MockUsageReport::kValid || report == MockUsageReport::kNoCompletion) {
    fmt::format_to(std::back_inserter(out), R"(,"usage":{{"prompt_tokens":{},"total_tokens":{}}})",
                   request.prompt_tokens, request.prompt_tokens);
  } else if (report != MockUsageReport::kNone) {
    out += ',';
    AppendUsage(out, MockUsage{request.prompt_tokens, 0}, report);
  }
  out += '}';
}

void AppendStreamToken(std::string& out, MockEndpoint endpoint, const MockResponseMeta& meta,
                       int64_t word, const MockChunkUsage& usage) {
  out += "data: ";
  AppendPrefix(out, meta, ChunkObject(endpoint));
  if (endpoint == MockEndpoint::kChat) {
    out += word == 1 ? R"("choices":[{"index":0,"delta":{"role":"assistant","content":")"
                     : R"("choices":[{"index":0,"delta":{"content":")";
  } else {
    out += R"("choices":[{"index":0,"text":")";
  }
  fmt::format_to(std::back_inserter(out), "{}w{}", word == 1 ? "" : " ", word);
  out += endpoint == MockEndpoint::kChat ? R"("},"logprobs":null,"finish_reason":null}])"
                                         : R"(","logprobs":null,"finish_reason":null}])";
  AppendChunkEnd(out, usage);
}

void AppendStreamToolCallHead(std::string& out, const MockResponseMeta& meta,
                              const MockChunkUsage& usage) {
  out += "data: ";
  AppendPrefix(out, meta, ChunkObject(MockEndpoint::kChat));
  out += R"("choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[)";
  fmt::format_to(std::back_inserter(out),
                 R"({{"index":0,"id":"{}","type":"function","function":{{"name":)",
                 meta.tool_call_id);
  AppendJsonString(out, meta.tool_name);
  out += R"(,"arguments":""}}]},"logprobs":null,"finish_reason":null}])";
  AppendChunkEnd(out, usage);
}

void AppendStreamToolCallToken(std::string& out, const MockResponseMeta& meta, int64_t word,
                               int64_t words, const MockChunkUsage& usage) {
  out += "data: ";
  AppendPrefix(out, meta, ChunkObject(MockEndpoint::kChat));
  out += R"("choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":")";
  // The fragment's JSON-escaped form, written directly: {\"text\":\"w1 ... wk\"}.
  if (word == 1) out += R"({\"text\":\")";
  fmt::format_to(std::back_inserter(out), "{}w{}", word == 1 ? "" : " ", word);
  if (word == words) out += R"(\"})";
  out += R"("}}]},"logprobs":null,"finish_reason":null}])";
  AppendChunkEnd(out, usage);
}

void AppendStreamFinish(std::string& out, MockEndpoint endpoint, const MockResponseMeta& meta,
                        std::string_view finish_reason, const MockChunkUsage& usage) {
  out += "data: ";
  AppendPrefix(out, meta, ChunkObject(endpoint));
  out += endpoint == MockEndpoint::kChat ? R"("choices":[{"index":0,"delta":{},)"
                                         : R"("choices":[{"index":0,"text":"",)";
  fmt::format_to(std::back_inserter(out), R"("logprobs":null,"finish_reason":"{}"}}])",
                 finish_reason);
  AppendChunkEnd(out, usage);
}

void AppendStreamUsage(std::string& out, MockEndpoint endpoint, const MockResponseMeta& meta,
                       const MockUsage& usage, MockUsageReport report) {
  out += "data: ";
  AppendPrefix(out, meta, ChunkObject(endpoint));
  out += R"("choices":[],)";
  AppendUsage(out, usage, report);
  out += "}\n\n";
}

}  // namespace trl
