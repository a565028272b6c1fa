#include "config/limit_text.h"

namespace trl {

namespace {

struct KindText {
  LimitKind kind;
  std::string_view name;   // the config's
  std::string_view label;  // the metrics'
};
constexpr KindText kKinds[] = {{LimitKind::kTokens, "tokens", "tokens"},
                               {LimitKind::kRequests, "requests", "requests"},
                               {LimitKind::kConcurrent, "concurrent", "concurrency"},
                               {LimitKind::kSpend, "spend", "spend"}};

const KindText& TextOf(LimitKind kind) {
  for (const KindText& text : kKinds) {
    if (text.kind == kind) return text;
  }
  return kKinds[0];
}

}  // namespace

std::string_view LimitKindName(LimitKind kind) { return TextOf(kind).name; }

std::string_view LimitKindLabel(LimitKind kind) { return TextOf(kind).label; }

std::optional<LimitKind> ParseLimitKind(std::string_view name) {
  for (const KindText& text : kKinds) {
    if (text.name == name) return text.kind;
  }
  return std::nullopt;
}

std::string FormatPeriod(std::chrono::milliseconds period) {
  struct Unit {
    int64_t ms;
    const char* suffix;
  };
  static constexpr Unit kUnits[] = {
      {86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1'000, "s"}};
  const int64_t ms = period.count();
  for (const Unit& unit : kUnits) {
    if (ms > 0 && ms % unit.ms == 0) return std::to_string(ms / unit.ms) + unit.suffix;
  }
  return std::to_string(ms) + "ms";
}

}  // namespace trl
