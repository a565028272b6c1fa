#include "tokenizer/byte_level.h"

#include <array>

#include "tokenizer/utf8.h"

namespace trl::tok {

namespace {

constexpr bool StandsForItself(unsigned b) {
  return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
}

// The code point of each byte, and the byte of each code point below 324 (-1: none).
struct Alphabet {
  std::array<uint32_t, 256> code_point{};
  std::array<int, 324> byte{};
  Alphabet() {
    byte.fill(-1);
    uint32_t next = 256;
    for (unsigned b = 0; b < 256; ++b) {
      code_point[b] = StandsForItself(b) ? b : next++;
      byte[code_point[b]] = static_cast<int>(b);
    }
  }
};

const Alphabet& TheAlphabet() {
  static const Alphabet kAlphabet;
  return kAlphabet;
}

}  // namespace

std::string ByteLevelCharacter(unsigned char b) {
  const uint32_t cp = TheAlphabet().code_point[b];
  if (cp < 0x80) return std::string(1, static_cast<char>(cp));
  return {static_cast<char>(0xC0 | (cp >> 6)), static_cast<char>(0x80 | (cp & 0x3F))};
}

std::string ToByteLevel(std::string_view bytes) {
  std::string out;
  for (const char c : bytes) out += ByteLevelCharacter(static_cast<unsigned char>(c));
  return out;
}

std::optional<std::string> FromByteLevel(std::string_view mapped) {
  std::string out;
  for (size_t at = 0; at < mapped.size();) {
    const auto lead = static_cast<unsigned char>(mapped[at]);
    const size_t n = Utf8Length(lead);
    if (n > 2 || at + n > mapped.size()) return std::nullopt;
    const uint32_t cp = n == 1 ? lead : ((lead & 0x1Fu) << 6) | (mapped[at + 1] & 0x3Fu);
    const int b = cp < TheAlphabet().byte.size() ? TheAlphabet().byte[cp] : -1;
    if (b < 0) return std::nullopt;
    out += static_cast<char>(b);
    at += n;
  }
  return out;
}

}  // namespace trl::tok
