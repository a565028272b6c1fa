#include "limits/token_counter.h"

#include <array>
#include <cstdint>
#include <stdexcept>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace trl {
namespace {

// Byte classes. Each class is charged one token at the start of a run of that class and one
// more every kPeriod[class] bytes within the run (see token_counter.h for the reasons).
enum Class : uint8_t {
  kLetters,  // ASCII letters, and both bytes of 2-byte UTF-8 characters (so they weigh 2)
  kDigits,
  kPunct,  // ASCII punctuation, symbols, control characters
  kSpace,
  kWide,   // the bytes of 3-byte UTF-8 characters (CJK, kana, most symbols)
  kBytes,  // 4-byte characters and invalid UTF-8: one token per byte, as byte-fallback does
  kCont,   // a continuation byte: takes the class of the sequence it continues
};
constexpr int kPeriod[] = {5, 1, 2, 4, 2, 1};

constexpr std::array<uint8_t, 256> kClassOf = [] {
  std::array<uint8_t, 256> table{};
  for (int c = 0; c < 256; ++c) {
    Class k = kPunct;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= 0xC2 && c <= 0xDF)) {
      k = kLetters;
    } else if (c >= '0' && c <= '9') {
      k = kDigits;
    } else if (c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
      k = kSpace;
    } else if (c >= 0x80 && c <= 0xBF) {
      k = kCont;
    } else if (c >= 0xE0 && c <= 0xEF) {
      k = kWide;
    } else if (c >= 0x80) {
      k = kBytes;  // 4-byte leads and bytes that never appear in UTF-8
    }
    table[c] = k;
  }
  return table;
}();

#if defined(__SSE2__)
// Whether any of 64 bytes is not ASCII.
inline bool AnyHighByte(const unsigned char* p) {
  auto load = [p](int part) {
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + ptrdiff_t{16} * part));
  };
  const __m128i any = _mm_or_si128(_mm_or_si128(load(0), load(1)), _mm_or_si128(load(2), load(3)));
  return _mm_movemask_epi8(any) != 0;
}

// 64 ASCII bytes as bit masks (bit i = byte i).
struct BlockMasks {
  uint64_t letters = 0, digits = 0, space = 0, blank = 0;  // blank: ' '
};

inline BlockMasks Classify(const unsigned char* p) {
  auto bits = [](__m128i m) {
    return static_cast<uint64_t>(static_cast<unsigned>(_mm_movemask_epi8(m)));
  };
  auto in = [](__m128i x, char lo, char hi) {  // lo <= x <= hi, for x < 0x80
    return _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8(static_cast<char>(lo - 1))),
                         _mm_cmpgt_epi8(_mm_set1_epi8(static_cast<char>(hi + 1)), x));
  };
  BlockMasks m;
  for (int part = 0; part < 4; ++part) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + ptrdiff_t{16} * part));
    const __m128i blank = _mm_cmpeq_epi8(v, _mm_set1_epi8(' '));
    const int at = 16 * part;
    m.letters |= bits(in(_mm_or_si128(v, _mm_set1_epi8(0x20)), 'a', 'z')) << at;
    m.digits |= bits(in(v, '0', '9')) << at;
    m.blank |= bits(blank) << at;
    m.space |= bits(_mm_or_si128(in(v, '\t', '\r'), blank)) << at;
  }
  return m;
}

// The bytes of a class's runs that cost a token, given the ones that do in each run (`marks`)
// and the bytes that continue a run (`inside`): every `period`-th byte after those, within the
// run, found by doubling shifts.
template <int period>
uint64_t EveryPeriod(uint64_t marks, uint64_t inside) {
  uint64_t span = inside;  // bytes whose `step` bytes before are all in the same run
  for (int i = 1; i < period; ++i) span &= inside << i;
  for (int step = period; step < 64; step *= 2) {
    marks |= (marks << step) & span;
    span &= span << step;
  }
  return marks;
}

// The tokens of 64 ASCII bytes, one class at a time: the bytes of a class that cost a token are
// each run's first byte (its second for a whitespace run that starts with ' '), then every
// kPeriod-th byte of the run. `prev` and `countdown` carry the run that continues across
// blocks, as in the byte loop; Finish() updates them for the next block.
struct AsciiBlock {
  const BlockMasks& m;
  int& prev;
  int& countdown;
  const int last = m.letters >> 63  ? kLetters
                   : m.digits >> 63 ? kDigits
                   : m.space >> 63  ? kSpace
                                    : kPunct;  // the class of the block's last byte
  int64_t tokens = 0;
  int next_countdown = 0;

