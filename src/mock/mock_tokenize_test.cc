#include "mock/mock_tokenize.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>
#include <vector>

#include "mock/mock_call_for_test.h"

namespace trl {
namespace {

class MockTokenizeTest : public ::testing::Test {
 protected:
  MockResult Call(MockResult (*answer)(MockCall&), std::string body) {
    MockCall call{body, "application/json", options_, vocabulary_, 1, 0, MockUsageReport::kValid};
    return answer(call);
  }
  std::string MustAnswer(MockResult (*answer)(MockCall&), std::string body) {
    MockReply reply = ReplyOf(Call(answer, std::move(body)));
    EXPECT_FALSE(reply.prefill);
    return reply.body;
  }
  MockError MustFail(MockResult (*answer)(MockCall&), const std::string& body) {
    return ErrorOf(Call(answer, body), body);
  }
  // The ids of a /tokenize answer.
  static std::string Ids(const std::string& body) {
    simdjson::dom::parser parser;
    return simdjson::minify(parser.parse(body)["tokens"]);
  }

  MockOptions options_;
  MockVocabulary vocabulary_;
};

TEST_F(MockTokenizeTest, PromptTokensArePackedWords) {
  // "hi" = (2 << 48) | 'h' << 8 | 'i'.
  EXPECT_EQ(MustAnswer(AnswerTokenize, R"({"model":"mock-model","prompt":" hi  hi\n"})"),
            R"({"count":2,"max_model_len":32768,"tokens":[562949953448041,562949953448041],)"
            R"("token_strs":null})");
  EXPECT_EQ(
      MustAnswer(AnswerTokenize, R"({"model":"mock-model","prompt":"a","return_token_strs":true})"),
      R"({"count":1,"max_model_len":32768,"tokens":[281474976710753],"token_strs":["a"]})");
}

TEST_F(MockTokenizeTest, MessagesCountAsChatPromptTokens) {
  // Chat counts 3 per message + words of every string but role and parts' type: 3+2 + 3+1 + 1.
  std::string body = MustAnswer(
      AnswerTokenize,
      R"({"model":"mock-model","messages":[{"role":"system","content":"be brief"},)"
      R"({"role":"user","content":[{"type":"text","text":"hi"}]}],"tools":[{"name":"f"}]})");
  EXPECT_EQ(body.substr(0, 11), R"({"count":10)") << body;
  std::string prompt =
      MustAnswer(AnswerDetokenize, R"({"model":"mock-model","tokens":)" + Ids(body) + "}");
  EXPECT_EQ(prompt, R"({"prompt":"<|start|> <|content|> be brief <|end|> <|start|> <|content|> hi )"
                    R"(<|end|> f"})");
}

TEST_F(MockTokenizeTest, DetokenizeInvertsTokenize) {
  const std::string text = "short and considerably longer words, \u00e9t\u00e9 included";
  std::string tokens =
      MustAnswer(AnswerTokenize, R"({"model":"mock-model","prompt":")" + text + R"("})");
  std::string again =
      MustAnswer(AnswerTokenize, R"({"model":"mock-model","prompt":")" + text + R"("})");
  EXPECT_EQ(tokens, again);  // long words keep their ids
  EXPECT_EQ(MustAnswer(AnswerDetokenize, R"({"model":"mock-model","tokens":)" + Ids(tokens) + "}"),
            R"({"prompt":")" + text + R"("})");
}

TEST_F(MockTokenizeTest, RefusesBadInput) {
  EXPECT_EQ(MustFail(AnswerDetokenize, R"({"model":"mock-model","tokens":[3]})").param, "tokens");
  EXPECT_EQ(MustFail(AnswerDetokenize, R"({"model":"mock-model","tokens":[-1]})").param, "tokens");
  // (1 << 48) | 'a' << 8: a 1-byte word has no second byte.
  EXPECT_EQ(
      MustFail(AnswerDetokenize, R"({"model":"mock-model","tokens":[281474976734464]})").param,
      "tokens");
  EXPECT_EQ(MustFail(AnswerDetokenize, R"({"model":"mock-model","tokens":["a"]})").param, "tokens");
  EXPECT_EQ(MustFail(AnswerTokenize, R"({"model":"mock-model"})").param, "prompt");
  EXPECT_EQ(MustFail(AnswerTokenize, R"({"model":"mock-model","messages":[]})").param, "messages");
  EXPECT_EQ(MustFail(AnswerTokenize, R"({"model":"nope","prompt":"a"})").status, 404);
}

TEST_F(MockTokenizeTest, VocabularyIsBounded) {
  for (size_t i = 0; i < MockVocabulary::kCapacity; ++i) {
    ASSERT_TRUE(vocabulary_.Id("longword" + std::to_string(i)));
  }
  EXPECT_EQ(vocabulary_.Id("longword0"), kLongWordBase);
  EXPECT_FALSE(vocabulary_.Id("anotherword"));
  EXPECT_EQ(MustFail(AnswerTokenize, R"({"model":"mock-model","prompt":"anotherword"})").status,
            503);
}

}  // namespace
}  // namespace trl
