#include "limits/token_counter.h"

#include <array>

namespace trl {
namespace {

// Byte classes. Each class is charged one token at the start of a run of that class and one
// more every kPeriod[class] bytes within the run (see token_counter.h for the reasons).
enum Class : uint8_t {
  kLetters,  // ASCII letters, and both bytes of 2-byte UTF-8 characters (so they weigh 2)
  kDigits,
  kPunct,    // ASCII punctuation, symbols, control characters
  kSpace,
  kWide,     // the bytes of 3-byte UTF-8 characters (CJK, kana, most symbols)
  kBytes,    // 4-byte characters and invalid UTF-8: one token per byte, as byte-fallback does
  kCont,     // a continuation byte: takes the class of the sequence it continues
};
constexpr int kPeriod[] = {5, 1, 2, 4, 2, 1};

constexpr std::array<uint8_t, 256> kClassOf = [] {
  std::array<uint8_t, 256> table{};
  for (int c = 0; c < 256; ++c) {
    Class k = kPunct;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      k = kLetters;
    } else if (c >= '0' && c <= '9') {
      k = kDigits;
    } else if (c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
      k = kSpace;
    } else if (c >= 0x80 && c <= 0xBF) {
      k = kCont;
    } else if (c >= 0xC2 && c <= 0xDF) {
      k = kLetters;
    } else if (c >= 0xE0 && c <= 0xEF) {
      k = kWide;
    } else if (c >= 0x80) {
      k = kBytes;  // 4-byte leads and bytes that never appear in UTF-8
    }
    table[c] = k;
  }
  return table;
}();

}  // namespace

int64_t ApproxTokenCounter::CountText(std::string_view text) const {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const size_t size = text.size();
  int64_t structural = 0;
  int prev = -1;          // class of the previous byte
  int countdown = 0;      // bytes left before the current run costs another token
  int sequence = kBytes;  // class a continuation byte takes (kBytes when none is open)
  // Written without data-dependent branches: run boundaries are unpredictable, and a
  // mispredicted branch per word would cost more than the rest of the loop.
  for (size_t i = 0; i < size; ++i) {
    const unsigned char c = bytes[i];
    const int raw = kClassOf[c];
    const int k = raw == kCont ? sequence : raw;
    sequence = raw == kCont ? sequence : (c < 0x80 ? int{kBytes} : raw);
    // A run starts. A single leading ' ' is free: it belongs to the next word's token.
    const int start_countdown = (k == kSpace) & (c == ' ');
    countdown = k != prev ? start_countdown : countdown;
    prev = k;
    const bool token = countdown == 0;
    structural += token;
    countdown = token ? kPeriod[k] - 1 : countdown - 1;
  }
  int64_t by_bytes = (static_cast<int64_t>(size) + 3) / 4;
  return structural > by_bytes ? structural : by_bytes;
}

std::unique_ptr<TokenCounter> MakeTokenCounter(const std::string& tokenizer, std::string* note) {
  if (tokenizer != "approx" && note) {
    *note = "tokenizer '" + tokenizer +
            "' is not supported yet; using the approximate counter (errs slightly high)";
  }
  return std::make_unique<ApproxTokenCounter>();
}

}  // namespace trl
