#include "mock/mock_score.h"

#include <gtest/gtest.h>

#include <string>

#include "mock/mock_call_for_test.h"
#include "mock/mock_tokenize.h"

namespace trl {
namespace {

MockResult Call(MockResult (*answer)(MockCall&), std::string body,
                MockUsageReport report = MockUsageReport::kValid) {
  static const MockOptions kOptions;  // models {"mock-model"}
  static MockVocabulary vocabulary;
  MockCall call{body, "application/json", kOptions, vocabulary, 5, 1700000000, report};
  return answer(call);
}

MockReply MustAnswer(MockResult (*answer)(MockCall&), std::string body,
                     MockUsageReport report = MockUsageReport::kValid) {
  return ReplyOf(Call(answer, std::move(body), report));
}

MockError ScoreError(MockResult (*answer)(MockCall&), const std::string& body) {
  return ErrorOf(Call(answer, body), body);
}

TEST(MockScoreTest, RelevanceIsTheShareOfQueryWordsFound) {
  EXPECT_EQ(MockRelevance("red apple", "Red apple pie"), 1.0);
  EXPECT_EQ(MockRelevance("red apple red", "an apple"), 0.5);
  EXPECT_EQ(MockRelevance("red", "blue"), 0.0);
  EXPECT_EQ(MockRelevance("  ", "blue"), 0.0);
}

TEST(MockScoreTest, RerankSortsByScoreAndCountsQueryPlusDocument) {
  MockReply reply =
      MustAnswer(AnswerRerank, R"({"model":"mock-model","query":"red apple",)"
                               R"("documents":["an apple","red apple pie",{"text":"x"}]})");
  EXPECT_EQ(reply.body,
            R"({"id":"rerank-mock5","model":"mock-model","usage":{"total_tokens":12},"results":[)"
            R"({"index":1,"document":{"text":"red apple pie"},"relevance_score":1},)"
            R"({"index":0,"document":{"text":"an apple"},"relevance_score":0.5},)"
            R"({"index":2,"document":{"text":"x"},"relevance_score":0}]})");
  // (2+2) + (2+3) + (2+1)
  EXPECT_EQ(reply.prompt_tokens, 12);
  EXPECT_TRUE(reply.usage_reported);
}

TEST(MockScoreTest, RerankTopNAndReturnDocuments) {
  MockReply reply = MustAnswer(AnswerRerank,
                               R"({"model":"mock-model","query":"b",)"
                               R"("documents":["a","b"],"top_n":1,)"
                               R"("return_documents":false})",
                               MockUsageReport::kNone);
  EXPECT_EQ(reply.body, R"({"id":"rerank-mock5","model":"mock-model","results":[)"
                        R"({"index":1,"relevance_score":1}]})");
  EXPECT_FALSE(reply.usage_reported);
  EXPECT_EQ(ScoreError(AnswerRerank, R"({"model":"mock-model","query":"b","documents":[]})").param,
            "documents");
  EXPECT_EQ(ScoreError(AnswerRerank, R"({"model":"mock-model","query":"b","documents":"a"})").param,
            "documents");
  EXPECT_EQ(ScoreError(AnswerRerank, R"({"model":"mock-model","documents":["a"]})").param, "query");
  EXPECT_EQ(
      ScoreError(AnswerRerank, R"({"model":"mock-model","query":"b","documents":["a"],"top_n":-1})")
          .param,
      "top_n");
  EXPECT_EQ(ScoreError(AnswerRerank, R"({"model":"x","query":"b","documents":["a"]})").status, 404);
}

TEST(MockScoreTest, ScorePairsAsVllm) {
  MockReply one = MustAnswer(AnswerScore, R"({"model":"mock-model","text_1":"a b","text_2":"b"})");
  EXPECT_EQ(one.body,
            R"({"id":"score-mock5","object":"list","created":1700000000,"model":"mock-model",)"
            R"("data":[{"index":0,"object":"score","score":0.5}],"usage":{"prompt_tokens":3,)"
            R"("total_tokens":3,"completion_tokens":0,"prompt_tokens_details":null}})");
  MockReply many =
      MustAnswer(AnswerScore, R"({"model":"mock-model","text_1":["a"],"text_2":["a","b c"]})");
  EXPECT_EQ(many.prompt_tokens, (1 + 1) + (1 + 2));
  EXPECT_NE(many.body.find(R"({"index":1,"object":"score","score":0})"), std::string::npos);
  MockReply zip =
      MustAnswer(AnswerScore, R"({"model":"mock-model","text_1":["a","b"],"text_2":["a","c"]})");
  EXPECT_NE(zip.body.find(R"("data":[{"index":0,"object":"score","score":1},)"
                          R"({"index":1,"object":"score","score":0}])"),
            std::string::npos);
  EXPECT_EQ(zip.prompt_tokens, 4);
  EXPECT_EQ(
      ScoreError(AnswerScore, R"({"model":"mock-model","text_1":["a","b"],"text_2":["a"]})").param,
      "text_1");
  EXPECT_EQ(ScoreError(AnswerScore, R"({"model":"mock-model","text_1":"a"})").param, "text_2");
  MockReply huge = MustAnswer(AnswerScore, R"({"model":"mock-model","text_1":"a","text_2":"b"})",
                              MockUsageReport::kHuge);
  EXPECT_NE(huge.body.find(R"("prompt_tokens":1000000001,"total_tokens":1000000001,)"),
            std::string::npos);
  EXPECT_FALSE(huge.usage_reported);
}

}  // namespace
}  // namespace trl
