#include "mock/mock_transcription.h"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <string>
#include <variant>
#include <vector>

#include "common/multipart.h"
#include "common/wav.h"
#include "mock/mock_json.h"

namespace trl {
namespace {

// The text of an optional plain field, or `fallback`.
std::string_view Field(const std::vector<MultipartPart>& parts, std::string_view name,
                       std::string_view fallback) {
  const MultipartPart* part = FindPart(parts, name);
  return part == nullptr ? fallback : part->data;
}

void AppendTranscriptionUsage(std::string& out, int64_t seconds, MockUsageReport report) {
  if (report == MockUsageReport::kNone) return;
  fmt::format_to(std::back_inserter(out), R"(,"usage":{{"type":"duration","seconds":{}}})",
                 seconds);
}

void AppendVerbose(std::string& out, std::string_view language, int64_t seconds,
                   std::string_view text) {
  out += R"({"task":"transcribe","language":)";
  AppendJsonString(out, language);
  fmt::format_to(std::back_inserter(out), R"(,"duration":{},"text":)", seconds);
  AppendJsonString(out, text);
  fmt::format_to(std::back_inserter(out),
                 R"(,"segments":[{{"id":0,"seek":0,"start":0.0,"end":{},"text":)", seconds);
  AppendJsonString(out, text);
  out += R"(,"tokens":[],"temperature":0.0,"avg_logprob":0.0,"compression_ratio":1.0,)";
  out += R"("no_speech_prob":0.0}])";
}

}  // namespace

MockResult AnswerTranscription(MockCall& call) {
  std::optional<std::string_view> boundary = MultipartBoundary(call.content_type);
  if (!boundary) {
    return BadRequest("the body must be multipart/form-data with a boundary");
  }
  auto parsed = ParseMultipart(call.body, *boundary);
  if (auto* why = std::get_if<std::string>(&parsed)) return BadRequest(*why);
  const auto& parts = std::get<std::vector<MultipartPart>>(parsed);
  MockReply reply;
  if (auto error = FindModel(Field(parts, "model", {}), call.options, reply.model)) return *error;
  const MultipartPart* file = FindPart(parts, "file");
  if (file == nullptr) return BadRequest("file is required", "file");
  const std::string_view format = Field(parts, "response_format", "json");
  if (format != "json" && format != "text" && format != "verbose_json") {
    return BadRequest("response_format must be json, text or verbose_json", "response_format");
  }
  const std::string_view stream = Field(parts, "stream", "false");
  if (stream != "false") return BadRequest("mock-llm does not stream transcriptions", "stream");
  const int64_t seconds = WavSeconds(file->data);
  const std::string text = fmt::format("transcript of {} bytes", file->data.size());
  if (format == "text") {
    reply.body = text;
    reply.content_type = "text/plain; charset=utf-8";
    return reply;
  }
  if (format == "verbose_json") {
    AppendVerbose(reply.body, Field(parts, "language", "en"), seconds, text);
  } else {
    reply.body = R"({"text":)";
    AppendJsonString(reply.body, text);
  }
  AppendTranscriptionUsage(reply.body, seconds, call.report);
  reply.body += '}';
  return reply;
}

}  // namespace trl
