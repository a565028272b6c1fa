#include "proxy/sse.h"

#include <simdjson.h>

#include <algorithm>
#include <cmath>

#include "proxy/json_null.h"

namespace trl {
namespace {

namespace od = simdjson::ondemand;

// simdjson 3.0.1's is_null() is a result that throws when taken as a bool after an error (a
// misspelt atom such as `nul3`): read it as a value, an error being "not null".
// A count in a usage object: an integer in [0, kMaxUsageTokens] (get_int64 refuses fractions,
// strings and anything above 2^63).
bool ReadCount(od::value value, int64_t& out) {
  return value.get_int64().get(out) == simdjson::SUCCESS && out >= 0 && out <= kMaxUsageTokens;
}

// {"cached_tokens": N, ...}: N, or 0 when it is no count.
int64_t ReadCachedTokens(od::value details) {
  od::object object;
  if (details.get_object().get(object)) return 0;
  int64_t cached = 0;
  for (auto field : object) {
    std::string_view key;
    od::value v;
    if (field.unescaped_key().get(key) || field.value().get(v)) return 0;
    if (key == "cached_tokens" && !ReadCount(v, cached)) return 0;
  }
  return cached;
}

// The usage object's counts; false when one is invalid or one that `fields` requires is missing.
bool ReadUsageCounts(od::object object, UsageFields fields, Usage& usage) {
  const bool responses = fields == UsageFields::kResponses;
  const std::string_view details_key = responses ? "input_tokens_details" : "prompt_tokens_details";
  const std::string_view prompt_key = responses ? "input_tokens" : "prompt_tokens";
  const std::string_view completion_key = responses ? "output_tokens" : "completion_tokens";
  const bool prompt_only = fields == UsageFields::kPromptOnly;
  bool prompt = false, completion = false, total = false;
  int64_t total_tokens = 0;
  for (auto field : object) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return false;
    od::value v;
    if (field.value().get(v)) return false;
    if (key == prompt_key) {
      if (!ReadCount(v, usage.prompt_tokens)) return false;
      prompt = true;
    } else if (key == completion_key) {
      if (!ReadCount(v, usage.completion_tokens)) return false;
      completion = true;
    } else if (key == "total_tokens" && prompt_only) {
      if (!ReadCount(v, total_tokens)) return false;
      total = true;
    } else if (key == details_key) {
      usage.cached_tokens = ReadCachedTokens(v);
    }
  }
  if (prompt_only && !prompt && total) {
    usage.prompt_tokens = total_tokens;
    prompt = true;
  }
  usage.cached_tokens = std::min(usage.cached_tokens, usage.prompt_tokens);
  return prompt && (completion || prompt_only);
}

// Where the usage value sits, and what it holds.
struct UsageMember {
  std::string_view raw;  // the value's JSON text; empty when null
  std::optional<Usage> usage;
  bool invalid = false;
};

UsageMember ReadUsage(od::value value, UsageFields fields) {
  UsageMember out;
  std::string_view token = TrimTrailingJsonSpace(value.raw_json_token());
  if (IsNull(value)) return out;
  out.raw = token;
  out.invalid = true;
  od::object object;
  if (value.get_object().get(object)) return out;
  // The object's whole text first (to relay the event without it), then its counts.
  if (object.raw_json().get(out.raw) || object.reset().error()) return out;
  out.raw = TrimTrailingJsonSpace(out.raw);
  Usage usage;
  if (!ReadUsageCounts(object, fields, usage)) return out;
  out.usage = usage;
  out.invalid = false;
  return out;
}

// A tool call's (or a legacy function_call's) function: its name and arguments. The helpers below
// take a field's value as a result: an error in it is nothing to count, never an exception.
void ReadFunction(simdjson::simdjson_result<od::value> value, TextViews& texts) {
  od::object function;
  if (value.get_object().get(function)) return;
  for (auto f : function) {
    std::string_view key, s;
    if (f.unescaped_key().get(key)) return;
    if (key != "name" && key != "arguments") continue;
    if (f.value().get_string().get(s) == simdjson::SUCCESS) texts.push_back(s);
  }
}

// Calls on_field(key, value) for each member of each object in the array `value` (an od::value
// or a result of one); stops at a malformed key.
template <typename Value, typename F>
void ForEachObjectField(Value value, F&& on_field) {
  od::array array;
  if (value.get_array().get(array)) return;
  for (auto element : array) {
    od::object object;
    if (element.get_object().get(object)) continue;
    for (auto field : object) {
      std::string_view key;
      if (field.unescaped_key().get(key)) return;
      on_field(key, field.value());
    }
  }
}

void ReadToolCalls(simdjson::simdjson_result<od::value> value, TextViews& texts) {
  ForEachObjectField(value, [&](std::string_view key, auto field) {
    if (key == "function") ReadFunction(field, texts);
  });
}

// A delta or a message: every string the model wrote (sse.h).
void ReadGenerated(simdjson::simdjson_result<od::value> value, TextViews& texts) {
  od::object inner;
  if (value.get_object().get(inner)) return;
  for (auto f : inner) {
    std::string_view key, s;
    if (f.unescaped_key().get(key)) return;
    if (key == "content" || key == "reasoning_content" || key == "reasoning" || key == "refusal") {
      if (f.value().get_string().get(s) == simdjson::SUCCESS) texts.push_back(s);
    } else if (key == "tool_calls") {
      ReadToolCalls(f.value(), texts);
    } else if (key == "function_call") {
      ReadFunction(f.value(), texts);
    }
  }
}

// choices[].text, choices[].delta, choices[].message
void ReadChoices(od::value value, TextViews& texts, bool& empty) {
  od::array choices;
  empty = true;
  if (value.get_array().get(choices)) return;
  for (auto choice : choices) {
    empty = false;
    od::object object;
    if (choice.get_object().get(object)) continue;
    for (auto field : object) {
      std::string_view key, s;
      if (field.unescaped_key().get(key)) return;
      if (key == "text") {
        if (field.value().get_string().get(s) == simdjson::SUCCESS) texts.push_back(s);
      } else if (key == "delta" || key == "message") {
        ReadGenerated(field.value(), texts);
      }
    }
  }
}

// What ReadObject found beyond usage and texts.
struct ObjectShape {
  bool choices_empty = true;
  size_t usage_offset = 0;  // of the usage value in the JSON; length 0: none or null
  size_t usage_length = 0;
};

// The usage member `value` into `out` and `shape`; `data` is the JSON it is in.
template <typename Out>
void TakeUsageMember(od::value value, const char* data, UsageFields fields, Out& out,
                     ObjectShape& shape) {
  UsageMember usage = ReadUsage(value, fields);
  out.usage = usage.usage;
  out.usage_invalid = usage.invalid;
  shape.usage_offset = usage.raw.empty() ? 0 : static_cast<size_t>(usage.raw.data() - data);
  shape.usage_length = usage.raw.size();
}

// The string `value` (an od::value or a result of one) into `texts`; nothing if not a string.
template <typename Value>
void PushString(Value value, TextViews& texts) {
  std::string_view s;
  if (value.get_string().get(s) == simdjson::SUCCESS) texts.push_back(s);
}

// A whole response's `output` items: the text and refusal of their content and summary parts, a
// function call's name and arguments.
void ReadOutputItems(od::value value, TextViews& texts) {
  ForEachObjectField(value, [&](std::string_view key, auto field) {
    if (key == "content" || key == "summary") {
      ForEachObjectField(field, [&](std::string_view part_key, auto part_field) {
        if (part_key == "text" || part_key == "refusal") PushString(part_field, texts);
      });
    } else if (key == "name" || key == "arguments") {
      PushString(field, texts);
    }
  });
}

// The streamed events whose `delta` is text the model generated.
bool GeneratedDelta(std::string_view type) {
  return type == "response.output_text.delta" || type == "response.refusal.delta" ||
         type == "response.reasoning_text.delta" ||
         type == "response.reasoning_summary_text.delta" ||
         type == "response.function_call_arguments.delta";
}

// A transcription's usage: {"type": "tokens", input_tokens, output_tokens} into out.usage, or
// {"type": "duration", seconds} into out.audio_seconds (a number of seconds, rounded up);
// anything else (but null) is an invalid usage.
template <typename Out>
void ReadTranscriptionUsage(od::value value, Out& out) {
  od::json_type json_type;
  if (value.type().get(json_type) || json_type == od::json_type::null) return;
  out.usage_invalid = true;
  od::object object;
  if (value.get_object().get(object)) return;
  std::string_view type;
  Usage usage;
  double seconds = -1;
  int found = 0;  // input_tokens and output_tokens read
  for (auto field : object) {
    std::string_view key;
    od::value v;
    if (field.unescaped_key().get(key) || field.value().get(v)) return;
    if (key == "type") {
      if (v.get_string().get(type)) return;
    } else if (key == "input_tokens" || key == "output_tokens") {
      if (!ReadCount(v, key == "input_tokens" ? usage.prompt_tokens : usage.completion_tokens)) {
        return;
      }
      ++found;
    } else if (key == "seconds") {
      if (v.get_double().get(seconds) || !(seconds >= 0 && seconds <= kMaxUsageTokens)) return;
    }
  }
  if (type == "tokens" && found == 2) {
    out.usage = usage;
  } else if (type == "duration" && seconds >= 0) {
    out.audio_seconds = static_cast<int64_t>(std::ceil(seconds));
  } else {
    return;
  }
  out.usage_invalid = false;
}

// What a Responses API event's members say about its delta.
struct ResponsesDelta {
  std::string_view type, delta;
  bool has_delta = false;
};

// One member of a Responses API object other than usage: a whole response's output, a streamed
// event's type and delta, and the usage inside its `response` (never that response's output,
// which the deltas already carried).
template <typename Out>
void ReadResponsesMember(std::string_view key, od::value value, const char* data, Out& out,
                         ObjectShape& shape, ResponsesDelta& event) {
  if (key == "output") {
    ReadOutputItems(value, out.texts);
  } else if (key == "type") {
    if (value.get_string().get(event.type)) event.type = {};
  } else if (key == "delta") {
    event.has_delta = value.get_string().get(event.delta) == simdjson::SUCCESS;
  } else if (key == "response") {
    od::object response;
    if (value.get_object().get(response)) return;
    for (auto inner : response) {
      std::string_view inner_key;
      od::value usage;
      if (inner.unescaped_key().get(inner_key) || inner.value().get(usage)) return;
      if (inner_key == "usage") TakeUsageMember(usage, data, UsageFields::kResponses, out, shape);
    }
  }
}

// Reads usage and texts from a JSON object; `data` must have SIMDJSON_PADDING spare capacity.
template <typename Out>
ObjectShape ReadObject(od::parser& parser, const char* data, size_t size, size_t capacity,
                       UsageFields fields, Out& out) {
  ObjectShape shape;
  od::document doc;
  if (parser.iterate(data, size, capacity).get(doc)) return shape;
  od::object root;
  if (doc.get_object().get(root)) return shape;
  ResponsesDelta event;
  for (auto field : root) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return shape;
    od::value v;
    if (field.value().get(v)) return shape;
    if (key == "usage" && fields == UsageFields::kTranscription) {
      ReadTranscriptionUsage(v, out);
    } else if (key == "usage") {
      TakeUsageMember(v, data, fields, out, shape);
    } else if (fields == UsageFields::kTranscription) {
      if (key == "text") PushString(v, out.texts);
    } else if (fields == UsageFields::kResponses) {
      ReadResponsesMember(key, v, data, out, shape, event);
    } else if (key == "choices") {
      ReadChoices(v, out.texts, shape.choices_empty);
    }
  }
  if (event.has_delta && GeneratedDelta(event.type)) out.texts.push_back(event.delta);
  return shape;
}

}  // namespace

