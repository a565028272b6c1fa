#include "mock/mock_api.h"

#include <gtest/gtest.h>

namespace trl {
namespace {

MockOptions Options() {
  MockOptions options;
  options.models = {"mock-model", "other"};
  options.max_output = 4;
  return options;
}

MockRequest MustParse(MockEndpoint endpoint, std::string body, const MockOptions& options) {
  auto parsed = ParseMockRequest(endpoint, body, options);
  if (auto* error = std::get_if<MockError>(&parsed)) {
    ADD_FAILURE() << "unexpected error: " << error->message;
    return {};
  }
  return std::get<MockRequest>(parsed);
}

MockError MustFail(MockEndpoint endpoint, std::string body) {
  MockOptions options = Options();
  auto parsed = ParseMockRequest(endpoint, body, options);
  if (!std::holds_alternative<MockError>(parsed)) {
    ADD_FAILURE() << "expected an error for " << body;
    return {};
  }
  return std::get<MockError>(parsed);
}

template <typename F>
std::string Build(F append) {
  std::string out;
  append(out);
  return out;
}

TEST(MockApiTest, CountsWords) {
  EXPECT_EQ(CountWords(""), 0);
  EXPECT_EQ(CountWords("   "), 0);
  EXPECT_EQ(CountWords("hi"), 1);
  EXPECT_EQ(CountWords("  hello\tbig \n world  "), 3);
}

TEST(MockApiTest, ChatUsageCountsEveryMessage) {
  MockOptions options = Options();
  MockRequest request = MustParse(MockEndpoint::kChat,
                                  R"({"messages":[{"role":"system","content":"be brief"},)"
                                  R"({"role":"user","content":[{"type":"text","text":"a b c"},)"
                                  R"({"type":"image_url","image_url":{"url":"x"}}]},)"
                                  R"({"role":"assistant","content":null}],"model":"other"})",
                                  options);
  EXPECT_EQ(request.model, "other");
  EXPECT_EQ(request.model.data(), options.models[1].data());
  EXPECT_EQ(request.prompt_tokens, 2 + 3 + 3 * kTokensPerMessage);
  EXPECT_EQ(request.max_tokens, -1);
  EXPECT_FALSE(request.stream);
}

TEST(MockApiTest, StreamFlagsAndMaxTokens) {
  MockOptions options = Options();
  MockRequest request = MustParse(
      MockEndpoint::kChat,
      R"({"model":"mock-model","messages":[{"role":"user","content":"hi"}],"stream":true,)"
      R"("stream_options":{"include_usage":true},"max_tokens":9,"max_completion_tokens":2})",
      options);
  EXPECT_TRUE(request.stream);
  EXPECT_TRUE(request.include_usage);
  EXPECT_EQ(request.max_tokens, 2);  // max_completion_tokens wins
}

TEST(MockApiTest, CompletionsAndEmbeddingsInputs) {
  MockOptions options = Options();
  EXPECT_EQ(
      MustParse(MockEndpoint::kCompletions, R"({"model":"mock-model","prompt":"one two"})", options)
          .prompt_tokens,
      2);
  EXPECT_EQ(MustParse(MockEndpoint::kCompletions,
                      R"({"model":"mock-model","prompt":["one two","three"]})", options)
                .prompt_tokens,
            3);
  MockRequest embeddings = MustParse(
      MockEndpoint::kEmbeddings, R"({"model":"mock-model","input":["a b","c","a b"]})", options);
  EXPECT_EQ(embeddings.prompt_tokens, 5);
  ASSERT_EQ(embeddings.input_hashes.size(), 3u);
  EXPECT_EQ(embeddings.input_hashes[0], embeddings.input_hashes[2]);
  EXPECT_NE(embeddings.input_hashes[0], embeddings.input_hashes[1]);
}

TEST(MockApiTest, Errors) {
  MockError unknown =
      MustFail(MockEndpoint::kChat, R"({"model":"gpt-9","messages":[{"content":"x"}]})");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(Build([&](std::string& out) { AppendErrorBody(out, unknown); }),
            R"({"error":{"message":"The model `gpt-9` does not exist.",)"
            R"("type":"invalid_request_error","param":"model","code":"model_not_found"}})");

  MockError bad_json = MustFail(MockEndpoint::kChat, R"({"model":"mock-model",)");
  EXPECT_EQ(bad_json.status, 400);
  EXPECT_EQ(Build([&](std::string& out) { AppendErrorBody(out, bad_json); }),
            R"({"error":{"message":"request body is not a valid JSON object",)"
            R"("type":"invalid_request_error","param":null,"code":null}})");
  EXPECT_EQ(MustFail(MockEndpoint::kChat, "not json").status, 400);
  EXPECT_EQ(MustFail(MockEndpoint::kChat, R"({"model":"mock-model"} x)").status, 400);
  EXPECT_EQ(MustFail(MockEndpoint::kChat, R"({"model":"mock-model"})").param, "messages");
  EXPECT_EQ(MustFail(MockEndpoint::kChat, R"({"messages":[{"content":"x"}]})").param, "model");
  EXPECT_EQ(MustFail(MockEndpoint::kCompletions, R"({"model":"mock-model","prompt":7})").param,
            "prompt");
  EXPECT_EQ(
      MustFail(MockEndpoint::kCompletions, R"({"model":"mock-model","prompt":"x","max_tokens":0})")
          .param,
      "max_tokens");
}

TEST(MockApiTest, PlansAnswerLength) {
  MockOptions options = Options();  // max_output 4
  MockRequest request;
  request.prompt_tokens = 5;
  MockAnswer answer = PlanMockAnswer(request, options);
  EXPECT_EQ(answer.words, 4);
  EXPECT_EQ(answer.finish_reason, "stop");
  EXPECT_EQ(answer.usage.Total(), 9);
  request.max_tokens = 2;
  answer = PlanMockAnswer(request, options);
  EXPECT_EQ(answer.words, 2);
  EXPECT_EQ(answer.finish_reason, "length");
  request.max_tokens = 4;
  EXPECT_EQ(PlanMockAnswer(request, options).finish_reason, "length");
  request.max_tokens = 100;
  answer = PlanMockAnswer(request, options);
  EXPECT_EQ(answer.words, 4);
  EXPECT_EQ(answer.finish_reason, "stop");
}

TEST(MockApiTest, CompletionBodies) {
  MockResponseMeta meta{"chatcmpl-mock7", 1700000000, "mock-model"};
  MockAnswer answer{3, "length", {5, 3}};
  EXPECT_EQ(
      Build([&](std::string& out) {
        AppendCompletionBody(out, MockEndpoint::kChat, meta, answer, true);
      }),
      R"({"id":"chatcmpl-mock7","object":"chat.completion","created":1700000000,"model":"mock-model",)"
      R"("choices":[{"index":0,"message":{"role":"assistant","content":"w1 w2 w3"},"logprobs":null,)"
      R"("finish_reason":"length"}],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}})");
  meta.id = "cmpl-mock8";
  EXPECT_EQ(
      Build([&](std::string& out) {
        AppendCompletionBody(out, MockEndpoint::kCompletions, meta, answer, false);
      }),
      R"({"id":"cmpl-mock8","object":"text_completion","created":1700000000,"model":"mock-model",)"
      R"("choices":[{"index":0,"text":"w1 w2 w3","logprobs":null,"finish_reason":"length"}]})");
}

TEST(MockApiTest, StreamEvents) {
  MockResponseMeta meta{"chatcmpl-mock1", 5, "m"};
  const std::string prefix =
      R"(data: {"id":"chatcmpl-mock1","object":"chat.completion.chunk","created":5,"model":"m",)";
  EXPECT_EQ(Build([&](std::string& out) { AppendStreamToken(out, MockEndpoint::kChat, meta, 1); }),
            prefix + R"("choices":[{"index":0,"delta":{"role":"assistant","content":"w1"},)"
                     R"("logprobs":null,"finish_reason":null}]})"
                     "\n\n");
  EXPECT_EQ(
      Build([&](std::string& out) { AppendStreamToken(out, MockEndpoint::kChat, meta, 2); }),
      prefix +
          R"("choices":[{"index":0,"delta":{"content":" w2"},"logprobs":null,"finish_reason":null}]})"
          "\n\n");
  EXPECT_EQ(
      Build([&](std::string& out) { AppendStreamFinish(out, MockEndpoint::kChat, meta, "stop"); }),
      prefix + R"("choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]})"
               "\n\n");
  EXPECT_EQ(
      Build([&](std::string& out) {
        AppendStreamUsage(out, MockEndpoint::kChat, meta, {4, 2});
      }),
      prefix + R"("choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2,"total_tokens":6}})"
               "\n\n");

  meta.id = "cmpl-mock2";
  EXPECT_EQ(
      Build([&](std::string& out) { AppendStreamToken(out, MockEndpoint::kCompletions, meta, 3); }),
      R"(data: {"id":"cmpl-mock2","object":"text_completion","created":5,"model":"m",)"
      R"("choices":[{"index":0,"text":" w3","logprobs":null,"finish_reason":null}]})"
      "\n\n");
  EXPECT_EQ(Build([&](std::string& out) {
              AppendStreamFinish(out, MockEndpoint::kCompletions, meta, "stop");
            }),
            R"(data: {"id":"cmpl-mock2","object":"text_completion","created":5,"model":"m",)"
            R"("choices":[{"index":0,"text":"","logprobs":null,"finish_reason":"stop"}]})"
            "\n\n");
}

