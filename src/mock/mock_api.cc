#include "mock/mock_api.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <iterator>

namespace trl {
namespace {

namespace od = simdjson::ondemand;
using od::json_type;

constexpr int kEmbeddingDims = 8;

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

uint64_t Fnv1a(std::string_view text) {
  uint64_t hash = 14695981039346656037ull;
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

void AppendJsonString(std::string& out, std::string_view text) {
  out += '"';
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
    } else {
      out += c;
    }
  }
  out += '"';
}

void AppendNullableString(std::string& out, std::string_view text) {
  if (text.empty()) {
    out += "null";
  } else {
    AppendJsonString(out, text);
  }
}

void AppendUsage(std::string& out, const MockUsage& usage) {
  fmt::format_to(std::back_inserter(out),
                 R"("usage":{{"prompt_tokens":{},"completion_tokens":{},"total_tokens":{}}})",
                 usage.prompt_tokens, usage.completion_tokens, usage.Total());
}

// {"id":..,"object":..,"created":..,"model":..,
void AppendPrefix(std::string& out, const MockResponseMeta& meta, std::string_view object) {
  fmt::format_to(std::back_inserter(out), R"({{"id":"{}","object":"{}","created":{},"model":)",
                 meta.id, object, meta.created);
  AppendJsonString(out, meta.model);
  out += ',';
}

std::string_view ChunkObject(MockEndpoint endpoint) {
  return endpoint == MockEndpoint::kChat ? "chat.completion.chunk" : "text_completion";
}

MockError BadRequest(std::string message, std::string_view param = {}) {
  return MockError{400, std::move(message), "invalid_request_error", param, {}};
}

// A string, or a non-empty array of strings: the shape of `prompt` and `input`.
bool CountTextInputs(od::value value, int64_t& words, std::vector<uint64_t>* hashes) {
  json_type type;
  if (value.type().get(type)) return false;
  std::string_view text;
  if (type == json_type::string) {
    if (value.get_string().get(text)) return false;
    words += CountWords(text);
    if (hashes) hashes->push_back(Fnv1a(text));
    return true;
  }
  od::array array;
  if (type != json_type::array || value.get_array().get(array)) return false;
  size_t count = 0;
  for (auto element : array) {
    if (element.get_string().get(text)) return false;
    words += CountWords(text);
    if (hashes) hashes->push_back(Fnv1a(text));
    ++count;
  }
  return count > 0;
}

// `content` is a string, null, or an array of parts whose `text` members are counted.
bool CountContent(od::value content, int64_t& words) {
  json_type type;
  if (content.type().get(type)) return false;
  std::string_view text;
  if (type == json_type::null) return true;
  if (type == json_type::string) {
    if (content.get_string().get(text)) return false;
    words += CountWords(text);
    return true;
  }
  od::array parts;
  if (type != json_type::array || content.get_array().get(parts)) return false;
  for (auto part_result : parts) {
    od::object part;
    if (part_result.get_object().get(part)) return false;
    for (auto field_result : part) {
      od::field field;
      std::string_view key;
      if (std::move(field_result).get(field) || field.unescaped_key().get(key)) return false;
      if (key != "text") continue;
      if (field.value().get_string().get(text)) return false;
      words += CountWords(text);
    }
  }
  return true;
}

bool CountMessages(od::value value, int64_t& tokens) {
  od::array messages;
  if (value.get_array().get(messages)) return false;
  size_t count = 0;
  for (auto message_result : messages) {
    od::object message;
    if (message_result.get_object().get(message)) return false;
    ++count;
    tokens += kTokensPerMessage;
    for (auto field_result : message) {
      od::field field;
      std::string_view key;
      if (std::move(field_result).get(field) || field.unescaped_key().get(key)) return false;
      if (key == "content" && !CountContent(field.value(), tokens)) return false;
    }
  }
  return count > 0;
}

}  // namespace

