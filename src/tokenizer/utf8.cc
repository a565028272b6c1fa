#include "tokenizer/utf8.h"

#include <simdjson.h>

namespace trl::tok {

namespace {

// The length of the well-formed sequence at text[at], or 0 with *subpart the bytes of the
// maximal ill-formed subpart to replace (Unicode 15, table 3-7).
size_t WellFormedAt(std::string_view text, size_t at, size_t* subpart) {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(text[at + i]); };
  const unsigned char lead = b(0);
  *subpart = 1;
  if (lead < 0x80) return 1;
  size_t need = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    need = 1;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    need = 2;
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    need = 3;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  for (size_t i = 1; i <= need; ++i) {
    const bool ok =
        at + i < text.size() && b(i) >= (i == 1 ? lo : 0x80) && b(i) <= (i == 1 ? hi : 0xBF);
    if (!ok) {
      *subpart = i;
      return 0;
    }
  }
  return need + 1;
}

}  // namespace

bool IsValidUtf8(std::string_view text) {
  return simdjson::validate_utf8(text.data(), text.size());
}

std::string ReplaceInvalidUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  size_t at = 0;
  while (at < text.size()) {
    size_t subpart = 0;
    if (const size_t n = WellFormedAt(text, at, &subpart)) {
      out.append(text.substr(at, n));
      at += n;
    } else {
      out.append("\xEF\xBF\xBD");
      at += subpart;
    }
  }
  return out;
}

}  // namespace trl::tok