TEST(MockApiTest, EmbeddingsAndModels) {
  MockRequest request;
  request.endpoint = MockEndpoint::kEmbeddings;
  request.model = "e";
  request.prompt_tokens = 2;
  request.input_hashes = {0x0001ff80407fc000ull};
  EXPECT_EQ(Build([&](std::string& out) { AppendEmbeddingsBody(out, request, true); }),
            R"({"object":"list","data":[{"object":"embedding","index":0,)"
            R"("embedding":[-1,0.5,-0.0078125,-0.5,0,0.9921875,-0.9921875,-1]}],"model":"e",)"
            R"("usage":{"prompt_tokens":2,"total_tokens":2}})");
  request.base64 = true;
  std::string base64 = Build([&](std::string& out) { AppendEmbeddingsBody(out, request, false); });
  EXPECT_EQ(base64, R"({"object":"list","data":[{"object":"embedding","index":0,)"
                    R"("embedding":"AACAvwAAAD8AAAC8AAAAvwAAAAAAAH4/AAB+vwAAgL8="}],"model":"e"})");

  EXPECT_EQ(
      Build([](std::string& out) {
        AppendModelsBody(out, {"a", "b"}, 9);
      }),
      R"({"object":"list","data":[{"id":"a","object":"model","created":9,"owned_by":"mock-llm"},)"
      R"({"id":"b","object":"model","created":9,"owned_by":"mock-llm"}]})");
}

TEST(MockApiTest, AnswerTextAndIdsAndFaults) {
  EXPECT_EQ(Build([](std::string& out) { AppendAnswerText(out, 3); }), "w1 w2 w3");
  EXPECT_EQ(Build([](std::string& out) { AppendResponseId(out, MockEndpoint::kChat, 12); }),
            "chatcmpl-mock12");
  EXPECT_EQ(ParseMockFault("truncate-stream"), MockFault::kTruncateStream);
  EXPECT_EQ(ParseMockFault("no-usage"), MockFault::kNoUsage);
  EXPECT_EQ(ParseMockFault("nonsense"), MockFault::kNone);
}

}  // namespace
}  // namespace trl
