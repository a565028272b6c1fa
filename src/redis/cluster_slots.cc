#include "redis/cluster_slots.h"

#include <array>
#include <charconv>

#include "common/host_port.h"
#include "redis/resp.h"

namespace trl::redis {
namespace {

constexpr std::array<uint16_t, 256> MakeCrcTable() {
  std::array<uint16_t, 256> table{};
  for (int i = 0; i < 256; ++i) {
    uint16_t crc = static_cast<uint16_t>(i << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                           : static_cast<uint16_t>(crc << 1);
    }
    table[i] = crc;
  }
  return table;
}

constexpr std::array<uint16_t, 256> kCrcTable = MakeCrcTable();

uint16_t Crc16(std::string_view data) {
  uint16_t crc = 0;
  for (unsigned char c : data) {
    crc = static_cast<uint16_t>((crc << 8) ^ kCrcTable[((crc >> 8) ^ c) & 0xFF]);
  }
  return crc;
}

}  // namespace

uint16_t KeySlot(std::string_view key) {
  size_t open = key.find('{');
  if (open != std::string_view::npos) {
    size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return Crc16(key) & (kSlotCount - 1);
}

std::optional<std::vector<SlotRange>> ParseClusterSlots(const redisReply& reply,
                                                        std::string_view queried_host) {
  if (reply.type != REDIS_REPLY_ARRAY) return std::nullopt;
  std::vector<SlotRange> ranges;
  for (size_t i = 0; i < reply.elements; ++i) {
    const redisReply* entry = reply.element[i];
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 3) return std::nullopt;
    const redisReply* first = entry->element[0];
    const redisReply* last = entry->element[1];
    const redisReply* master = entry->element[2];
    if (first->type != REDIS_REPLY_INTEGER || last->type != REDIS_REPLY_INTEGER ||
        master->type != REDIS_REPLY_ARRAY || master->elements < 2 ||
        master->element[0]->type != REDIS_REPLY_STRING ||
        master->element[1]->type != REDIS_REPLY_INTEGER) {
      return std::nullopt;
    }
    if (first->integer < 0 || last->integer >= kSlotCount || first->integer > last->integer ||
        master->element[1]->integer <= 0 || master->element[1]->integer > 65535) {
      return std::nullopt;
    }
    SlotRange range;
    range.first = static_cast<uint16_t>(first->integer);
    range.last = static_cast<uint16_t>(last->integer);
    range.host = std::string(ReplyText(*master->element[0]));
    if (range.host.empty() || range.host == "?") range.host = std::string(queried_host);
    range.port = static_cast<uint16_t>(master->element[1]->integer);
    ranges.push_back(std::move(range));
  }
  return ranges;
}

std::optional<Redirect> ParseRedirect(const redisReply& reply) {
  if (reply.type != REDIS_REPLY_ERROR) return std::nullopt;
  std::string_view text = ReplyText(reply);
  Redirect r;
  if (text.starts_with("MOVED ")) {
    text.remove_prefix(6);
  } else if (text.starts_with("ASK ")) {
    r.ask = true;
    text.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  size_t space = text.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  int slot = -1;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + space, slot);
  if (ec != std::errc() || ptr != text.data() + space || slot < 0 || slot >= kSlotCount) {
    return std::nullopt;
  }
  r.slot = static_cast<uint16_t>(slot);
  std::optional<HostPort> hp = SplitHostPort(text.substr(space + 1));
  if (!hp || hp->port == 0) return std::nullopt;
  r.host = std::move(hp->host);
  r.port = hp->port;
  return r;
}

}  // namespace trl::redis
