// A tokenizer.json's added tokens (special ones such as `<|eot_id|>` and `<s>` included), which
// are found in the text before anything else: the text between them is normalized and encoded,
// each one is its id. At a position where several start, the longest wins; the leftmost
// position first (Hugging Face's leftmost-longest match).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace trl::tok {

class AddedTokens {
 public:
  void Add(std::string content, uint32_t id);
  bool Empty() const { return count_ == 0; }

  // Calls section(text, std::nullopt) for each stretch of text between added tokens and
  // section({}, id) for each added token, in order; empty stretches are skipped.
  template <class F>
  void Split(std::string_view text, F&& section) const {
    size_t from = 0;
    for (size_t at = 0; at < text.size(); ++at) {
      const auto& bucket = by_first_byte_[static_cast<unsigned char>(text[at])];
      if (bucket.empty()) continue;
      const Entry* match = LongestAt(bucket, text.substr(at));
      if (match == nullptr) continue;
      if (at > from) section(text.substr(from, at - from), std::optional<uint32_t>());
      section(std::string_view(), std::optional<uint32_t>(match->id));
      at += match->content.size() - 1;
      from = at + 1;
    }
    if (from < text.size()) section(text.substr(from), std::optional<uint32_t>());
  }

 private:
  struct Entry {
    std::string content;
    uint32_t id;
  };
  static const Entry* LongestAt(const std::vector<Entry>& bucket, std::string_view rest);

  std::array<std::vector<Entry>, 256> by_first_byte_;  // each longest first
  size_t count_ = 0;
};

}  // namespace trl::tok