MockFault ParseMockFault(std::string_view header_value) {
  if (header_value == "http500") return MockFault::kHttp500;
  if (header_value == "reset") return MockFault::kReset;
  if (header_value == "hang") return MockFault::kHang;
  if (header_value == "truncate-stream") return MockFault::kTruncateStream;
  if (header_value == "no-usage") return MockFault::kNoUsage;
  return MockFault::kNone;
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
  body.reserve(body.size() + simdjson::SIMDJSON_PADDING);
  thread_local od::parser parser;
  od::document doc;
  od::object root;
  const MockError bad_json = BadRequest("request body is not a valid JSON object");
  if (parser.iterate(simdjson::padded_string_view(body.data(), body.size(), body.capacity()))
          .get(doc) ||
      doc.get_object().get(root)) {
    return bad_json;
  }

  MockRequest request;
  request.endpoint = endpoint;
  std::string_view model;
  int64_t max_tokens = -1;
  int64_t max_completion_tokens = -1;
  bool has_input = false;
  for (auto field_result : root) {
    od::field field;
    std::string_view key;
    if (std::move(field_result).get(field) || field.unescaped_key().get(key)) return bad_json;
    od::value value = field.value();
    json_type type;
    if (value.type().get(type)) return bad_json;
    bool is_null = type == json_type::null;
    if (key == "model") {
      if (value.get_string().get(model)) return BadRequest("model must be a string", "model");
    } else if ((key == "max_tokens" || key == "max_completion_tokens") && !is_null) {
      int64_t& target = key == "max_tokens" ? max_tokens : max_completion_tokens;
      if (value.get_int64().get(target) || target < 1) {
        return BadRequest(std::string(key) + " must be an integer >= 1",
                          key == "max_tokens" ? "max_tokens" : "max_completion_tokens");
      }
    } else if (key == "stream" && !is_null) {
      if (value.get_bool().get(request.stream))
        return BadRequest("stream must be a boolean", "stream");
    } else if (key == "stream_options" && !is_null) {
      od::object stream_options;
      if (value.get_object().get(stream_options))
        return BadRequest("bad stream_options", "stream_options");
      for (auto option_result : stream_options) {
        od::field option;
        std::string_view option_key;
        if (std::move(option_result).get(option) || option.unescaped_key().get(option_key))
          return bad_json;
        if (option_key == "include_usage" && option.value().get_bool().get(request.include_usage)) {
          return BadRequest("include_usage must be a boolean", "stream_options");
        }
      }
    } else if (key == "encoding_format" && endpoint == MockEndpoint::kEmbeddings && !is_null) {
      std::string_view format;
      if (value.get_string().get(format) || (format != "float" && format != "base64")) {
        return BadRequest("encoding_format must be \"float\" or \"base64\"", "encoding_format");
      }
      request.base64 = format == "base64";
    } else if (key == "messages" && endpoint == MockEndpoint::kChat) {
      if (!CountMessages(value, request.prompt_tokens)) {
        return BadRequest("messages must be a non-empty array of message objects", "messages");
      }
      has_input = true;
    } else if (key == "prompt" && endpoint == MockEndpoint::kCompletions) {
      if (!CountTextInputs(value, request.prompt_tokens, nullptr)) {
        return BadRequest("prompt must be a string or a non-empty array of strings", "prompt");
      }
      has_input = true;
    } else if (key == "input" && endpoint == MockEndpoint::kEmbeddings) {
      if (!CountTextInputs(value, request.prompt_tokens, &request.input_hashes)) {
        return BadRequest("input must be a string or a non-empty array of strings", "input");
      }
      has_input = true;
    }
  }
  // Anything but the end of input after the root object is trailing garbage.
  if (doc.current_location().error() != simdjson::OUT_OF_BOUNDS) return bad_json;

  if (model.empty()) return BadRequest("you must provide a model parameter", "model");
  auto known = std::find(options.models.begin(), options.models.end(), model);
  if (known == options.models.end()) {
    return MockError{404, "The model `" + std::string(model) + "` does not exist.",
                     "invalid_request_error", "model", "model_not_found"};
  }
  request.model = *known;
  if (!has_input) {
    switch (endpoint) {
      case MockEndpoint::kChat:
        return BadRequest("messages is required", "messages");
      case MockEndpoint::kCompletions:
        return BadRequest("prompt is required", "prompt");
      case MockEndpoint::kEmbeddings:
        return BadRequest("input is required", "input");
    }
  }
  // vLLM reads max_completion_tokens first; max_tokens is its deprecated alias.
  request.max_tokens = max_completion_tokens > 0 ? max_completion_tokens : max_tokens;
  if (endpoint == MockEndpoint::kEmbeddings) request.stream = false;
  return request;
}

