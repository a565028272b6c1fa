#include "proxy/transcription_fields.h"

#include <variant>
#include <vector>

#include "common/multipart.h"
#include "common/saturating.h"
#include "common/wav.h"

namespace trl {
namespace {

// The seconds an upload of `file` is charged before the backend says: its WAV duration, else
// its size at kAudioBytesPerSecondFloor, rounded up.
int64_t EstimatedSeconds(std::string_view file) {
  const int64_t wav = WavSeconds(file);
  if (wav > 0) return wav;
  const auto size = static_cast<int64_t>(file.size());
  return (size + kAudioBytesPerSecondFloor - 1) / kAudioBytesPerSecondFloor;
}

}  // namespace

std::optional<FieldError> ExtractTranscriptionFields(std::string_view content_type,
                                                     const std::string& body, RequestFields& out) {
  out = RequestFields{};
  const std::optional<std::string_view> boundary = MultipartBoundary(content_type);
  if (!boundary) {
    return FieldError{"",
                      "Send the audio as multipart/form-data (a file field and a model "
                      "field), with the boundary in Content-Type."};
  }
  auto parsed = ParseMultipart(body, *boundary);
  if (auto* why = std::get_if<std::string>(&parsed)) {
    return FieldError{"", "The form is not well-formed: " + *why + "."};
  }
  const auto& parts = std::get<std::vector<MultipartPart>>(parsed);
  const MultipartPart* model = FindPart(parts, "model");
  if (model == nullptr) {
    return FieldError{"model",
                      "'model' is required: name the model to use (GET /v1/models lists them)."};
  }
  out.model = std::string(model->data);
  out.model_span = {static_cast<size_t>(model->data.data() - body.data()), model->data.size()};
  const MultipartPart* file = FindPart(parts, "file");
  if (file == nullptr) return FieldError{"file", "'file' is required: the audio to transcribe."};
  out.audio_seconds = EstimatedSeconds(file->data);
  if (const MultipartPart* stream = FindPart(parts, "stream");
      stream != nullptr && stream->data != "false") {
    return FieldError{"stream",
                      "Streamed transcriptions are not supported by this gateway; send the "
                      "request without 'stream' (or with stream=false)."};
  }
  if (const MultipartPart* prompt = FindPart(parts, "prompt")) out.texts.push_back(prompt->data);
  return std::nullopt;
}

}  // namespace trl
