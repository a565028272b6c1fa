// A WAV file for tests (common/wav.h): a PCM header and silence.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace trl {

// A PCM WAV header: `byte_rate` bytes per second, a data chunk declaring `data_size` bytes,
// followed by `present` bytes of silence.
inline std::string Wav(uint32_t byte_rate, uint32_t data_size, size_t present) {
  const auto le32 = [](uint32_t v) {
    return std::string{static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16),
                       static_cast<char>(v >> 24)};
  };
  std::string wav = "RIFF" + le32(36 + data_size) + "WAVE";
  wav += "LIST" + le32(3) + "abc" + '\0';  // an odd-sized chunk, padded, before fmt
  wav += "fmt " + le32(16) + std::string("\x01\x00\x01\x00", 4) + le32(byte_rate / 2) +
         le32(byte_rate) + std::string("\x02\x00\x10\x00", 4);
  wav += "data" + le32(data_size) + std::string(present, '\0');
  return wav;
}

}  // namespace trl
