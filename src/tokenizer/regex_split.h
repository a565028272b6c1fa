// A pre-tokenizer's regular expression (Hugging Face's `Split` with behaviour `Isolated`,
// `ByteLevel`'s GPT-2 expression, tiktoken's per-encoding expressions), run by PCRE2 with its JIT
// compiler.
//
// The expressions are written for Rust's regex crates (tiktoken, Hugging Face's tokenizers), in
// which `\s` is Unicode's White_Space. PCRE2's `\s` is not quite that (it has U+180E), nor is
// JavaScript's (it has U+FEFF and lacks U+0085), so `\s` and `\S` are rewritten to White_Space
// itself: the pieces are those of the tokenizers the model servers run.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace trl::tok {

class RegexSplit {
 public:
  // Throws std::invalid_argument naming what PCRE2 refused.
  explicit RegexSplit(std::string_view pattern);
  ~RegexSplit();
  RegexSplit(const RegexSplit&) = delete;
  RegexSplit& operator=(const RegexSplit&) = delete;

  // Calls piece(std::string_view) for each piece of `text` (valid UTF-8), in order: every match
  // and every stretch between matches. Empty pieces are skipped.
  template <class F>
  void Split(std::string_view text, F&& piece) const {
    size_t at = 0;
    size_t end = 0;
    size_t from = 0;
    while (NextMatch(text, from, &at, &end)) {
      if (at > from) piece(text.substr(from, at - from));
      if (end > at) piece(text.substr(at, end - at));
      from = end;
    }
    if (from < text.size()) piece(text.substr(from));
  }

  // `pattern` with `\s` and `\S` spelled as White_Space (exposed for its tests).
  static std::string WithWhiteSpace(std::string_view pattern);

 private:
  // The next non-empty match at or after `from`; false when there is none.
  bool NextMatch(std::string_view text, size_t from, size_t* at, size_t* end) const;

  struct Code;
  std::unique_ptr<Code> code_;
};

}  // namespace trl::tok
