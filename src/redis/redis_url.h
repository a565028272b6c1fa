// Redis connection URLs: redis://[user:password@]host[:port][/db] and rediss://... (TLS).
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace trl::redis {

struct RedisUrl {
  bool tls = false;  // rediss://
  std::string host;  // name or literal address (IPv6 without brackets)
  uint16_t port = 6379;
  std::string user;      // "" with a password: AUTH <password> (the default user)
  std::string password;  // "" = no AUTH
  int db = 0;

  // host:port, as Redis Cluster names nodes ("[::1]:7000" for IPv6).
  std::string Address() const;
  // The URL without its password, for logs.
  std::string Redacted() const;
};

// Parses a URL; user and password are percent-decoded. Returns nullopt and sets *error (the
// reason, without the password) on failure.
std::optional<RedisUrl> ParseRedisUrl(std::string_view url, std::string* error);

// Splits "host:port" (as in MOVED replies and CLUSTER SLOTS); IPv6 hosts may be bracketed or
// not ("::1:7000": the port is after the last colon).
std::optional<std::pair<std::string, uint16_t>> SplitHostPort(std::string_view text);

}  // namespace trl::redis
