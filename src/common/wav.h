// The duration of a WAV (RIFF/WAVE) file from its header, without decoding it: what a
// transcription's audio costs (docs/limits.md). Pure and thread-safe.
#pragma once

#include <cstdint>
#include <string_view>

namespace trl {

// Seconds of audio in a WAV file: the data chunk's size (or the bytes present, when fewer)
// divided by the fmt chunk's byte rate, rounded up; 0 when `file` is not a RIFF/WAVE file with
// a fmt chunk (byte rate > 0) before its data chunk.
int64_t WavSeconds(std::string_view file);

}  // namespace trl
