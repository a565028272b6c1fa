// POST /v1/audio/transcriptions, as vLLM serves it for a speech-to-text model (OpenAI's shape
// for duration-billed models), from a multipart/form-data upload (mock_multipart.h).
//
// Fields: file (required), model (required), language (default "en"), prompt (ignored),
// response_format: "json" (default) -> {"text":..,"usage":{"type":"duration","seconds":S}};
// "text" -> the text alone, text/plain; "verbose_json" -> {"task":"transcribe","language":..,
// "duration":S,"text":..,"segments":[one segment from 0 to S],"usage":{...}}. stream "true" is
// refused with a 400 (the mock does not stream transcriptions); temperature and others ignored.
// The text is "transcript of N bytes", N the file's size. S = MockWavSeconds(file). The
// no-usage fault leaves usage out. Waits --ttft.
//
// Bad input is a 400 in the mock's error shape: not multipart, no boundary, a malformed or
// truncated body, duplicate fields, a missing file or model; an unknown model is a 404.
#pragma once

#include <cstdint>
#include <string_view>

#include "mock/mock_api.h"

namespace trl {

// Seconds of audio in a WAV file: the data chunk's size (or the bytes present, when fewer)
// divided by the fmt chunk's byte rate, rounded up; 0 when `file` is not a RIFF/WAVE file with
// a fmt chunk (byte rate > 0) before its data chunk.
int64_t MockWavSeconds(std::string_view file);

MockResult AnswerTranscription(MockCall& call);

}  // namespace trl
