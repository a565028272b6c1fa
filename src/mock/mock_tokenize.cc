#include "mock/mock_tokenize.h"

#include <fmt/format.h>

#include <array>
#include <iterator>
#include <utility>

#include "mock/mock_json.h"

namespace trl {
namespace {

namespace dom = simdjson::dom;
using dom::element_type;

constexpr std::array<std::string_view, 3> kTemplateTokens = {"<|start|>", "<|content|>", "<|end|>"};
constexpr size_t kPackedBytes = 6;
constexpr int kLengthShift = 48;

// The tokens of one request, in order.
struct Tokens {
  std::vector<int64_t> ids;
  std::vector<std::string> texts;
  bool full = false;  // a new long word found the vocabulary full
};

class Tokenizer {
 public:
  explicit Tokenizer(MockVocabulary& vocabulary) : vocabulary_(vocabulary) {}

  void Special(size_t index) { Add(static_cast<int64_t>(index), kTemplateTokens[index]); }

  void Words(std::string_view text) {
    size_t at = 0;
    while (at < text.size()) {
      while (at < text.size() && IsSpace(text[at])) ++at;
      size_t end = at;
      while (end < text.size() && !IsSpace(text[end])) ++end;
      if (end > at) Word(text.substr(at, end - at));
      at = end;
    }
  }

  // Every string inside `value`, as CountStringWords walks it.
  void Strings(dom::element value) {
    if (value.is_string()) {
      Words(std::string_view(value));
    } else if (value.is_array()) {
      for (dom::element item : dom::array(value)) Strings(item);
    } else if (value.is_object()) {
      ForEachLastField(dom::object(value), [&](std::string_view, dom::element field) {
        Strings(field);
        return true;
      });
    }
  }

  Tokens& Result() { return tokens_; }

 private:
  void Word(std::string_view word) {
    if (word.size() <= kPackedBytes) {
      int64_t id = static_cast<int64_t>(word.size()) << kLengthShift;
      for (size_t i = 0; i < word.size(); ++i) {
        id |= int64_t{static_cast<unsigned char>(word[i])} << (8 * (word.size() - 1 - i));
      }
      Add(id, word);
      return;
    }
    std::optional<int64_t> id = vocabulary_.Id(word);
    if (!id) {
      tokens_.full = true;
      return;
    }
    Add(*id, word);
  }

  void Add(int64_t id, std::string_view text) {
    tokens_.ids.push_back(id);
    tokens_.texts.emplace_back(text);
  }

