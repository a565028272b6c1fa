#include "mock/mock_transcription.h"

#include <gtest/gtest.h>

#include <string>

#include "common/wav_for_test.h"
#include "mock/mock_call_for_test.h"
#include "mock/mock_tokenize.h"

namespace trl {
namespace {

class MockTranscriptionAnswerTest : public ::testing::Test {
 protected:
  static std::string Form(const std::string& audio, const std::string& extra = "") {
    return "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
           "Content-Type: audio/wav\r\n\r\n" +
           audio + "\r\n--B\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nmock-model" +
           "\r\n" + extra + "--B--\r\n";
  }
  static std::string Field(const std::string& name, const std::string& value) {
    return "--B\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value + "\r\n";
  }
  MockResult Call(std::string body,
                  std::string_view content_type = "multipart/form-data; boundary=B",
                  MockUsageReport report = MockUsageReport::kValid) {
    MockCall call{body, content_type, options_, vocabulary_, 1, 0, report};
    return AnswerTranscription(call);
  }
  MockReply MustAnswer(std::string body, MockUsageReport report = MockUsageReport::kValid) {
    return ReplyOf(Call(std::move(body), "multipart/form-data; boundary=B", report));
  }
  MockError MustFail(std::string body,
                     std::string_view content_type = "multipart/form-data; boundary=B") {
    return ErrorOf(Call(std::move(body), content_type), "an upload");
  }

  MockOptions options_;
  MockVocabulary vocabulary_;
};

TEST_F(MockTranscriptionAnswerTest, AnswersEachFormat) {
  const std::string wav = Wav(16000, 32000, 32000);  // 32056 bytes, 2 s
  MockReply json = MustAnswer(Form(wav));
  EXPECT_EQ(json.body,
            R"({"text":"transcript of 32056 bytes","usage":{"type":"duration","seconds":2}})");
  EXPECT_EQ(json.content_type, "application/json");
  EXPECT_EQ(json.model, "mock-model");
  MockReply text = MustAnswer(Form(wav, Field("response_format", "text")));
  EXPECT_EQ(text.body, "transcript of 32056 bytes");
  EXPECT_EQ(text.content_type, "text/plain; charset=utf-8");
  MockReply verbose =
      MustAnswer(Form("abc", Field("response_format", "verbose_json") + Field("language", "fr")));
  EXPECT_EQ(verbose.body,
            R"({"task":"transcribe","language":"fr","duration":0,"text":"transcript of 3 bytes",)"
            R"("segments":[{"id":0,"seek":0,"start":0.0,"end":0,"text":"transcript of 3 bytes",)"
            R"("tokens":[],"temperature":0.0,"avg_logprob":0.0,"compression_ratio":1.0,)"
            R"("no_speech_prob":0.0}],"usage":{"type":"duration","seconds":0}})");
  EXPECT_EQ(MustAnswer(Form("abc"), MockUsageReport::kNone).body,
            R"({"text":"transcript of 3 bytes"})");
}

TEST_F(MockTranscriptionAnswerTest, RefusesBadUploads) {
  EXPECT_EQ(MustFail(Form("abc"), "application/json").status, 400);
  EXPECT_EQ(MustFail(Form("abc"), "multipart/form-data").status, 400);
  EXPECT_EQ(MustFail(Form("abc").substr(0, 60)).message, "truncated multipart part");
  EXPECT_EQ(MustFail(Form("abc", Field("model", "mock-model"))).message,
            "duplicate multipart field 'model'");
  EXPECT_EQ(MustFail(Field("model", "mock-model") + "--B--").param, "file");
  EXPECT_EQ(MustFail(Form("abc", Field("response_format", "srt"))).param, "response_format");
  EXPECT_EQ(MustFail(Form("abc", Field("stream", "true"))).param, "stream");
  MockError unknown = MustFail(Field("model", "nope") + Field("file", "x") + "--B--");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(MustFail(Field("file", "x") + "--B--").param, "model");
}

}  // namespace
}  // namespace trl
