#include "proxy/transcription_fields.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "common/wav_for_test.h"

namespace trl {
namespace {

constexpr std::string_view kType = "multipart/form-data; boundary=XyZ";

// A form of (name, value) fields; a field named "file" is sent as a file.
std::string Form(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string body;
  for (const auto& [name, value] : fields) {
    body += "--XyZ\r\nContent-Disposition: form-data; name=\"" + name + "\"";
    if (name == "file") body += "; filename=\"a.wav\"\r\nContent-Type: audio/wav";
    body += "\r\n\r\n" + value + "\r\n";
  }
  return body + "--XyZ--\r\n";
}

TEST(TranscriptionFields, ReadsTheModelThePromptAndTheAudiosDuration) {
  const std::string body =
      Form({{"file", Wav(16000, 48000, 48000)}, {"model", "whisper"}, {"prompt", "Names: Ada"}});
  RequestFields f;
  auto err = ExtractTranscriptionFields(kType, body, f);
  ASSERT_FALSE(err) << err->message;
  EXPECT_EQ(f.model, "whisper");
  EXPECT_EQ(body.substr(f.model_span.offset, f.model_span.length), "whisper");
  EXPECT_EQ(f.audio_seconds, 3);
  EXPECT_EQ(std::vector<std::string>(f.texts.begin(), f.texts.end()),
            (std::vector<std::string>{"Names: Ada"}));
  EXPECT_FALSE(f.stream);
}

// Not WAV: its size at 2000 bytes a second, rounded up.
TEST(TranscriptionFields, OtherAudioIsTakenToLastItsSizeAtALowBitrate) {
  RequestFields f;
  ASSERT_FALSE(ExtractTranscriptionFields(
      kType, Form({{"model", "w"}, {"file", std::string(4001, 'x')}, {"stream", "false"}}), f));
  EXPECT_EQ(f.audio_seconds, 3);
}

TEST(TranscriptionFields, RefusesWhatTheBackendWouldReadOtherwise) {
  const std::pair<std::string, std::string> cases[] = {
      {Form({{"file", "x"}}), "model"},
      {Form({{"model", "w"}}), "file"},
      {Form({{"model", "w"}, {"file", "x"}, {"stream", "true"}}), "stream"},
      {Form({{"model", "w"}, {"model", "v"}, {"file", "x"}}), ""},
      {Form({{"model", "w"}, {"file", "x"}}).substr(0, 40), ""},
  };
  for (const auto& [body, param] : cases) {
    RequestFields f;
    auto err = ExtractTranscriptionFields(kType, body, f);
    ASSERT_TRUE(err) << body;
    EXPECT_EQ(err->param, param) << body;
  }
  RequestFields f;
  auto json = ExtractTranscriptionFields("application/json", R"({"model":"w"})", f);
  ASSERT_TRUE(json);
  EXPECT_NE(json->message.find("multipart/form-data"), std::string::npos);
}

}  // namespace
}  // namespace trl