  MockVocabulary& vocabulary_;
  Tokens tokens_;
};

// One message by the chat rule: template tokens around the words of its strings.
bool TokenizeMessage(dom::element message, Tokenizer& tokenizer) {
  if (!message.is_object()) return false;
  tokenizer.Special(0);
  tokenizer.Special(1);
  bool ok = ForEachLastField(dom::object(message), [&](std::string_view key, dom::element field) {
    if (key == "role") return true;
    if (key != "content" || field.is_string() || field.is_null()) {
      tokenizer.Strings(field);
      return true;
    }
    if (!field.is_array()) return false;
    for (dom::element part : dom::array(field)) {
      if (!part.is_object()) return false;
      ForEachLastField(dom::object(part), [&](std::string_view part_key, dom::element value) {
        if (part_key != "type") tokenizer.Strings(value);
        return true;
      });
    }
    return true;
  });
  tokenizer.Special(2);
  return ok;
}

std::optional<MockError> TokenizeInput(dom::object root, Tokenizer& tokenizer) {
  auto prompt = LastValue(root, "prompt");
  auto messages = LastValue(root, "messages");
  if (prompt) {
    if (!prompt->is_string()) return BadRequest("prompt must be a string", "prompt");
    tokenizer.Words(std::string_view(*prompt));
    return std::nullopt;
  }
  if (!messages) return BadRequest("prompt or messages is required", "prompt");
  const MockError bad =
      BadRequest("messages must be a non-empty array of message objects", "messages");
  if (!messages->is_array() || dom::array(*messages).size() == 0) return bad;
  for (dom::element message : dom::array(*messages)) {
    if (!TokenizeMessage(message, tokenizer)) return bad;
  }
  if (auto tools = LastValue(root, "tools")) tokenizer.Strings(*tools);
  return std::nullopt;
}

// A boolean member, false when absent.
std::optional<MockError> ReadFlag(dom::object root, std::string_view key, bool& flag) {
  flag = false;
  auto value = LastValue(root, key);
  if (value && value->get_bool().get(flag)) {
    return BadRequest(std::string(key) + " must be a boolean", key);
  }
  return std::nullopt;
}

void AppendTokensBody(std::string& out, const Tokens& tokens, bool with_texts) {
  fmt::format_to(std::back_inserter(out), R"({{"count":{},"max_model_len":{},"tokens":[{}],)",
                 tokens.ids.size(), kMockMaxModelLen, fmt::join(tokens.ids, ","));
  out += R"("token_strs":)";
  if (!with_texts) {
    out += "null}";
    return;
  }
  out += '[';
  for (size_t i = 0; i < tokens.texts.size(); ++i) {
    if (i > 0) out += ',';
    AppendJsonString(out, tokens.texts[i]);
  }
  out += "]}";
}

}  // namespace

std::optional<int64_t> MockVocabulary::Id(std::string_view word) {
  std::lock_guard lock(mutex_);
  std::string key(word);
  if (auto found = ids_.find(key); found != ids_.end()) return found->second;
  if (words_.size() >= kCapacity) return std::nullopt;
  const int64_t id = kLongWordBase + static_cast<int64_t>(words_.size());
  words_.push_back(key);
  ids_.emplace(std::move(key), id);
  return id;
}

std::optional<std::string> MockVocabulary::Text(int64_t id) const {
  if (id >= 0 && id < static_cast<int64_t>(kTemplateTokens.size())) {
    return std::string(kTemplateTokens[id]);
  }
  const int64_t length = id >> kLengthShift;
  if (length >= 1 && length <= static_cast<int64_t>(kPackedBytes)) {
    if ((id & ((int64_t{1} << (8 * length)) - 1)) != (id & ((int64_t{1} << kLengthShift) - 1))) {
      return std::nullopt;  // bits above the word's bytes: no word packs to that
    }
    std::string word(static_cast<size_t>(length), '\0');
    for (int64_t i = 0; i < length; ++i) word[i] = static_cast<char>(id >> (8 * (length - 1 - i)));
    // A packed word has no whitespace; an id that decodes to some was never a token.
    for (char c : word) {
      if (IsSpace(c)) return std::nullopt;
    }
    return word;
  }
  std::lock_guard lock(mutex_);
  const int64_t index = id - kLongWordBase;
  if (index < 0 || index >= static_cast<int64_t>(words_.size())) return std::nullopt;
  return words_[static_cast<size_t>(index)];
}

MockResult AnswerTokenize(MockCall& call) {
  std::optional<dom::object> root = ParseJsonObject(call.body);
  if (!root) return BadRequest("request body is not a valid JSON object");
  MockReply reply;
  reply.prefill = false;
  bool special = false;
  bool with_texts = false;
  if (auto error = ReadFlag(*root, "add_special_tokens", special)) return *error;
  if (auto error = ReadFlag(*root, "return_token_strs", with_texts)) return *error;
  if (auto error = ReadModel(*root, call.options, reply.model)) return *error;
  Tokenizer tokenizer(call.vocabulary);
  if (auto error = TokenizeInput(*root, tokenizer)) return *error;
  if (tokenizer.Result().full) {
    return MockError{503, "mock-llm's vocabulary of long words is full", "api_error", {}, {}};
  }
  AppendTokensBody(reply.body, tokenizer.Result(), with_texts);
  return reply;
}

MockResult AnswerDetokenize(MockCall& call) {
  std::optional<dom::object> root = ParseJsonObject(call.body);
  if (!root) return BadRequest("request body is not a valid JSON object");
  MockReply reply;
  reply.prefill = false;
  if (auto error = ReadModel(*root, call.options, reply.model)) return *error;
  auto tokens = LastValue(*root, "tokens");
  if (!tokens || !tokens->is_array()) {
    return BadRequest("tokens must be an array of token ids", "tokens");
  }
  std::string prompt;
  for (dom::element token : dom::array(*tokens)) {
    int64_t id = 0;
    if (token.get_int64().get(id)) return BadRequest("tokens must be integers", "tokens");
    std::optional<std::string> text = call.vocabulary.Text(id);
    if (!text) return BadRequest(fmt::format("token id {} is out of vocabulary", id), "tokens");
    if (!prompt.empty()) prompt += ' ';
    prompt += *text;
  }
  reply.body = R"({"prompt":)";
  AppendJsonString(reply.body, prompt);
  reply.body += '}';
  return reply;
}

}  // namespace trl
