#include "common/host_port.h"

#include <algorithm>
#include <charconv>

namespace trl {
namespace {

bool IsHostChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.' || c == '%' || c == '~';
}

// 1 to 5 digits, at most 65535.
std::optional<uint16_t> ParsePort(std::string_view text) {
  if (text.empty() || text.size() > 5 ||
      text.find_first_not_of("0123456789") != std::string_view::npos) {
    return std::nullopt;
  }
  uint32_t value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  if (value > 65535) return std::nullopt;
  return static_cast<uint16_t>(value);
}

}  // namespace

std::optional<HostPort> ParseHostPort(std::string_view text, std::optional<uint16_t> default_port) {
  HostPort hp;
  std::string_view rest;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close == 1) return std::nullopt;
    const std::string_view v6 = text.substr(1, close - 1);
    if (v6.find_first_not_of("0123456789abcdefABCDEF:.%") != std::string_view::npos) {
      return std::nullopt;
    }
    hp.host = std::string(v6);
    rest = text.substr(close + 1);
  } else {
    const size_t colon = text.find(':');
    const std::string_view host = text.substr(0, colon);
    if (host.empty() || !std::all_of(host.begin(), host.end(), IsHostChar)) return std::nullopt;
    hp.host = std::string(host);
    rest = colon == std::string_view::npos ? std::string_view() : text.substr(colon);
  }
  if (rest.empty()) {
    if (!default_port) return std::nullopt;
    hp.port = *default_port;
    return hp;
  }
  if (rest.front() != ':') return std::nullopt;
  const std::optional<uint16_t> port = ParsePort(rest.substr(1));
  if (!port) return std::nullopt;
  hp.port = *port;
  return hp;
}

std::optional<HostPort> SplitHostPort(std::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view host = text.substr(0, colon);
  const std::string_view digits = text.substr(colon + 1);
  uint16_t port = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) {
    return std::nullopt;
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  // A bracket left is no host, and FormatHostPort would not write it back as it was.
  if (host.empty() || host.find_first_of("[]") != std::string_view::npos) return std::nullopt;
  return HostPort{std::string(host), port};
}

std::string FormatHostPort(std::string_view host, uint16_t port) {
  std::string out;
  const bool v6 = host.find(':') != std::string_view::npos;
  if (v6) out += '[';
  out += host;
  if (v6) out += ']';
  out += ':';
  out += std::to_string(port);
  return out;
}

bool StartsWithNoCase(std::string_view text, std::string_view lower_prefix) {
  if (text.size() < lower_prefix.size()) return false;
  for (size_t i = 0; i < lower_prefix.size(); ++i) {
    char c = text[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower_prefix[i]) return false;
  }
  return true;
}

}  // namespace trl