MockAnswer PlanMockAnswer(const MockRequest& request, const MockOptions& options) {
  MockAnswer answer;
  if (request.endpoint == MockEndpoint::kEmbeddings) {
    answer.finish_reason = "stop";
    answer.usage.prompt_tokens = request.prompt_tokens;
    return answer;
  }
  bool capped = request.max_tokens > 0 && request.max_tokens <= options.max_output;
  answer.words = capped ? request.max_tokens : options.max_output;
  answer.finish_reason = capped ? "length" : "stop";
  answer.usage = MockUsage{request.prompt_tokens, answer.words};
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

void AppendResponseId(std::string& out, MockEndpoint endpoint, uint64_t seq) {
  std::string_view prefix = endpoint == MockEndpoint::kChat          ? "chatcmpl-mock"
                            : endpoint == MockEndpoint::kCompletions ? "cmpl-mock"
                                                                     : "embd-mock";
  fmt::format_to(std::back_inserter(out), "{}{}", prefix, seq);
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
                          const MockAnswer& answer, bool with_usage) {
  bool chat = endpoint == MockEndpoint::kChat;
  AppendPrefix(out, meta, chat ? "chat.completion" : "text_completion");
  out += chat ? R"("choices":[{"index":0,"message":{"role":"assistant","content":")"
              : R"("choices":[{"index":0,"text":")";
  AppendAnswerText(out, answer.words);
  out +=
      chat ? R"("},"logprobs":null,"finish_reason":")" : R"(","logprobs":null,"finish_reason":")";
  out += answer.finish_reason;
  out += R"("}])";
  if (with_usage) {
    out += ',';
    AppendUsage(out, answer.usage);
  }
  out += '}';
}

void AppendEmbeddingsBody(std::string& out, const MockRequest& request, bool with_usage) {
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
  if (with_usage) {
    fmt::format_to(std::back_inserter(out), R"(,"usage":{{"prompt_tokens":{},"total_tokens":{}}})",
                   request.prompt_tokens, request.prompt_tokens);
  }
  out += '}';
}

void AppendStreamToken(std::string& out, MockEndpoint endpoint, const MockResponseMeta& meta,
                       int64_t word) {
  out += "data: ";
  AppendPrefix(out, meta, ChunkObject(endpoint));
  if (endpoint == MockEndpoint::kChat) {
    out += word == 1 ? R"("choices":[{"index":0,"delta":{"role":"assistant","content":")"
                     : R"("choices":[{"index":0,"delta":{"content":")";
  } else {
    out += R"("choices":[{"index":0,"text":")";
  }
  fmt::format_to(std::back_inserter(out), "{}w{}", word == 1 ? "" : " ", word);
  out += endpoint == MockEndpoint::kChat ? R"("},"logprobs":null,"finish_reason":null}]})"
                                         : R"(","logprobs":null,"finish_reason":null}]})";
  out += "\n\n";
}

void AppendStreamFinish(std::string& out, MockEndpoint endpoint, const MockResponseMeta& meta,
                        std::string_view finish_reason) {
  out += "data: ";
  AppendPrefix(out, meta, ChunkObject(endpoint));
  out += endpoint == MockEndpoint::kChat ? R"("choices":[{"index":0,"delta":{},)"
                                         : R"("choices":[{"index":0,"text":"",)";
  fmt::format_to(std::back_inserter(out), R"("logprobs":null,"finish_reason":"{}"}}]}})",
                 finish_reason);
  out += "\n\n";
}

void AppendStreamUsage(std::string& out, MockEndpoint endpoint, const MockResponseMeta& meta,
                       const MockUsage& usage) {
  out += "data: ";
  AppendPrefix(out, meta, ChunkObject(endpoint));
  out += R"("choices":[],)";
  AppendUsage(out, usage);
  out += "}\n\n";
}

}  // namespace trl
