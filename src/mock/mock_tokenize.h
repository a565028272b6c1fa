// POST /tokenize and /detokenize, as vLLM serves them, over the mock's tokenization: a token is
// a whitespace-separated word (CountWords), so /tokenize's count is what the usage rule of
// mock_api.h counts for the same prompt or messages.
//
// /tokenize {model, prompt} or {model, messages, tools?} (add_special_tokens and
// return_token_strs booleans) -> {"count":N,"max_model_len":kMockMaxModelLen,"tokens":[ids],
// "token_strs":null}, or token_strs the tokens' texts with return_token_strs true. A prompt's
// tokens are its words. A message list is rendered as chat is counted: per message the template
// tokens <|start|> <|content|>, the words of its strings (not its role's, nor its parts' type),
// then <|end|> (kTokensPerMessage = 3); then the words of every string of `tools`.
// /detokenize {model, tokens: [ids]} -> {"prompt": the tokens' texts joined by one space}, so
// detokenize(tokenize(x)) == x for a prompt whose words are separated by single spaces.
//
// Ids: 0, 1, 2 are <|start|>, <|content|>, <|end|>; a word of 1 to 6 bytes is
// (length << 48) | its bytes big-endian, the same in every process; a longer word gets
// kLongWordBase + n, n counting the long words this process has met, in order (so its id holds
// only for this process). Every id is below 2^53, exact in a JavaScript number.
// Neither route waits --ttft nor reports usage.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "mock/mock_api.h"

namespace trl {

inline constexpr int64_t kMockMaxModelLen = 32768;
inline constexpr int64_t kLongWordBase = int64_t{7} << 48;

// The long words' ids. Thread-safe; bounded: past kCapacity words, new ones get no id.
class MockVocabulary {
 public:
  static constexpr size_t kCapacity = 1 << 16;

  // The id of `word` (non-empty, no whitespace); nullopt when it is new and the table is full.
  std::optional<int64_t> Id(std::string_view word);
  // The text of `id`; nullopt for an id no token has.
  std::optional<std::string> Text(int64_t id) const;

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, int64_t> ids_;
  std::vector<std::string> words_;  // by id - kLongWordBase
};

MockResult AnswerTokenize(MockCall& call);
MockResult AnswerDetokenize(MockCall& call);

}  // namespace trl