  template <int k>
  void Count(uint64_t bytes) {
    const uint64_t starts = bytes & ~((bytes << 1) | uint64_t{prev == k});
    const uint64_t inside = bytes & ~starts;  // bytes that continue a run
    uint64_t marks = bytes;                   // kPeriod 1: every byte
    if constexpr (kPeriod[k] > 1) {
      marks = k == kSpace ? (starts & ~m.blank) | (((starts & m.blank) << 1) & inside) : starts;
      const uint64_t through = (uint64_t{2} << countdown) - 1;  // bytes 0..countdown
      if (prev == k && (inside & through) == through) marks |= uint64_t{1} << countdown;
      marks = EveryPeriod<kPeriod[k]>(marks, inside);
    }
    tokens += __builtin_popcountll(marks);
    if (k == last) {
      // The next token of the last run: kPeriod bytes after its last, or its second byte for
      // a run of one ' '.
      const int mark = marks ? 63 - __builtin_clzll(marks) : -1;
      const int start = starts ? 63 - __builtin_clzll(starts) : -1;
      next_countdown = start > mark ? 0 : mark + kPeriod[k] - 64;
    }
  }

  int64_t Finish() {
    prev = last;
    countdown = next_countdown;
    return tokens;
  }
};

inline int64_t AsciiBlockTokens(const BlockMasks& m, int& prev, int& countdown) {
  AsciiBlock block{m, prev, countdown};
  block.Count<kLetters>(m.letters);
  block.Count<kDigits>(m.digits);
  block.Count<kPunct>(~(m.letters | m.digits | m.space));
  block.Count<kSpace>(m.space);
  return block.Finish();
}
#endif

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
  auto bytewise = [&](size_t from, size_t to) {
    // The state in locals, so that it stays in registers for the loop.
    int64_t tokens = 0;
    int k_prev = prev, left = countdown, seq = sequence;
    for (size_t i = from; i < to; ++i) {
      const unsigned char c = bytes[i];
      const int raw = kClassOf[c];
      const int k = raw == kCont ? seq : raw;
      seq = raw == kCont ? seq : (c < 0x80 ? int{kBytes} : raw);
      // A run starts. A single leading ' ' is free: it belongs to the next word's token.
      const int start_countdown = (k == kSpace) & (c == ' ');
      left = k != k_prev ? start_countdown : left;
      k_prev = k;
      const bool token = left == 0;
      tokens += token;
      left = token ? kPeriod[k] - 1 : left - 1;
    }
    structural += tokens;
    prev = k_prev;
    countdown = left;
    sequence = seq;
  };
  size_t i = 0;
#if defined(__SSE2__)
  // Blocks of 64 ASCII bytes (most of any prompt) at once; others byte by byte, in one loop over
  // consecutive such blocks.
  while (i + 64 <= size) {
    if (!AnyHighByte(bytes + i)) {
      structural += AsciiBlockTokens(Classify(bytes + i), prev, countdown);
      sequence = kBytes;
      i += 64;
      continue;
    }
    size_t end = i + 64;
    while (end + 64 <= size && AnyHighByte(bytes + end)) end += 64;
    bytewise(i, end);
    i = end;
  }
#endif
  bytewise(i, size);
  const int64_t by_bytes = (static_cast<int64_t>(size) + 3) / 4;
  return structural > by_bytes ? structural : by_bytes;
}

int64_t TokenCounter::CountChat(std::span<const ChatTurn> messages) const {
  int64_t total = PerRequestOverhead();
  for (const ChatTurn& m : messages) {
    total += PerMessageOverhead();
    for (std::string_view text : m.texts) total += CountText(text);
  }
  return total;
}

ExactTokenCounter::ExactTokenCounter(std::shared_ptr<const Tokenizer> tokenizer,
                                     std::optional<ChatFraming> framing)
    : tokenizer_(std::move(tokenizer)), framing_(std::move(framing)) {}

int64_t ExactTokenCounter::CountText(std::string_view text) const {
  return static_cast<int64_t>(tokenizer_->Count(text));
}

int64_t ExactTokenCounter::CountChat(std::span<const ChatTurn> messages) const {
  if (!framing_) return TokenCounter::CountChat(messages);
  return CountText(framing_->Render(messages));
}

std::unique_ptr<TokenCounter> MakeTokenCounter(const std::string& tokenizer,
                                               const std::string& chat_template) {
  std::optional<ChatFraming> framing;
  if (!chat_template.empty()) {
    framing = BuiltInChatFraming(chat_template);
    if (!framing) {
      throw std::runtime_error("unknown chat template '" + chat_template +
                               "' (expected llama2, llama3 or chatml)");
    }
  }
  if (tokenizer == "approx") {
    if (framing) throw std::runtime_error("a chat template needs a tokenizer file, not approx");
    return std::make_unique<ApproxTokenCounter>();
  }
  return std::make_unique<ExactTokenCounter>(LoadTokenizer(tokenizer), std::move(framing));
}

}  // namespace trl
