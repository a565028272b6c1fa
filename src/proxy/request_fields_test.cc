#include "proxy/request_fields.h"

#include <gtest/gtest.h>

#include "limits/token_counter.h"

namespace trl {
namespace {

std::optional<FieldError> Extract(ApiEndpoint e, std::string body, RequestFields& out) {
  return ExtractRequestFields(e, body, out);
}

TEST(RequestFields, ChatFields) {
  RequestFields f;
  auto err = Extract(ApiEndpoint::kChatCompletions,
                     R"({"model":"m","stream":true,"stream_options":{"include_usage":true},
                        "max_tokens":10,"max_completion_tokens":20,
                        "messages":[{"role":"system","content":"be brief"},
                                    {"role":"user","name":"bob","content":[{"type":"text","text":"hi there"}]},
                                    {"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}]})",
                     f);
  ASSERT_FALSE(err) << err->message;
  EXPECT_EQ(f.model, "m");
  EXPECT_TRUE(f.stream);
  EXPECT_TRUE(f.has_stream_options);
  EXPECT_TRUE(f.include_usage);
  EXPECT_EQ(f.max_tokens, 20);  // max_completion_tokens wins
  EXPECT_EQ(f.messages, 3);
  std::vector<std::string> texts(f.texts.begin(), f.texts.end());
  EXPECT_EQ(texts, (std::vector<std::string>{"be brief", "bob", "hi there", "f", "{}"}));
}

TEST(RequestFields, ModelPositionAllowsInPlaceReplacement) {
  RequestFields f;
  std::string body = R"({"messages":[{"content":"x"}], "model" : "alias" , "n":1})";
  ASSERT_FALSE(ExtractRequestFields(ApiEndpoint::kChatCompletions, body, f));
  EXPECT_EQ(body.substr(f.model_offset, f.model_length), "\"alias\"");
}

TEST(RequestFields, CompletionPromptArrayAndTokenIds) {
  RequestFields f;
  ASSERT_FALSE(Extract(ApiEndpoint::kCompletions, R"({"model":"m","prompt":["a b",[1,2,3]]})", f));
  ASSERT_EQ(f.texts.size(), 1u);
  EXPECT_EQ(f.pretokenized, 3);
  EXPECT_FALSE(f.max_tokens.has_value());
}

TEST(RequestFields, EmbeddingsInput) {
  RequestFields f;
  ASSERT_FALSE(Extract(ApiEndpoint::kEmbeddings, R"({"input":"x y","model":"e"})", f));
  EXPECT_EQ(f.model, "e");
  ASSERT_EQ(f.texts.size(), 1u);
}

struct BadCase {
  ApiEndpoint endpoint;
  std::string body;
  std::string param;
};

TEST(RequestFields, ErrorsNameTheField) {
  const BadCase cases[] = {
      {ApiEndpoint::kChatCompletions, "not json", ""},
      {ApiEndpoint::kChatCompletions, "[1,2]", ""},
      {ApiEndpoint::kChatCompletions, R"({"messages":[{"role":"user","content":"x"}]})", "model"},
      {ApiEndpoint::kChatCompletions, R"({"model":7,"messages":[]})", "model"},
      {ApiEndpoint::kChatCompletions, R"({"model":"m"})", "messages"},
      {ApiEndpoint::kChatCompletions, R"({"model":"m","messages":"hi"})", "messages"},
      {ApiEndpoint::kChatCompletions, R"({"model":"m","messages":[]})", "messages"},
      {ApiEndpoint::kChatCompletions, R"({"model":"m","messages":[{"content":5}]})",
       "messages[0].content"},
      {ApiEndpoint::kChatCompletions,
       R"({"model":"m","max_tokens":-1,"messages":[{"content":"x"}]})", "max_tokens"},
      {ApiEndpoint::kChatCompletions,
       R"({"model":"m","max_tokens":99999999999,"messages":[{"content":"x"}]})", "max_tokens"},
      {ApiEndpoint::kChatCompletions,
       R"({"model":"m","max_tokens":"5","messages":[{"content":"x"}]})", "max_tokens"},
      {ApiEndpoint::kChatCompletions,
       R"({"model":"m","stream":"yes","messages":[{"content":"x"}]})", "stream"},
      {ApiEndpoint::kCompletions, R"({"model":"m"})", "prompt"},
      {ApiEndpoint::kCompletions, R"({"model":"m","prompt":{}})", "prompt"},
      {ApiEndpoint::kEmbeddings, R"({"model":"m"})", "input"},
  };
  for (const auto& c : cases) {
    RequestFields f;
    auto err = Extract(c.endpoint, c.body, f);
    ASSERT_TRUE(err.has_value()) << c.body;
    EXPECT_EQ(err->param, c.param) << c.body;
    EXPECT_FALSE(err->message.empty());
  }
}

TEST(RequestFields, PromptCountAddsOverheads) {
  RequestFields f;
  ASSERT_FALSE(Extract(ApiEndpoint::kChatCompletions,
                       R"({"model":"m","messages":[{"role":"user","content":"hello"}]})", f));
  ApproxTokenCounter counter;
  EXPECT_EQ(CountPromptTokens(f, counter), counter.PerRequestOverhead() +
                                               counter.PerMessageOverhead() +
                                               counter.CountText("hello"));
}

}  // namespace
}  // namespace trl
