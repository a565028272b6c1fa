#include "proxy/trace_context.h"

#include <algorithm>

namespace trl {
namespace {

bool LowerHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool AllZeros(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == '0'; });
}

}  // namespace

std::string_view TraceIdOf(std::string_view v) {
  constexpr size_t kLength = 55;  // 2 + 1 + 32 + 1 + 16 + 1 + 2
  if (v.size() < kLength || v[2] != '-' || v[35] != '-' || v[52] != '-') return {};
  const std::string_view version = v.substr(0, 2), trace_id = v.substr(3, 32),
                         parent_id = v.substr(36, 16), flags = v.substr(53, 2);
  if (!LowerHex(version) || !LowerHex(trace_id) || !LowerHex(parent_id) || !LowerHex(flags)) {
    return {};
  }
  if (version == "ff" || AllZeros(trace_id) || AllZeros(parent_id)) return {};
  if (v.size() > kLength && (version == "00" || v[kLength] != '-')) return {};
  return trace_id;
}

}  // namespace trl
