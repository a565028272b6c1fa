// Reading request JSON the way vLLM reads it (mock_api.h: the last of repeated keys wins, null
// means absent), shared by mock-llm's endpoint files. Internal to trl_mock: only its .cc files
// include it. Every function is thread-safe.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "mock/mock_api.h"
#include "mock/mock_options.h"

namespace trl {

// Parses `body` as one JSON object with a thread-local parser, padding `body` in place (it may
// reallocate; its bytes do not change). The object lives until this thread's next call.
std::optional<simdjson::dom::object> ParseJsonObject(std::string& body);

// Calls visit(key, value) once per distinct key of `object`, with the key's last value, as a
// Python dict built by json.loads holds it. Stops and returns false as soon as `visit` does.
template <typename Visit>
bool ForEachLastField(simdjson::dom::object object, Visit&& visit) {
  // Request objects have a handful of keys, where a quadratic scan is cheaper than a hash set;
  // the set keeps a hostile object of a million keys linear.
  constexpr size_t kLinearScanLimit = 32;
  if (object.size() <= kLinearScanLimit) {
    for (auto it = object.begin(); it != object.end(); ++it) {
      bool repeated = false;
      for (auto later = std::next(it); later != object.end() && !repeated; ++later) {
        repeated = later.key() == it.key();
      }
      if (!repeated && !visit(it.key(), it.value())) return false;
    }
    return true;
  }
  std::unordered_map<std::string_view, size_t> last;
  size_t index = 0;
  for (auto field : object) last[field.key] = index++;
  index = 0;
  for (auto field : object) {
    if (last[field.key] == index++ && !visit(field.key, field.value)) return false;
  }
  return true;
}

// The last value of `key` in `object`; null counts as absent, as Python's None does.
std::optional<simdjson::dom::element> LastValue(simdjson::dom::object object, std::string_view key);

// What separates words (CountWords, the mock's tokens): ASCII whitespace.
inline bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// Words of every string value inside `value`, at any depth.
int64_t CountStringWords(simdjson::dom::element value);

// The chat usage rule (mock_api.h) for a non-empty array of message objects: kTokensPerMessage
// per message plus the words of every string in it except the value of its `role`, of its
// content parts' `type` and, with `item_type_is_markup` (Responses input items), of its own
// `type`. False when `value` is not such an array.
bool CountMessages(simdjson::dom::element value, int64_t& tokens, bool item_type_is_markup = false);

MockError BadRequest(std::string message, std::string_view param = {});

// `model` as one of options.models, with vLLM's errors for none (400) and an unknown one (404).
std::optional<MockError> FindModel(std::string_view model, const MockOptions& options,
                                   std::string_view& known);

// The last `model` member of `root`, resolved by FindModel.
std::optional<MockError> ReadModel(simdjson::dom::object root, const MockOptions& options,
                                   std::string_view& known);

}  // namespace trl
