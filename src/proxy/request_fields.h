// Step "parse": pulls what the gateway needs out of an OpenAI request body in one pass with
// simdjson On-Demand, without building a DOM: the model, streaming flags, the output allowance,
// and the texts whose tokens are counted for the reservation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/text_views.h"

namespace trl {

class TokenCounter;

enum class ApiEndpoint { kChatCompletions, kCompletions, kEmbeddings };

struct RequestFields {
  std::string model;
  size_t model_offset = 0;             // where the model's JSON string (quotes included) sits
  size_t model_length = 0;             // in the body, so an alias can be replaced in place
  bool stream = false;
  bool has_stream_options = false;
  bool include_usage = false;          // stream_options.include_usage as the client sent it
  std::optional<int64_t> max_tokens;   // max_completion_tokens, else max_tokens
  // Texts to count, viewing the parser's buffers: valid until the next extraction on this
  // thread, so count them before any co_await.
  TextViews texts;
  int64_t messages = 0;                // chat messages (each costs a fixed overhead)
  int64_t pretokenized = 0;            // prompts or inputs given as token-id arrays
};

struct FieldError {
  std::string param;    // the offending field, e.g. "messages[2].content"
  std::string message;  // what is wrong and what to do
};

// The spare capacity a JSON body needs after its end to be parsed in place (simdjson's padding).
inline constexpr size_t kJsonBodyPadding = 64;

// The largest output allowance accepted; anything above is an absurd max_tokens (400).
constexpr int64_t kMaxTokensCeiling = 10'000'000;

// `body` must have at least 64 spare bytes of capacity (simdjson padding); the function
// reserves them if not. Returns nullopt on success. Thread-safe (a parser per thread).
std::optional<FieldError> ExtractRequestFields(ApiEndpoint endpoint, std::string& body,
                                               RequestFields& out);

// Prompt tokens of the extracted request under `counter`.
int64_t CountPromptTokens(const RequestFields& fields, const TokenCounter& counter);

}  // namespace trl
