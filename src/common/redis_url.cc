#include "common/redis_url.h"

#include <charconv>
#include <utility>

#include "common/host_port.h"
#include "common/percent_encoding.h"

namespace trl {
namespace {

// "user:password", "password" or ":password", percent-encoded, into `out`. A lone user is
// taken as the password: redis://:password@host is the classic form, and redis://password@host
// is not standard, but a user with no password cannot log in either.
bool ParseUserInfo(std::string_view userinfo, RedisUrl& out) {
  const size_t colon = userinfo.find(':');
  std::optional<std::string> user = PercentDecode(userinfo.substr(0, colon));
  std::optional<std::string> password = colon == std::string_view::npos
                                            ? std::optional<std::string>("")
                                            : PercentDecode(userinfo.substr(colon + 1));
  if (!user || !password) return false;
  out.user = std::move(*user);
  out.password = std::move(*password);
  if (colon == std::string_view::npos) std::swap(out.user, out.password);
  return true;
}

// "" (db 0) or 1 to 5 digits.
bool ParseDb(std::string_view path, int& db) {
  if (path.empty()) return true;
  if (path.size() > 5 || path.find_first_not_of("0123456789") != std::string_view::npos) {
    return false;
  }
  std::from_chars(path.data(), path.data() + path.size(), db);
  return true;
}

}  // namespace

std::string RedisUrl::Address() const { return FormatHostPort(host, port); }

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
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  const std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
    if (!ParseUserInfo(authority.substr(0, at), out)) {
      return fail("bad percent-encoding in the user or password");
    }
    authority = authority.substr(at + 1);
  }
  if (authority.empty()) return fail("no host");
  const std::optional<HostPort> host_port = ParseHostPort(authority, uint16_t{6379});
  if (!host_port || host_port->port == 0) {
    // Name the part at fault: a host that reads well without what follows its last ':'.
    const size_t colon = authority.rfind(':');
    const bool host_ok =
        colon != std::string_view::npos && ParseHostPort(authority.substr(0, colon), uint16_t{1});
    return fail(host_ok ? "bad port" : "bad host");
  }
  out.host = host_port->host;
  out.port = host_port->port;
  if (!ParseDb(path, out.db)) return fail("the path must be a database number");
  return out;
}

}  // namespace trl
