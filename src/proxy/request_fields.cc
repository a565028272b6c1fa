#include "proxy/request_fields.h"

#include <simdjson.h>

#include "limits/token_counter.h"

namespace trl {
namespace {

namespace od = simdjson::ondemand;

// One field error, or nothing: lets the parsing functions below return early on the first
// problem without exceptions.
using Result = std::optional<FieldError>;

Result TypeError(std::string param, std::string_view expected) {
  return FieldError{param, "'" + param + "' must be " + std::string(expected) + "."};
}

Result Malformed() {
  return FieldError{"", "The request body is not valid JSON. Send a JSON object."};
}

Result ReadMaxTokens(od::value value, std::string_view name, std::optional<int64_t>& out) {
  if (value.is_null()) return std::nullopt;
  int64_t n;
  if (value.get_int64().get(n) != simdjson::SUCCESS) {
    return TypeError(std::string(name), "a non-negative integer");
  }
  if (n < 0 || n > kMaxTokensCeiling) {
    return FieldError{std::string(name), "'" + std::string(name) + "' must be between 0 and " +
                                             std::to_string(kMaxTokensCeiling) + ", got " +
                                             std::to_string(n) + "."};
  }
  out = n;
  return std::nullopt;
}

// A string, or an array of strings or token ids (completions' prompt, embeddings' input; an
// array of token-id arrays too).
Result ReadPromptLike(od::value value, const std::string& param, RequestFields& out) {
  od::json_type type;
  if (value.type().get(type)) return Malformed();
  if (type == od::json_type::string) {
    std::string_view s;
    if (value.get_string().get(s)) return Malformed();
    out.texts.push_back(s);
    return std::nullopt;
  }
  if (type != od::json_type::array) return TypeError(param, "a string or an array of strings");
  od::array array;
  if (value.get_array().get(array)) return Malformed();
  for (auto element : array) {
    od::value item;
    if (element.get(item)) return Malformed();
    od::json_type item_type;
    if (item.type().get(item_type)) return Malformed();
    if (item_type == od::json_type::string) {
      std::string_view s;
      if (item.get_string().get(s)) return Malformed();
      out.texts.push_back(s);
    } else if (item_type == od::json_type::number) {
      ++out.pretokenized;
    } else if (item_type == od::json_type::array) {
      od::array ids;
      if (item.get_array().get(ids)) return Malformed();
      for (auto id : ids) {
        int64_t ignored;
        if (id.get_int64().get(ignored)) return TypeError(param, "an array of token-id arrays");
        ++out.pretokenized;
      }
    } else {
      return TypeError(param, "a string or an array of strings");
    }
  }
  return std::nullopt;
}

// "messages[i]" and a suffix: built only for an error message.
std::string MessageParam(size_t index, std::string_view suffix = {}) {
  return "messages[" + std::to_string(index) + "]" + std::string(suffix);
}

// Chat message content (of message `index`): a string, or an array of parts whose "text" counts.
Result ReadContent(od::value value, size_t index, RequestFields& out) {
  od::json_type type;
  if (value.type().get(type)) return Malformed();
  if (type == od::json_type::null) return std::nullopt;
  if (type == od::json_type::string) {
    std::string_view s;
    if (value.get_string().get(s)) return Malformed();
    out.texts.push_back(s);
    return std::nullopt;
  }
  if (type != od::json_type::array) {
    return TypeError(MessageParam(index, ".content"), "a string or an array of parts");
  }
  od::array parts;
  if (value.get_array().get(parts)) return Malformed();
  for (auto part : parts) {
    od::object object;
    if (part.get_object().get(object)) {
      return TypeError(MessageParam(index, ".content"), "an array of content parts");
    }
    for (auto field : object) {
      std::string_view key;
      if (field.unescaped_key().get(key)) return Malformed();
      if (key == "text" || key == "refusal") {
        std::string_view s;
        if (field.value().get_string().get(s) == simdjson::SUCCESS) out.texts.push_back(s);
      }
    }
  }
  return std::nullopt;
}

// tool_calls: each function's name and arguments count.
Result ReadToolCalls(od::value value, RequestFields& out) {
  od::array calls;
  if (value.get_array().get(calls)) return std::nullopt;  // null or odd: nothing to count
  for (auto call : calls) {
    od::object object;
    if (call.get_object().get(object)) continue;
    for (auto field : object) {
      std::string_view key;
      if (field.unescaped_key().get(key)) return Malformed();
      if (key != "function") continue;
      od::object function;
      if (field.value().get_object().get(function)) continue;
      for (auto f : function) {
        std::string_view fkey, s;
        if (f.unescaped_key().get(fkey)) return Malformed();
        if ((fkey == "name" || fkey == "arguments") &&
            f.value().get_string().get(s) == simdjson::SUCCESS) {
          out.texts.push_back(s);
        }
      }
    }
  }
  return std::nullopt;
}

Result ReadMessages(od::value value, RequestFields& out) {
  od::array messages;
  if (value.get_array().get(messages)) return TypeError("messages", "an array of messages");
  size_t index = 0;
  for (auto element : messages) {
    const size_t at = index++;
    od::object message;
    if (element.get_object().get(message)) return TypeError(MessageParam(at), "an object");
    ++out.messages;
    for (auto field : message) {
      std::string_view key;
      if (field.unescaped_key().get(key)) return Malformed();
      od::value v;
      if (field.value().get(v)) return Malformed();
      if (key == "content") {
        if (auto e = ReadContent(v, at, out)) return e;
      } else if (key == "name") {
        std::string_view s;
        if (v.get_string().get(s) == simdjson::SUCCESS) out.texts.push_back(s);
      } else if (key == "tool_calls") {
        if (auto e = ReadToolCalls(v, out)) return e;
      } else if (key == "function_call") {
        od::object fc;
        if (v.get_object().get(fc) == simdjson::SUCCESS) {
          for (auto f : fc) {
            std::string_view s;
            if (f.value().get_string().get(s) == simdjson::SUCCESS) out.texts.push_back(s);
          }
        }
      }
    }
  }
  if (index == 0) return FieldError{"messages", "'messages' must contain at least one message."};
  return std::nullopt;
}

Result ReadStreamOptions(od::value value, RequestFields& out) {
  if (value.is_null()) return std::nullopt;
  od::object options;
  if (value.get_object().get(options)) return TypeError("stream_options", "an object");
  out.has_stream_options = true;
  for (auto field : options) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return Malformed();
    if (key == "include_usage") {
      bool b;
      if (field.value().get_bool().get(b)) {
        return TypeError("stream_options.include_usage", "a boolean");
      }
      out.include_usage = b;
    }
  }
  return std::nullopt;
}

}  // namespace

