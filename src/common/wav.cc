#include "common/wav.h"

#include <algorithm>
#include <cstddef>

namespace trl {
namespace {

uint32_t LittleEndian32(std::string_view bytes, size_t at) {
  uint32_t value = 0;
  for (size_t i = 0; i < 4; ++i) {
    value |= uint32_t{static_cast<unsigned char>(bytes[at + i])} << (8 * i);
  }
  return value;
}

}  // namespace

int64_t WavSeconds(std::string_view file) {
  if (file.size() < 12 || file.substr(0, 4) != "RIFF" || file.substr(8, 4) != "WAVE") return 0;
  uint64_t byte_rate = 0;
  size_t at = 12;
  while (file.size() - at >= 8) {
    const std::string_view id = file.substr(at, 4);
    const uint64_t size = LittleEndian32(file, at + 4);
    const size_t body = at + 8;
    const uint64_t present = file.size() - body;
    if (id == "fmt " && size >= 16 && present >= 16) byte_rate = LittleEndian32(file, body + 8);
    if (id == "data") {
      if (byte_rate == 0) return 0;
      const uint64_t bytes = std::min(size, present);
      return static_cast<int64_t>((bytes + byte_rate - 1) / byte_rate);
    }
    const uint64_t next = body + size + (size & 1);  // chunks are padded to even sizes
    if (next > file.size()) return 0;
    at = static_cast<size_t>(next);
  }
  return 0;
}

}  // namespace trl
