// Step "parse" for POST /v1/audio/transcriptions: the multipart/form-data upload a speech-to-text
// model reads (OpenAI's and vLLM's shape). Only the form's fields are read, never the audio:
// its duration comes from a WAV header, else from its size at a low bitrate (docs/limits.md).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "proxy/request_fields.h"

namespace trl {

// The fewest bytes a second of compressed speech takes (16 kbit/s): an audio file that is not
// WAV is taken to last its size over this, which errs long for the usual codecs and bitrates.
inline constexpr int64_t kAudioBytesPerSecondFloor = 2000;

// Reads the upload: `model` (required; model_span is its value's bytes, unquoted), `file`
// (required; audio_seconds from its WAV header or its size), `prompt` (counted as text);
// `stream: true` is refused (streamed transcriptions are not relayed yet). A body that is not a
// well-formed form (Content-Type without a boundary, a truncated part, a field sent twice) is
// refused, as the backend would read it otherwise than the gateway. Thread-safe.
std::optional<FieldError> ExtractTranscriptionFields(std::string_view content_type,
                                                     const std::string& body, RequestFields& out);

}  // namespace trl
