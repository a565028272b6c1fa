// Redis connection URLs: redis://[user:password@]host[:port][/db] and rediss://... (TLS). One
// parser for the config's validation and the Redis client's connections, so that a URL the
// config accepts is one the client can use.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace trl {

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

// Parses a URL: the scheme in any case; user and password percent-decoded; the host and port as
// common/host_port.h's ParseHostPort reads them (an IPv6 host in brackets), the port not 0; the
// database 0 to 99999. Returns nullopt and sets *error (the reason, without the password) on
// failure.
std::optional<RedisUrl> ParseRedisUrl(std::string_view url, std::string* error);

}  // namespace trl
