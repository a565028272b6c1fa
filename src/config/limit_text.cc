#include "config/limit_text.h"

namespace trl {

std::string_view LimitKindName(LimitKind kind) {
  switch (kind) {
    case LimitKind::kTokens:
      return "tokens";
    case LimitKind::kRequests:
      return "requests";
    case LimitKind::kConcurrent:
      return "concurrent";
  }
  return "?";
}

std::optional<LimitKind> ParseLimitKind(std::string_view name) {
  for (LimitKind kind : {LimitKind::kTokens, LimitKind::kRequests, LimitKind::kConcurrent}) {
    if (name == LimitKindName(kind)) return kind;
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
