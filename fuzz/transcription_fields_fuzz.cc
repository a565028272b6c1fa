// Step "parse" of a transcription upload on hostile bodies: ExtractTranscriptionFields
// (proxy/transcription_fields.h: the multipart form, common/multipart.h; the audio's duration,
// common/wav.h) and the rewrite of its model field (proxy/forward_body.h). The body is the
// input, with boundary "B".
//
// A form the gateway accepts must, once its model is rewritten, still be accepted and read back
// alike: the canonical model, the same seconds of audio and the same prompt. Otherwise the
// backend would serve something else than what was accounted for.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.h"
#include "proxy/forward_body.h"
#include "proxy/transcription_fields.h"

namespace {

constexpr std::string_view kType = "multipart/form-data; boundary=B";
constexpr std::string_view kCanonicalModel = "canonical/whisper";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string body(reinterpret_cast<const char*>(data), size);
  trl::RequestFields fields;
  if (trl::ExtractTranscriptionFields(kType, body, fields)) return 0;
  TRL_FUZZ_CHECK(fields.audio_seconds >= 0);
  const std::string prompt = fields.texts.empty() ? "" : std::string(fields.texts[0]);
  trl::RewriteForwardBody(trl::ApiEndpoint::kTranscriptions, fields, kCanonicalModel, 1024, body);
  trl::RequestFields sent;
  // The canonical name may not fit every form (one that ends its model field with the
  // boundary's text): refused then, never read otherwise.
  if (trl::ExtractTranscriptionFields(kType, body, sent)) return 0;
  TRL_FUZZ_CHECK(sent.model == kCanonicalModel);
  TRL_FUZZ_CHECK(sent.audio_seconds == fields.audio_seconds);
  TRL_FUZZ_CHECK(sent.texts.size() == fields.texts.size());
  TRL_FUZZ_CHECK(sent.texts.empty() || std::string(sent.texts[0]) == prompt);
  return 0;
}
