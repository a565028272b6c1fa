#include "mock/mock_json.h"

#include <algorithm>
#include <utility>

namespace trl {

namespace dom = simdjson::dom;
using dom::element_type;

namespace {

// `content` is null, a string, or an array of part objects; a part's `type` names its kind
// (chat-template markup, not text the model reads), every other string in it counts.
bool CountContent(dom::element content, int64_t& tokens) {
  switch (content.type()) {
    case element_type::NULL_VALUE:
      return true;
    case element_type::STRING:
      tokens += CountWords(std::string_view(content));
      return true;
    case element_type::ARRAY:
      for (dom::element part : dom::array(content)) {
        if (!part.is_object()) return false;
        ForEachLastField(dom::object(part), [&](std::string_view key, dom::element value) {
          if (key != "type") tokens += CountStringWords(value);
          return true;
        });
      }
      return true;
    default:
      return false;
  }
}

}  // namespace

std::optional<dom::object> ParseJsonObject(std::string& body) {
  body.reserve(body.size() + simdjson::SIMDJSON_PADDING);
  // The DOM rather than On-Demand: Python's last-wins needs a key's last value before acting on
  // it, and On-Demand cannot go back. The DOM also rejects trailing garbage after the object.
  thread_local dom::parser parser;
  dom::element doc;
  if (parser.parse(body.data(), body.size(), false).get(doc) || !doc.is_object()) {
    return std::nullopt;
  }
  return dom::object(doc);
}

std::optional<dom::element> LastValue(dom::object object, std::string_view key) {
  std::optional<dom::element> found;
  for (auto field : object) {
    if (field.key == key) found = field.value;
  }
  if (found && found->is_null()) found.reset();
  return found;
}

int64_t CountStringWords(dom::element value) {
  switch (value.type()) {
    case element_type::STRING:
      return CountWords(std::string_view(value));
    case element_type::ARRAY: {
      int64_t words = 0;
      for (dom::element item : dom::array(value)) words += CountStringWords(item);
      return words;
    }
    case element_type::OBJECT: {
      int64_t words = 0;
      ForEachLastField(dom::object(value), [&](std::string_view, dom::element field) {
        words += CountStringWords(field);
        return true;
      });
      return words;
    }
    default:
      return 0;
  }
}

bool CountMessages(dom::element value, int64_t& tokens, bool item_type_is_markup) {
  if (!value.is_array() || dom::array(value).size() == 0) return false;
  for (dom::element message : dom::array(value)) {
    if (!message.is_object()) return false;
    tokens += kTokensPerMessage;
    bool ok = ForEachLastField(dom::object(message), [&](std::string_view key, dom::element field) {
      if (key == "content") return CountContent(field, tokens);
      const bool markup = key == "role" || (item_type_is_markup && key == "type");
      if (!markup) tokens += CountStringWords(field);
      return true;
    });
    if (!ok) return false;
  }
  return true;
}

MockError BadRequest(std::string message, std::string_view param) {
  return MockError{400, std::move(message), "invalid_request_error", param, {}};
}

std::optional<MockError> FindModel(std::string_view model, const MockOptions& options,
                                   std::string_view& known) {
  if (model.empty()) return BadRequest("you must provide a model parameter", "model");
  auto found = std::find(options.models.begin(), options.models.end(), model);
  if (found == options.models.end()) {
    return MockError{404, "The model `" + std::string(model) + "` does not exist.",
                     "invalid_request_error", "model", "model_not_found"};
  }
  known = *found;
  return std::nullopt;
}

std::optional<MockError> ReadModel(dom::object root, const MockOptions& options,
                                   std::string_view& known) {
  std::string_view model;
  auto value = LastValue(root, "model");
  if (value && value->get_string().get(model)) return BadRequest("model must be a string", "model");
  return FindModel(model, options, known);
}

}  // namespace trl
