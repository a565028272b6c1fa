// RFC 3339 date-times (UTC) to and from Unix seconds: the usage API's ranges, key expiry.
#include "common/rfc3339.h"

#include <chrono>
#include <cstdio>

namespace trl {
namespace {

using std::chrono::day;
using std::chrono::month;
using std::chrono::year;
using std::chrono::year_month_day;

constexpr int64_t kDaySeconds = 86'400;
// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the times FormatRfc3339 writes in four digits.
constexpr int64_t kFirstSecond = -62'167'219'200;
constexpr int64_t kLastSecond = 253'402'300'799;

// A cursor over the text: each step consumes what it accepts and fails on anything else.
class Cursor {
 public:
  explicit Cursor(std::string_view text) : text_(text) {}

  bool Digits(size_t count, int* value) {
    if (text_.size() < count) return false;
    int v = 0;
    for (size_t i = 0; i < count; ++i) {
      char c = text_[i];
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    text_.remove_prefix(count);
    *value = v;
    return true;
  }
  bool Char(char a, char b) {
    if (text_.empty() || (text_[0] != a && text_[0] != b)) return false;
    text_.remove_prefix(1);
    return true;
  }
  bool Char(char a) { return Char(a, a); }
  // After '.': one or more digits; says whether any of them is not zero.
  bool Fraction(bool* nonzero) {
    size_t n = 0;
    *nonzero = false;
    while (n < text_.size() && text_[n] >= '0' && text_[n] <= '9') {
      *nonzero = *nonzero || text_[n] != '0';
      ++n;
    }
    text_.remove_prefix(n);
    return n > 0;
  }
  bool Done() const { return text_.empty(); }

 private:
  std::string_view text_;
};

}  // namespace

int64_t DayStart(int64_t unix_seconds) {
  int64_t rem = unix_seconds % kDaySeconds;
  return unix_seconds - (rem < 0 ? rem + kDaySeconds : rem);
}

std::optional<int64_t> ParseRfc3339(std::string_view text, bool round_up) {
  Cursor in(text);
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (!in.Digits(4, &y) || !in.Char('-') || !in.Digits(2, &mo) || !in.Char('-') ||
      !in.Digits(2, &d) || !in.Char('T', 't') || !in.Digits(2, &h) || !in.Char(':') ||
      !in.Digits(2, &mi) || !in.Char(':') || !in.Digits(2, &s)) {
    return std::nullopt;
  }
  bool fraction = false;
  if (in.Char('.') && !in.Fraction(&fraction)) return std::nullopt;
  int offset_seconds = 0;
  if (!in.Char('Z', 'z')) {
    int sign = in.Char('+') ? 1 : in.Char('-') ? -1 : 0;
    int oh = 0, om = 0;
    if (sign == 0 || !in.Digits(2, &oh) || !in.Char(':') || !in.Digits(2, &om) || oh > 23 ||
        om > 59) {
      return std::nullopt;
    }
    offset_seconds = sign * (oh * 3600 + om * 60);
  }
  if (!in.Done()) return std::nullopt;
  // Leap seconds (:60) are refused: Unix time has no name for them.
  const year_month_day date{year(y), month(static_cast<unsigned>(mo)),
                            day(static_cast<unsigned>(d))};
  if (!date.ok() || h > 23 || mi > 59 || s > 59) return std::nullopt;
  const int64_t days = std::chrono::sys_days(date).time_since_epoch().count();
  int64_t seconds = days * kDaySeconds + int64_t{h} * 3600 + int64_t{mi} * 60 + s - offset_seconds;
  if (fraction && round_up) ++seconds;
  // An offset (or rounding up) can leave the years 0000-9999, which the answer could not write.
  if (seconds < kFirstSecond || seconds > kLastSecond) return std::nullopt;
  return seconds;
}

std::string FormatRfc3339(int64_t unix_seconds) {
  const int64_t day_start = DayStart(unix_seconds);
  const year_month_day date{std::chrono::sys_days(std::chrono::days(day_start / kDaySeconds))};
  const int64_t in_day = unix_seconds - day_start;
  char out[32];
  std::snprintf(out, sizeof(out), "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                static_cast<int>(in_day / 3600), static_cast<int>(in_day % 3600 / 60),
                static_cast<int>(in_day % 60));
  return out;
}

}  // namespace trl
