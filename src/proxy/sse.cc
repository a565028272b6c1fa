#include "proxy/sse.h"

#include <simdjson.h>

namespace trl {
namespace {

namespace od = simdjson::ondemand;

std::optional<Usage> ReadUsage(od::value value) {
  if (value.is_null()) return std::nullopt;
  od::object object;
  if (value.get_object().get(object)) return std::nullopt;
  Usage usage;
  bool any = false;
  for (auto field : object) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return std::nullopt;
    int64_t n;
    if (key == "prompt_tokens" && field.value().get_int64().get(n) == simdjson::SUCCESS) {
      usage.prompt_tokens = n;
      any = true;
    } else if (key == "completion_tokens" &&
               field.value().get_int64().get(n) == simdjson::SUCCESS) {
      usage.completion_tokens = n;
      any = true;
    }
  }
  if (!any) return std::nullopt;
  return usage;
}

// choices[].delta.content, choices[].message.content, choices[].text
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
        od::object inner;
        if (field.value().get_object().get(inner)) continue;
        for (auto f : inner) {
          std::string_view ikey;
          if (f.unescaped_key().get(ikey)) return;
          if ((ikey == "content" || ikey == "reasoning_content") &&
              f.value().get_string().get(s) == simdjson::SUCCESS) {
            texts.push_back(s);
          }
        }
      }
    }
  }
}

// Reads usage and texts from a JSON object; `padded` must have SIMDJSON_PADDING spare capacity.
template <typename Out>
void ReadObject(od::parser& parser, const char* data, size_t size, size_t capacity, Out& out,
                bool& choices_empty) {
  od::document doc;
  choices_empty = true;
  if (parser.iterate(data, size, capacity).get(doc)) return;
  od::object root;
  if (doc.get_object().get(root)) return;
  for (auto field : root) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return;
    od::value v;
    if (field.value().get(v)) return;
    if (key == "usage") {
      out.usage = ReadUsage(v);
    } else if (key == "choices") {
      ReadChoices(v, out.texts, choices_empty);
    }
  }
}

}  // namespace

std::string SseSplitter::TakeRest() {
  std::string rest;
  rest.swap(pending_);
  return rest;
}

StreamEvent ParseStreamEvent(std::string_view event) {
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
  bool choices_empty = true;
  ReadObject(parser, buffer.data(), size, buffer.capacity(), out, choices_empty);
  out.usage_only = out.usage.has_value() && choices_empty;
  return out;
}

ResponseSummary ParseResponseBody(std::string& body) {
  thread_local od::parser parser;
  ResponseSummary out;
  size_t size = body.size();
  body.reserve(size + simdjson::SIMDJSON_PADDING);  // a no-op when read with kJsonBodyPadding
  bool choices_empty = true;
  ReadObject(parser, body.data(), size, body.capacity(), out, choices_empty);
  return out;
}

}  // namespace trl