std::string SseSplitter::TakeRest() {
  std::string rest;
  rest.swap(pending_);
  return rest;
}

StreamEvent ParseStreamEvent(std::string_view event, UsageFields usage_fields) {
  thread_local od::parser parser;
  thread_local std::string buffer;
  StreamEvent out;
  // Concatenate the event's data lines (normally exactly one).
  buffer.clear();
  size_t pos = 0;
  while (pos < event.size()) {
    size_t end = event.find('\n', pos);
    if (end == std::string_view::npos) end = event.size();
    std::string_view line = event.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.substr(0, 5) == "data:") {
      line.remove_prefix(5);
      if (!line.empty() && line.front() == ' ') line.remove_prefix(1);
      if (!buffer.empty()) buffer.push_back('\n');
      buffer.append(line);
    }
    pos = end + 1;
  }
  if (buffer == "[DONE]") {
    out.done = true;
    return out;
  }
  if (buffer.empty() || buffer.front() != '{') return out;
  size_t size = buffer.size();
  buffer.reserve(size + simdjson::SIMDJSON_PADDING);
  const ObjectShape shape =
      ReadObject(parser, buffer.data(), size, buffer.capacity(), usage_fields, out);
  out.json = std::string_view(buffer.data(), size);
  out.usage_offset = shape.usage_offset;
  out.usage_length = shape.usage_length;
  out.usage_only = shape.usage_length != 0 && shape.choices_empty;
  return out;
}

