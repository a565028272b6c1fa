#include "limits/token_counter.h"

namespace trl {
namespace {

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

bool IsAsciiLetter(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
bool IsDigit(unsigned char c) { return c >= '0' && c <= '9'; }
bool IsSpace(unsigned char c) {
  return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}
bool IsContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Length of a well-formed UTF-8 sequence starting at text[i] (2, 3 or 4), or 0.
size_t Utf8Length(std::string_view text, size_t i) {
  unsigned char c = static_cast<unsigned char>(text[i]);
  size_t n = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
  if (n == 0 || i + n > text.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if (!IsContinuation(static_cast<unsigned char>(text[i + k]))) return 0;
  }
  return n;
}

enum class Run { kNone, kLetters, kDigits, kPunct, kSpace, kWide };

}  // namespace

int64_t ApproxTokenCounter::CountText(std::string_view text) const {
  int64_t structural = 0;
  Run run = Run::kNone;
  int64_t run_weight = 0;  // letters: weighted length; others: characters in the run
  bool run_all_blank = false;  // a whitespace run made of ' ' only

  auto close_run = [&] {
    switch (run) {
      case Run::kLetters:
        structural += CeilDiv(run_weight, 5);
        break;
      case Run::kDigits:
        structural += run_weight;
        break;
      case Run::kPunct:
        structural += CeilDiv(run_weight, 2);
        break;
      case Run::kSpace:
        if (!(run_all_blank && run_weight == 1)) structural += CeilDiv(run_weight, 4);
        break;
      case Run::kWide:
        structural += CeilDiv(run_weight * 3, 2);
        break;
      case Run::kNone:
        break;
    }
    run = Run::kNone;
    run_weight = 0;
  };
  auto extend = [&](Run kind, int64_t weight) {
    if (run != kind) close_run();
    run = kind;
    run_weight += weight;
  };

  for (size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if (IsAsciiLetter(c)) {
        extend(Run::kLetters, 1);
      } else if (IsDigit(c)) {
        extend(Run::kDigits, 1);
      } else if (IsSpace(c)) {
        if (run != Run::kSpace) run_all_blank = true;
        extend(Run::kSpace, 1);
        run_all_blank = run_all_blank && c == ' ';
      } else {
        extend(Run::kPunct, 1);
      }
      ++i;
      continue;
    }
    switch (Utf8Length(text, i)) {
      case 2:
        extend(Run::kLetters, 2);
        i += 2;
        break;
      case 3:
        extend(Run::kWide, 1);
        i += 3;
        break;
      case 4:
        close_run();
        structural += 3;
        i += 4;
        break;
      default:  // a byte that starts no valid sequence: spelled as one byte token
        close_run();
        structural += 1;
        ++i;
        break;
    }
  }
  close_run();
  int64_t by_bytes = CeilDiv(static_cast<int64_t>(text.size()), 4);
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
