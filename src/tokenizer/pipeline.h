// What a tokenizer.json does to the text between added tokens before its BPE model sees it: the
// normalizer (only the string edits SentencePiece-style files use: Prepend and Replace) and the
// pre-tokenizer steps (regex splits, ByteLevel's optional leading space, Metaspace), each step
// applied to every piece the steps before it made.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/regex_split.h"

namespace trl::tok {

struct NormalizeStep {
  enum class Kind { kPrepend, kReplace } kind;
  std::string from;  // kReplace: the string replaced
  std::string to;    // kPrepend: what is prepended; kReplace: the replacement
};

struct PreTokenizeStep {
  enum class Kind {
    kRegex,        // `regex` splits, matches and what lies between them both pieces
    kPrefixSpace,  // ByteLevel's add_prefix_space: ' ' before a piece that has none
    kMetaspace,    // ' ' becomes `replacement`, prepended per `prepend`, split before each one
  } kind;
  std::shared_ptr<const RegexSplit> regex;
  std::string replacement;
  enum class Prepend { kAlways, kFirst, kNever } prepend = Prepend::kAlways;
  bool split = false;
};

class Pipeline {
 public:
  std::vector<NormalizeStep> normalizer;
  std::vector<PreTokenizeStep> pre_tokenizer;

  // Calls piece(std::string_view) for each piece of `section` (valid UTF-8); `at_start`: the
  // section begins the text (Metaspace's prepend_scheme "first").
  template <class F>
  void Pieces(std::string_view section, bool at_start, F&& piece) const {
    std::string normalized;
    if (!normalizer.empty()) {
      normalized = Normalize(section);
      section = normalized;
    }
    if (section.empty()) return;
    Step(0, section, at_start, piece);
  }

 private:
  std::string Normalize(std::string_view text) const;

  template <class F>
  void Step(size_t i, std::string_view text, bool at_start, F& piece) const {
    if (i == pre_tokenizer.size()) {
      piece(text);
      return;
    }
    const PreTokenizeStep& step = pre_tokenizer[i];
    switch (step.kind) {
      case PreTokenizeStep::Kind::kRegex: {
        bool first = at_start;  // only the first piece still begins the text
        step.regex->Split(text, [&](std::string_view p) {
          Step(i + 1, p, first, piece);
          first = false;
        });
        return;
      }
      case PreTokenizeStep::Kind::kPrefixSpace: {
        if (text.starts_with(' ')) break;
        const std::string spaced = " " + std::string(text);
        Step(i + 1, spaced, at_start, piece);
        return;
      }
      case PreTokenizeStep::Kind::kMetaspace: {
        const std::string spaced = Metaspace(step, text, at_start);
        SplitBefore(step, spaced, [&](std::string_view p) { Step(i + 1, p, at_start, piece); });
        return;
      }
    }
    Step(i + 1, text, at_start, piece);
  }

  static std::string Metaspace(const PreTokenizeStep& step, std::string_view text, bool at_start);
  // With step.split, the pieces of `text` each starting at a replacement (Hugging Face's
  // MergedWithNext); else `text` whole.
  template <class F>
  static void SplitBefore(const PreTokenizeStep& step, std::string_view text, F&& piece) {
    if (!step.split) {
      piece(text);
      return;
    }
    size_t from = 0;
    for (size_t at = text.find(step.replacement, 1); at != std::string_view::npos;
         at = text.find(step.replacement, at + step.replacement.size())) {
      piece(text.substr(from, at - from));
      from = at;
    }
    piece(text.substr(from));
  }
};

}  // namespace trl::tok
