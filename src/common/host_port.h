// Endpoints as written in configs, URLs, command lines and Redis Cluster replies: "host:port".
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace trl {

struct HostPort {
  std::string host;   // literal address or name; "0.0.0.0", "127.0.0.1", "::1" (no brackets)
  uint16_t port = 0;  // 0 = any free port (the bound port is logged)
};

// The authority of a URL or a listen address: "host:port" or "[v6]:port"; the port may be left
// out when `default_port` is given. Hosts are names (A-Z a-z 0-9 _ - . % ~) or literal
// addresses; an unbracketed IPv6 address is ambiguous and refused. Ports are 0..65535.
std::optional<HostPort> ParseHostPort(std::string_view text,
                                      std::optional<uint16_t> default_port = std::nullopt);

// An endpoint as Redis Cluster reports one (MOVED, CLUSTER SLOTS) and as mock-llm's --listen
// takes it: the port after the last ':' (0..65535), the host before it, which may be an IPv6
// address with or without brackets ("::1:7000", "[::1]:7000"), never empty.
std::optional<HostPort> SplitHostPort(std::string_view text);

// "host:port", as Redis Cluster names nodes ("[::1]:7000" for an IPv6 host).
std::string FormatHostPort(std::string_view host, uint16_t port);

// Whether `text` starts with `lower_prefix` (lower-case), ignoring case: URL schemes.
bool StartsWithNoCase(std::string_view text, std::string_view lower_prefix);

}  // namespace trl
