// UTF-8 as the tokenizers need it: the length of one character, and invalid bytes replaced the
// way the references' hosts decode them.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace trl::tok {

// The bytes of the character starting at text[at] (1..4). A byte that starts no valid sequence
// counts 1. Assumes valid UTF-8 (ReplaceInvalidUtf8 makes it so).
inline size_t Utf8Length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  return 4;
}

// Whether `text` is valid UTF-8 (no overlongs, no surrogates, nothing past U+10FFFF).
bool IsValidUtf8(std::string_view text);

// `text` with each maximal subpart of an ill-formed sequence replaced by U+FFFD, as the WHATWG
// decoder (Node's TextDecoder, Buffer.toString) and Unicode's "best practice" do: the text a
// JavaScript tokenizer or Python's tiktoken would have been given for these bytes.
std::string ReplaceInvalidUtf8(std::string_view text);

}  // namespace trl::tok
