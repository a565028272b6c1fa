// Redis Cluster's key space: which of the 16384 slots a key lives in (CRC16 of its hash tag),
// the slot map as CLUSTER SLOTS reports it, and the MOVED / ASK redirections.
//
// Thread-safety: pure functions.
#pragma once

#include <hiredis/hiredis.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace trl::redis {

inline constexpr int kSlotCount = 16384;

// The slot of `key`: CRC16 (XMODEM) of its hash tag (the text between the first '{' and the
// next '}', if not empty), else of the whole key; modulo 16384.
uint16_t KeySlot(std::string_view key);

struct SlotRange {
  uint16_t first = 0;
  uint16_t last = 0;  // inclusive
  std::string host;
  uint16_t port = 0;
};

// Parses a CLUSTER SLOTS reply (masters only). A master with an empty host is reachable on
// `queried_host`, the host the command was sent to. Returns nullopt on a malformed reply.
std::optional<std::vector<SlotRange>> ParseClusterSlots(const redisReply& reply,
                                                        std::string_view queried_host);

// "MOVED 3999 127.0.0.1:6381" / "ASK 3999 127.0.0.1:6381".
struct Redirect {
  bool ask = false;  // ASK: this command only, after ASKING; MOVED: the slot has moved
  uint16_t slot = 0;
  std::string host;
  uint16_t port = 0;
};
std::optional<Redirect> ParseRedirect(const redisReply& reply);

}  // namespace trl::redis
