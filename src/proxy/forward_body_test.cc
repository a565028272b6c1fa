#include "proxy/forward_body.h"

#include <gtest/gtest.h>

#include "proxy/transcription_fields.h"

namespace trl {
namespace {

constexpr int64_t kMaxOutput = 1024;

// The body the backend would get for `body` sent to `endpoint`, with `canonical` as the model's
// name and kMaxOutput as its max_output_tokens.
std::string Forward(ApiEndpoint endpoint, std::string body, std::string_view canonical = "m") {
  RequestFields fields;
  auto err = ExtractRequestFields(endpoint, body, fields);
  EXPECT_FALSE(err) << body << ": " << err->message;
  const int64_t cap = ReservedCap(endpoint, fields, kMaxOutput);
  RewriteForwardBody(endpoint, fields, canonical, cap, body);
  return body;
}

std::string Chat(std::string body) { return Forward(ApiEndpoint::kChatCompletions, body); }

TEST(ForwardBody, CommonRequestIsNotTouched) {
  std::string body =
      R"({"model":"m","max_tokens":10,"stream":true,"stream_options":{"include_usage":true},)"
      R"("messages":[{"role":"user","content":"hi"}]})";
  const std::string original = body;
  RequestFields fields;
  ASSERT_FALSE(ExtractRequestFields(ApiEndpoint::kChatCompletions, body, fields));
  const char* data = body.data();
  EXPECT_FALSE(RewriteForwardBody(ApiEndpoint::kChatCompletions, fields, "m",
                                  ReservedCap(ApiEndpoint::kChatCompletions, fields, kMaxOutput),
                                  body));
  EXPECT_EQ(body, original);
  EXPECT_EQ(body.data(), data);  // not copied
  // A cap equal to the ceiling, and max_completion_tokens alone, need nothing either.
  EXPECT_EQ(Chat(R"({"model":"m","max_completion_tokens":1024,"messages":[{"content":"x"}]})"),
            R"({"model":"m","max_completion_tokens":1024,"messages":[{"content":"x"}]})");
}

TEST(ForwardBody, AliasBecomesTheCanonicalName) {
  EXPECT_EQ(
      Forward(ApiEndpoint::kChatCompletions,
              R"({ "model" : "alias" , "max_tokens":5,"messages":[{"content":"x"}]})", "llama2-7b"),
      R"({ "model" : "llama2-7b" , "max_tokens":5,"messages":[{"content":"x"}]})");
  // Escaped in the body, the same alias once unescaped.
  EXPECT_EQ(
      Forward(ApiEndpoint::kChatCompletions,
              R"({"model":"al\u0069as","max_tokens":5,"messages":[{"content":"x"}]})", "c\"q"),
      R"({"model":"c\"q","max_tokens":5,"messages":[{"content":"x"}]})");
  // The canonical name, however escaped, is left as it is.
  EXPECT_EQ(Chat(R"({"model":"\u006d","max_tokens":5,"messages":[{"content":"x"}]})"),
            R"({"model":"\u006d","max_tokens":5,"messages":[{"content":"x"}]})");
}

TEST(ForwardBody, CapAboveTheCeilingIsClamped) {
  EXPECT_EQ(Chat("{\"model\":\"m\",\"max_tokens\" :  5000 \n,\"messages\":[{\"content\":\"x\"}]}"),
            "{\"model\":\"m\",\"max_tokens\" :  1024 \n,\"messages\":[{\"content\":\"x\"}]}");
  EXPECT_EQ(Chat(R"({"model":"m","max_completion_tokens":99999,"messages":[{"content":"x"}]})"),
            R"({"model":"m","max_completion_tokens":1024,"messages":[{"content":"x"}]})");
}

TEST(ForwardBody, BothCapFieldsGetTheReservedCap) {
  // vLLM reads max_completion_tokens first; another backend might read max_tokens: both say it.
  EXPECT_EQ(Chat(R"({"model":"m","max_tokens":10,"max_completion_tokens":20,)"
                 R"("messages":[{"content":"x"}]})"),
            R"({"model":"m","max_tokens":20,"max_completion_tokens":20,)"
            R"("messages":[{"content":"x"}]})");
  EXPECT_EQ(Chat(R"({"model":"m","max_tokens":3000,"max_completion_tokens":2000,)"
                 R"("messages":[{"content":"x"}]})"),
            R"({"model":"m","max_tokens":1024,"max_completion_tokens":1024,)"
            R"("messages":[{"content":"x"}]})");
}

TEST(ForwardBody, NullCapsGetTheReservedCap) {
  EXPECT_EQ(Chat(R"({"model":"m","max_tokens":null,"messages":[{"content":"x"}]})"),
            R"({"model":"m","max_tokens":1024,"messages":[{"content":"x"}]})");
  EXPECT_EQ(Chat(R"({"model":"m","max_tokens":null,"max_completion_tokens": null ,)"
                 R"("messages":[{"content":"x"}]})"),
            R"({"model":"m","max_tokens":1024,"max_completion_tokens": 1024 ,)"
            R"("messages":[{"content":"x"}]})");
  EXPECT_EQ(Chat(R"({"model":"m","max_tokens":7,"max_completion_tokens":null,)"
                 R"("messages":[{"content":"x"}]})"),
            R"({"model":"m","max_tokens":7,"max_completion_tokens":7,)"
            R"("messages":[{"content":"x"}]})");
}

TEST(ForwardBody, NoCapInsertsMaxTokens) {
  EXPECT_EQ(Chat(R"(  {"model":"m","messages":[{"content":"x"}]})"),
            R"(  {"max_tokens":1024,"model":"m","messages":[{"content":"x"}]})");
  EXPECT_EQ(Forward(ApiEndpoint::kCompletions, R"({ "prompt":"x","model":"m"})"),
            R"({"max_tokens":1024, "prompt":"x","model":"m"})");
}

TEST(ForwardBody, CompletionsAlwaysGetMaxTokens) {
  // A completions backend reads max_tokens only: max_completion_tokens alone would not cap it.
  EXPECT_EQ(Forward(ApiEndpoint::kCompletions,
                    R"({"model":"m","prompt":"x","max_completion_tokens":50})"),
            R"({"max_tokens":50,"model":"m","prompt":"x","max_completion_tokens":50})");
}

TEST(ForwardBody, StreamOptionsAbsentIsInserted) {
  EXPECT_EQ(Chat(R"({"model":"m","stream":true,"max_tokens":5,"messages":[{"content":"x"}]})"),
            R"({"stream_options":{"include_usage":true},"model":"m","stream":true,)"
            R"("max_tokens":5,"messages":[{"content":"x"}]})");
  // Together with the cap.
  EXPECT_EQ(Forward(ApiEndpoint::kCompletions, R"({"model":"m","stream":true,"prompt":"x"})"),
            R"({"max_tokens":1024,"stream_options":{"include_usage":true},"model":"m",)"
            R"("stream":true,"prompt":"x"})");
}

TEST(ForwardBody, StreamOptionsNullIsReplaced) {
  EXPECT_EQ(Chat(R"({"model":"m","stream":true,"stream_options": null ,"max_tokens":5,)"
                 R"("messages":[{"content":"x"}]})"),
            R"({"model":"m","stream":true,"stream_options": {"include_usage":true} ,)"
            R"("max_tokens":5,"messages":[{"content":"x"}]})");
}

TEST(ForwardBody, StreamOptionsObjectKeepsItsOtherMembers) {
  EXPECT_EQ(
      Chat(R"({"model":"m","stream":true,"max_tokens":5,"messages":[{"content":"x"}],)"
           R"("stream_options":{ "continuous_usage_stats" : true,"include_usage" : false }})"),
      R"({"model":"m","stream":true,"max_tokens":5,"messages":[{"content":"x"}],)"
      R"("stream_options":{ "continuous_usage_stats" : true,"include_usage" : true }})");
  EXPECT_EQ(Chat(R"({"model":"m","stream":true,"max_tokens":5,"messages":[{"content":"x"}],)"
                 R"("stream_options":{"include_usage":null}})"),
            R"({"model":"m","stream":true,"max_tokens":5,"messages":[{"content":"x"}],)"
            R"("stream_options":{"include_usage":true}})");
  EXPECT_EQ(Chat(R"({"model":"m","stream":true,"max_tokens":5,"messages":[{"content":"x"}],)"
                 R"("stream_options":{ "continuous_usage_stats":true }})"),
            R"({"model":"m","stream":true,"max_tokens":5,"messages":[{"content":"x"}],)"
            R"("stream_options":{"include_usage":true, "continuous_usage_stats":true }})");
  EXPECT_EQ(Chat(R"({"model":"m","stream":true,"max_tokens":5,"messages":[{"content":"x"}],)"
                 R"("stream_options":{ }})"),
            R"({"model":"m","stream":true,"max_tokens":5,"messages":[{"content":"x"}],)"
            R"("stream_options":{"include_usage":true }})");
  // An escaped key is the same key to the backend.
  EXPECT_EQ(Chat(R"({"model":"m","stream":true,"max_tokens":5,"messages":[{"content":"x"}],)"
                 R"("stream_options":{"include\u005fusage":false}})"),
            R"({"model":"m","stream":true,"max_tokens":5,"messages":[{"content":"x"}],)"
            R"("stream_options":{"include\u005fusage":true}})");
}

TEST(ForwardBody, NotStreamingLeavesStreamOptionsAlone) {
  EXPECT_EQ(Chat(R"({"model":"m","stream":false,"stream_options":{"include_usage":false},)"
                 R"("max_tokens":5,"messages":[{"content":"x"}]})"),
            R"({"model":"m","stream":false,"stream_options":{"include_usage":false},)"
            R"("max_tokens":5,"messages":[{"content":"x"}]})");
}

TEST(ForwardBody, EveryEditAtOnce) {
  EXPECT_EQ(Forward(ApiEndpoint::kChatCompletions,
                    R"({"max_completion_tokens":4096,"model":"a","stream":true,)"
                    R"("stream_options":{"include_usage":false},"max_tokens":null,)"
                    R"("messages":[{"content":"x"}]})",
                    "canonical"),
            R"({"max_completion_tokens":1024,"model":"canonical","stream":true,)"
            R"("stream_options":{"include_usage":true},"max_tokens":1024,)"
            R"("messages":[{"content":"x"}]})");
}

TEST(ForwardBody, EmbeddingsGetOnlyTheModel) {
  EXPECT_EQ(
      Forward(ApiEndpoint::kEmbeddings, R"({"model":"e5","input":"x","stream":true})", "e5-large"),
      R"({"model":"e5-large","input":"x","stream":true})");
}

TEST(ForwardBody, ReservedCapAndAllowance) {
  RequestFields fields;
  EXPECT_EQ(ReservedCap(ApiEndpoint::kChatCompletions, fields, 1024), 1024);
  EXPECT_EQ(ReservedCap(ApiEndpoint::kEmbeddings, fields, 1024), 0);
  fields.max_tokens = 10;
  EXPECT_EQ(ReservedCap(ApiEndpoint::kCompletions, fields, 1024), 10);
  fields.max_tokens = 5000;
  EXPECT_EQ(ReservedCap(ApiEndpoint::kChatCompletions, fields, 1024), 1024);
  fields.choices = 6;
  EXPECT_EQ(OutputAllowance(fields, 1024), 6 * 1024);
  fields.choices = 128 * 1'000'000;
  EXPECT_EQ(OutputAllowance(fields, 1'000'000'000'000'000), kMaxTokenCount);
}

// The Responses API's cap is max_output_tokens; its usage always comes with response.completed,
// so a stream gets no stream_options.
TEST(ForwardBody, ResponsesGetMaxOutputTokens) {
  EXPECT_EQ(Forward(ApiEndpoint::kResponses, R"({"model":"a","input":"x","stream":true})"),
            R"({"max_output_tokens":1024,"model":"m","input":"x","stream":true})");
  EXPECT_EQ(
      Forward(ApiEndpoint::kResponses, R"({"model":"m","input":"x","max_output_tokens":5000})"),
      R"({"model":"m","input":"x","max_output_tokens":1024})");
  EXPECT_EQ(
      Forward(ApiEndpoint::kResponses, R"({"model":"m","input":"x","max_output_tokens":null})"),
      R"({"model":"m","input":"x","max_output_tokens":1024})");
  EXPECT_EQ(Forward(ApiEndpoint::kResponses, R"({"model":"m","input":"x","max_output_tokens":10})"),
            R"({"model":"m","input":"x","max_output_tokens":10})");
}

// A transcription's model is a form field: the canonical name goes in as it is, unquoted, and
// nothing else is added (it names no cap).
TEST(ForwardBody, TranscriptionsGetTheCanonicalModelInTheirForm) {
  std::string body =
      "--B\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-alias\r\n"
      "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nxx\r\n--B--\r\n";
  RequestFields fields;
  ASSERT_FALSE(ExtractTranscriptionFields("multipart/form-data; boundary=B", body, fields));
  EXPECT_EQ(ReservedCap(ApiEndpoint::kTranscriptions, fields, kMaxOutput), kMaxOutput);
  EXPECT_TRUE(
      RewriteForwardBody(ApiEndpoint::kTranscriptions, fields, "whisper", kMaxOutput, body));
  EXPECT_EQ(body,
            "--B\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper\r\n"
            "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nxx\r\n"
            "--B--\r\n");
}

}  // namespace
}  // namespace trl
