// Token counting for admission: the prompt part of a reservation, before the backend has said
// what the request really cost (settlement corrects the difference either way). The proxy pulls
// the texts out of the body and adds, for a chat request,
//   sum(CountText(content) + PerMessageOverhead()) over the messages + PerRequestOverhead()
// (the accounting of OpenAI's cookbook: each message is wrapped in role/separator tokens, each
// reply is primed with a few more), and for a completion, CountText(prompt) + PerRequestOverhead().
// A counter with the model's own tokenizer and its chat framing (ExactTokenCounter) counts a chat
// as the prompt text the model's chat template renders instead (CountChat).
//
// Thread-safety: counters are immutable after construction; every method is const and
// thread-safe, so one counter per model is shared by all I/O threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "tokenizer/chat_framing.h"
#include "tokenizer/tokenizer.h"

namespace trl {

class TokenCounter {
 public:
  virtual ~TokenCounter() = default;
  // Tokens in `text` (any bytes; UTF-8 expected). Never negative; 0 only for "".
  virtual int64_t CountText(std::string_view text) const = 0;
  // Tokens a chat message costs beyond its content (role, separators).
  virtual int64_t PerMessageOverhead() const = 0;
  // Tokens a request costs beyond its messages (the primed reply).
  virtual int64_t PerRequestOverhead() const = 0;
  // The prompt tokens of a chat's messages: by default the cookbook's,
  //   sum(CountText(text) over its texts + PerMessageOverhead()) + PerRequestOverhead().
  virtual int64_t CountChat(std::span<const ChatTurn> messages) const;
  // Whether this is a model's own tokenizer (tens of milliseconds a megabyte, where the estimate
  // takes a fraction of one): large prompts are then counted off the I/O threads.
  virtual bool Exact() const { return false; }
};

// An estimate that needs no vocabulary and errs slightly high, so a reservation usually covers
// the real prompt and settlement refunds the difference instead of putting a budget in debt.
//
// The count is max(ceil(bytes / 4), structural). Structural splits the text into runs of one
// class of characters and charges each run one token at its start and one more every P bytes,
// i.e. ceil(run_bytes / P), choosing P from what BPE/SentencePiece vocabularies (GPT's cl100k,
// Llama's 32k) actually do with each class:
//  - letters (ASCII, and 2-byte UTF-8 letters such as accented Latin, Greek, Cyrillic, which so
//    weigh 2 each): P = 5: common English words are one token, long or rare ones split every
//    4-5 letters;
//  - digits: P = 1 (Llama splits every digit; cl100k groups up to 3, so this errs high);
//  - ASCII punctuation and symbols: P = 2 ("," "!" ")." are one token, "();" two);
//  - whitespace: P = 4, but one leading ' ' is free (it belongs to the next word's token), so
//    single spaces between words cost nothing and newlines or indentation do;
//  - 3-byte UTF-8 characters (CJK, kana, most symbols): P = 2, i.e. 3 tokens per 2 characters,
//    since vocabularies hold only the commonest ones whole and spell the rest in bytes;
//  - 4-byte characters (emoji, rare CJK) and invalid UTF-8: P = 1, a token per byte, which is
//    what byte-fallback vocabularies do with them.
// ceil(bytes / 4) is the familiar "4 characters per token" rule for English; for English prose
// it is usually the larger term (about 1.4 tokens per word, a little above GPT-4's ~1.3 and near
// Llama 2's), and structural dominates for digits, code, CJK and emoji, where bytes/4 undercounts.
// Every whitespace-separated word costs at least 1, so the estimate is never below a word count
// (mock-llm's rule). Cost: 64 ASCII bytes at a time as bit masks, one per class (SSE2), ~2 GB/s
// on English prose; blocks with other bytes go byte by byte, a table lookup each (~400 MB/s).
class ApproxTokenCounter final : public TokenCounter {
 public:
  int64_t CountText(std::string_view text) const override;
  int64_t PerMessageOverhead() const override { return 4; }
  int64_t PerRequestOverhead() const override { return 3; }
};

// Exact counts with the model's own tokenizer (tokenizer/tokenizer.h). A chat is the prompt its
// `framing` renders, counted whole (the added tokens it writes, such as <|eot_id|>, are one token
// each when the tokenizer has them); without a framing, the cookbook's overheads as above.
class ExactTokenCounter final : public TokenCounter {
 public:
  ExactTokenCounter(std::shared_ptr<const Tokenizer> tokenizer, std::optional<ChatFraming> framing);
  int64_t CountText(std::string_view text) const override;
  int64_t PerMessageOverhead() const override { return 4; }
  int64_t PerRequestOverhead() const override { return 3; }
  int64_t CountChat(std::span<const ChatTurn> messages) const override;
  bool Exact() const override { return true; }

  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const std::optional<ChatFraming>& framing() const { return framing_; }

 private:
  std::shared_ptr<const Tokenizer> tokenizer_;
  std::optional<ChatFraming> framing_;
};

// The counter for a model's `tokenizer` and `chat_template` settings (config.h): "approx" gives
// ApproxTokenCounter; a tokenizer.json path or "tiktoken:PATH" loads that file (which takes a
// fraction of a second for a large vocabulary). Throws std::runtime_error naming the file and what
// is wrong with it, or the unknown chat template. Never null.
std::unique_ptr<TokenCounter> MakeTokenCounter(const std::string& tokenizer,
                                               const std::string& chat_template = "");

}  // namespace trl