void AppendWithoutUsage(const StreamEvent& event, std::string& out) {
  // One data line: the data lines joined by ParseStreamEvent are JSON whitespace apart, and a
  // CR or LF inside the line would end it for the client.
  const size_t start = out.size();
  out.append("data: ");
  out.append(event.json.substr(0, event.usage_offset));
  out.append("null");
  out.append(event.json.substr(event.usage_offset + event.usage_length));
  std::replace_if(
      out.begin() + static_cast<std::ptrdiff_t>(start), out.end(),
      [](char c) { return c == '\n' || c == '\r'; }, ' ');
  out.append("\n\n");
}

ResponseSummary ParseResponseBody(std::string& body, UsageFields usage_fields) {
  thread_local od::parser parser;
  ResponseSummary out;
  size_t size = body.size();
  // A transcription answered as text, srt or vtt: all of it is what the model wrote.
  const size_t first = body.find_first_not_of(" \t\r\n");
  if (usage_fields == UsageFields::kTranscription && first != std::string::npos &&
      body[first] != '{') {
    out.texts.push_back(body);
    return out;
  }
  body.reserve(size + simdjson::SIMDJSON_PADDING);  // a no-op when read with kJsonBodyPadding
  ReadObject(parser, body.data(), size, body.capacity(), usage_fields, out);
  return out;
}

}  // namespace trl
