#include "redis/redis_url.h"

#include <charconv>

namespace trl::redis {
namespace {

bool StartsWithNoCase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = text[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> PercentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    int hi = i + 1 < text.size() ? HexValue(text[i + 1]) : -1;
    int lo = i + 2 < text.size() ? HexValue(text[i + 2]) : -1;
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

template <typename Int>
bool ParseInt(std::string_view text, Int& out) {
  if (text.empty()) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

}  // namespace

std::string RedisUrl::Address() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return h + ":" + std::to_string(port);
}

std::string RedisUrl::Redacted() const {
  std::string out = tls ? "rediss://" : "redis://";
  if (!user.empty() || !password.empty()) {
    out += user;
    if (!password.empty()) out += ":***";
    out += '@';
  }
  out += Address();
  out += '/';
  out += std::to_string(db);
  return out;
}

std::optional<std::pair<std::string, uint16_t>> SplitHostPort(std::string_view text) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  std::string_view host = text.substr(0, colon);
  uint16_t port = 0;
  if (!ParseInt(text.substr(colon + 1), port) || port == 0) return std::nullopt;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) return std::nullopt;
  return std::pair<std::string, uint16_t>(std::string(host), port);
}

std::optional<RedisUrl> ParseRedisUrl(std::string_view url, std::string* error) {
  auto fail = [&](std::string why) -> std::optional<RedisUrl> {
    if (error) *error = std::move(why);
    return std::nullopt;
  };
  RedisUrl out;
  std::string_view rest;
  if (StartsWithNoCase(url, "redis://")) {
    rest = url.substr(8);
  } else if (StartsWithNoCase(url, "rediss://")) {
    rest = url.substr(9);
    out.tls = true;
  } else {
    return fail("not a Redis URL (expected redis:// or rediss://)");
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
  size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    size_t colon = userinfo.find(':');
    auto user = PercentDecode(userinfo.substr(0, colon));
    std::optional<std::string> password = colon == std::string_view::npos
                                              ? std::optional<std::string>("")
                                              : PercentDecode(userinfo.substr(colon + 1));
    if (!user || !password) return fail("bad percent-encoding in the user or password");
    out.user = std::move(*user);
    out.password = std::move(*password);
    // redis://:password@host is the classic form; redis://password@host is not standard, but a
    // user with no password cannot log in either, so treat a lone user as the password.
    if (colon == std::string_view::npos) std::swap(out.user, out.password);
  }
  if (authority.empty()) return fail("no host");
  std::string_view host = authority;
  if (authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return fail("unclosed '[' in the host");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':' || !ParseInt(after.substr(1), out.port) || out.port == 0) {
        return fail("bad port");
      }
    }
  } else {
    size_t colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      if (!ParseInt(authority.substr(colon + 1), out.port) || out.port == 0) {
        return fail("bad port");
      }
    }
  }
  if (host.empty()) return fail("no host");
  out.host = std::string(host);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  if (!path.empty() && (!ParseInt(path, out.db) || out.db < 0)) {
    return fail("the path must be a database number");
  }
  return out;
}

}  // namespace trl::redis
