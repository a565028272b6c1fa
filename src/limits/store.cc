#include "limits/store.h"

#include <functional>

namespace trl {
namespace {

void AppendEscaped(std::string_view text, std::string& out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char c : text) {
    if (c == '%' || c == '|' || c == '{' || c == '}') {
      out += '%';
      out += kHex[(static_cast<unsigned char>(c) >> 4) & 0xF];
      out += kHex[static_cast<unsigned char>(c) & 0xF];
    } else {
      out += c;
    }
  }
}

std::string_view KindName(LimitKind kind) {
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

// splitmix64's finalizer: spreads the bits of each field before they are combined.
uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

}  // namespace

std::string BucketRef::Id() const {
  std::string id;
  id.reserve(32 + scope_name.size() + model.size());
  id += scope == ScopeKind::kKey ? "k:" : "t:";
  AppendEscaped(scope_name, id);
  id += '|';
  id += KindName(kind);
  id += '|';
  id += std::to_string(period_micros);
  id += calendar ? "|c|" : "|r|";
  AppendEscaped(model, id);
  return id;
}

uint64_t BucketRef::Hash() const {
  uint64_t h = Mix(std::hash<std::string_view>{}(scope_name));
  h = Mix(h ^ std::hash<std::string_view>{}(model));
  h = Mix(h ^ static_cast<uint64_t>(period_micros));
  return Mix(h ^ (static_cast<uint64_t>(scope) << 8 | static_cast<uint64_t>(kind) << 1 |
                  static_cast<uint64_t>(calendar)));
}

}  // namespace trl