static_assert(kJsonBodyPadding >= simdjson::SIMDJSON_PADDING);

std::optional<FieldError> ExtractRequestFields(ApiEndpoint endpoint, std::string& body,
                                               RequestFields& out) {
  thread_local od::parser parser;
  out = RequestFields{};
  if (body.capacity() < body.size() + kJsonBodyPadding) body.reserve(body.size() + kJsonBodyPadding);
  od::document doc;
  if (parser.iterate(body.data(), body.size(), body.capacity()).get(doc)) return Malformed();
  od::object root;
  if (doc.get_object().get(root)) {
    return FieldError{"", "The request body must be a JSON object."};
  }
  bool have_model = false, have_messages = false, have_prompt = false;
  std::optional<int64_t> max_tokens, max_completion_tokens;
  for (auto field : root) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return Malformed();
    od::value value;
    if (field.value().get(value)) return Malformed();
    if (key == "model") {
      std::string_view model;
      std::string_view raw = value.raw_json_token();
      if (value.get_string().get(model)) return TypeError("model", "a string naming a model");
      out.model = std::string(model);
      while (!raw.empty() && raw.back() != '"') raw.remove_suffix(1);
      out.model_offset = static_cast<size_t>(raw.data() - body.data());
      out.model_length = raw.size();
      have_model = true;
    } else if (key == "stream") {
      if (value.is_null()) continue;
      if (value.get_bool().get(out.stream)) return TypeError("stream", "a boolean");
    } else if (key == "stream_options") {
      if (auto e = ReadStreamOptions(value, out)) return e;
    } else if (key == "max_tokens") {
      if (auto e = ReadMaxTokens(value, "max_tokens", max_tokens)) return e;
    } else if (key == "max_completion_tokens") {
      if (auto e = ReadMaxTokens(value, "max_completion_tokens", max_completion_tokens)) return e;
    } else if (key == "messages" && endpoint == ApiEndpoint::kChatCompletions) {
      if (auto e = ReadMessages(value, out)) return e;
      have_messages = true;
    } else if (key == "prompt" && endpoint == ApiEndpoint::kCompletions) {
      if (auto e = ReadPromptLike(value, "prompt", out)) return e;
      have_prompt = true;
    } else if (key == "input" && endpoint == ApiEndpoint::kEmbeddings) {
      if (auto e = ReadPromptLike(value, "input", out)) return e;
      have_prompt = true;
    }
  }
  if (!have_model) {
    return FieldError{"model", "'model' is required: name the model to use (GET /v1/models "
                               "lists them)."};
  }
  if (endpoint == ApiEndpoint::kChatCompletions && !have_messages) {
    return FieldError{"messages", "'messages' is required for chat completions."};
  }
  if (endpoint == ApiEndpoint::kCompletions && !have_prompt) {
    return FieldError{"prompt", "'prompt' is required for completions."};
  }
  if (endpoint == ApiEndpoint::kEmbeddings && !have_prompt) {
    return FieldError{"input", "'input' is required for embeddings."};
  }
  out.max_tokens = max_completion_tokens ? max_completion_tokens : max_tokens;
  return std::nullopt;
}

int64_t CountPromptTokens(const RequestFields& fields, const TokenCounter& counter) {
  int64_t total = counter.PerRequestOverhead() + fields.messages * counter.PerMessageOverhead() +
                  fields.pretokenized;
  for (std::string_view text : fields.texts) total += counter.CountText(text);
  return total;
}

}  // namespace trl
