// POST /v1/audio/transcriptions, as vLLM serves it for a speech-to-text model (OpenAI's shape
// for duration-billed models), from a multipart/form-data upload (common/multipart.h).
//
// Fields: file (required), model (required), language (default "en"), prompt (ignored),
// response_format: "json" (default) -> {"text":..,"usage":{"type":"duration","seconds":S}};
// "text" -> the text alone, text/plain; "verbose_json" -> {"task":"transcribe","language":..,
// "duration":S,"text":..,"segments":[one segment from 0 to S],"usage":{...}}. stream "true" is
// refused with a 400 (the mock does not stream transcriptions); temperature and others ignored.
// The text is "transcript of N bytes", N the file's size. S = WavSeconds(file) (common/wav.h). The
// no-usage fault leaves usage out. Waits --ttft.
//
// Bad input is a 400 in the mock's error shape: not multipart, no boundary, a malformed or
// truncated body, duplicate fields, a missing file or model; an unknown model is a 404.
#pragma once

#include <cstdint>
#include <string_view>

#include "mock/mock_api.h"

namespace trl {

MockResult AnswerTranscription(MockCall& call);

}  // namespace trl
