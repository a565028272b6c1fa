// GPT-2's ByteLevel alphabet, in which a byte-level tokenizer.json writes its vocabulary and
// merges: each byte is one printable character (bytes 33-126, 161-172 and 174-255 stand for
// themselves, the others for U+0100 on, in order).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace trl::tok {

// The character (UTF-8) that stands for byte `b`.
std::string ByteLevelCharacter(unsigned char b);
// `bytes` in that alphabet.
std::string ToByteLevel(std::string_view bytes);
// The bytes a ByteLevel vocabulary entry stands for; nullopt if it holds another character
// (such an entry can never be produced from bytes).
std::optional<std::string> FromByteLevel(std::string_view mapped);

}  // namespace trl::tok
