#include "mock/mock_responses.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>
#include <vector>

namespace trl {
namespace {

MockOptions ResponsesOptions() {
  MockOptions options;
  options.models = {"mock-model"};
  options.max_output = 4;
  return options;
}

std::variant<MockRequest, MockError> Parse(std::string body) {
  return ParseResponsesRequest(body, ResponsesOptions());
}

MockRequest ParseResponses(std::string body) {
  auto parsed = Parse(std::move(body));
  if (auto* error = std::get_if<MockError>(&parsed)) {
    ADD_FAILURE() << "unexpected error: " << error->message;
    return {};
  }
  return std::get<MockRequest>(parsed);
}

MockError ResponsesError(const std::string& body) {
  auto parsed = Parse(body);
  if (!std::holds_alternative<MockError>(parsed)) {
    ADD_FAILURE() << "expected an error for " << body;
    return {};
  }
  return std::get<MockError>(parsed);
}

const MockResponseMeta kMeta{"resp_mock7", 1700000000, "mock-model", {}, {}, "msg_mock7"};

TEST(MockResponsesTest, InputTokensFollowTheChatRule) {
  // A string input is one user message: 3 + 2 words.
  EXPECT_EQ(ParseResponses(R"({"model":"mock-model","input":"hello there"})").prompt_tokens, 5);
  // instructions are a system message: 3 + 2 more.
  EXPECT_EQ(
      ParseResponses(R"({"model":"mock-model","input":"hello there","instructions":"be brief"})")
          .prompt_tokens,
      10);
  // Items: role, type and parts' type are markup; every other string counts.
  EXPECT_EQ(ParseResponses(
                R"({"model":"mock-model","input":[)"
                R"({"type":"message","role":"user","content":[)"
                R"({"type":"input_text","text":"a b"},{"type":"input_image","image_url":"u"}]},)"
                R"({"type":"function_call_output","call_id":"c1","output":"x y z"}]})")
                .prompt_tokens,
            3 + 3 + 3 + 4);
  // tools: every string inside, as for chat.
  EXPECT_EQ(ParseResponses(R"({"model":"mock-model","input":"hi",)"
                           R"("tools":[{"type":"function","name":"lookup"}]})")
                .prompt_tokens,
            4 + 2);
}

TEST(MockResponsesTest, ReadsTheCapAndStream) {
  MockRequest request =
      ParseResponses(R"({"model":"mock-model","input":"hi","max_output_tokens":3,"stream":true})");
  EXPECT_EQ(request.max_tokens, 3);
  EXPECT_TRUE(request.stream);
  EXPECT_EQ(request.endpoint, MockEndpoint::kResponses);
}

TEST(MockResponsesTest, RefusesBadRequests) {
  EXPECT_EQ(ResponsesError(R"({"model":"mock-model"})").param, "input");
  EXPECT_EQ(ResponsesError(R"({"model":"mock-model","input":[]})").param, "input");
  EXPECT_EQ(ResponsesError(R"({"model":"mock-model","input":[1]})").param, "input");
  EXPECT_EQ(ResponsesError(R"({"model":"mock-model","input":"x","max_output_tokens":-1})").param,
            "max_output_tokens");
  EXPECT_EQ(ResponsesError(R"({"model":"mock-model","input":"x","instructions":3})").param,
            "instructions");
  EXPECT_EQ(ResponsesError(R"({"model":"mock-model","input":"x","background":"yes"})").param,
            "background");
  EXPECT_EQ(ResponsesError(R"({"model":"mock-model","input":"x","tools":{}})").param, "tools");
  MockError unknown = ResponsesError(R"({"model":"nope","input":"x"})");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.code, "model_not_found");
  EXPECT_EQ(ResponsesError("[]").status, 400);
}

TEST(MockResponsesTest, BodyIsCompletedOrIncomplete) {
  MockRequest request =
      ParseResponses(R"({"model":"mock-model","input":"hi","max_output_tokens":9})");
  MockAnswer answer = PlanMockAnswer(request, ResponsesOptions());
  std::string body;
  AppendResponsesBody(body, request, kMeta, answer, MockUsageReport::kValid);
  EXPECT_NE(body.find(R"({"id":"resp_mock7","object":"response","created_at":1700000000,)"
                      R"("model":"mock-model",)"),
            std::string::npos)
      << body;
  EXPECT_NE(body.find(R"("max_output_tokens":9,)"), std::string::npos);
  EXPECT_NE(body.find(R"("status":"completed","incomplete_details":null,"error":null,)"
                      R"("output":[{"id":"msg_mock7","type":"message","status":"completed",)"
                      R"("role":"assistant","content":[{"type":"output_text",)"
                      R"("text":"w1 w2 w3 w4","annotations":[],"logprobs":[]}]}],)"
                      R"("usage":{"input_tokens":4,"input_tokens_details":{"cached_tokens":0},)"
                      R"("output_tokens":4,"output_tokens_details":{"reasoning_tokens":0},)"
                      R"("total_tokens":8}})"),
            std::string::npos)
      << body;
  simdjson::dom::parser parser;
  EXPECT_FALSE(parser.parse(body).error());

  MockRequest capped =
      ParseResponses(R"({"model":"mock-model","input":"hi","max_output_tokens":2})");
  body.clear();
  AppendResponsesBody(body, capped, kMeta, PlanMockAnswer(capped, ResponsesOptions()),
                      MockUsageReport::kNone);
  EXPECT_NE(
      body.find(R"("status":"incomplete","incomplete_details":{"reason":"max_output_tokens"})"),
      std::string::npos);
  EXPECT_NE(body.find(R"("text":"w1 w2",)"), std::string::npos);
  EXPECT_NE(body.find(R"("usage":null})"), std::string::npos) << body;
}

TEST(MockResponsesTest, WrongUsagesBreakInputTokens) {
  MockRequest request =
      ParseResponses(R"({"model":"mock-model","input":"hi","max_output_tokens":1})");
  MockAnswer answer = PlanMockAnswer(request, ResponsesOptions());
  const auto usage = [&](MockUsageReport report) {
    std::string body;
    AppendResponsesBody(body, request, kMeta, answer, report);
    return body.substr(body.find(R"("usage":)"));
  };
  EXPECT_EQ(usage(MockUsageReport::kNegative),
            R"("usage":{"input_tokens":-1000000,"input_tokens_details":{"cached_tokens":0},)"
            R"("output_tokens":1,"output_tokens_details":{"reasoning_tokens":0},)"
            R"("total_tokens":-999999}})");
  EXPECT_NE(usage(MockUsageReport::kFloat).find(R"("input_tokens":4.5,)"), std::string::npos);
  EXPECT_EQ(usage(MockUsageReport::kNoCompletion).find("output_tokens\""), std::string::npos);
}

// Splits "event: t\ndata: {...}\n\n" events into (type, data).
std::vector<std::pair<std::string, std::string>> Events(std::string_view stream) {
  std::vector<std::pair<std::string, std::string>> events;
  while (!stream.empty()) {
    const size_t end = stream.find("\n\n");
    std::string_view event = stream.substr(0, end);
    stream.remove_prefix(end == std::string_view::npos ? stream.size() : end + 2);
    const size_t newline = event.find('\n');
    EXPECT_EQ(event.substr(0, 7), "event: ");
    EXPECT_EQ(event.substr(newline + 1, 6), "data: ");
    events.emplace_back(event.substr(7, newline - 7), event.substr(newline + 7));
  }
  return events;
}

TEST(MockResponsesTest, StreamSendsTheEventSequence) {
  MockRequest request =
      ParseResponses(R"({"model":"mock-model","input":"hi","max_output_tokens":3,"stream":true})");
  MockAnswer answer = PlanMockAnswer(request, ResponsesOptions());
  std::string stream;
  AppendResponsesStreamHead(stream, request, kMeta);
  for (int64_t word = 1; word <= answer.words; ++word) {
    AppendResponsesStreamDelta(stream, kMeta, word);
  }
  AppendResponsesStreamTail(stream, request, kMeta, answer, MockUsageReport::kValid);
  const std::vector<std::string> expected = {
      "response.created",           "response.in_progress",
      "response.output_item.added", "response.content_part.added",
      "response.output_text.delta", "response.output_text.delta",
      "response.output_text.delta", "response.output_text.done",
      "response.content_part.done", "response.output_item.done",
      "response.completed"};
  auto events = Events(stream);
  ASSERT_EQ(events.size(), expected.size());
  simdjson::dom::parser parser;
  std::string text;
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].first, expected[i]);
    simdjson::dom::element data = parser.parse(events[i].second);
    EXPECT_EQ(std::string_view(data["type"]), expected[i]);
    EXPECT_EQ(int64_t(data["sequence_number"]), static_cast<int64_t>(i));
    if (expected[i] == "response.output_text.delta") {
      EXPECT_EQ(std::string_view(data["item_id"]), "msg_mock7");
      text += std::string_view(data["delta"]);
    }
  }
  EXPECT_EQ(text, "w1 w2 w3");
  simdjson::dom::element completed = parser.parse(events.back().second);
  EXPECT_EQ(std::string_view(completed["response"]["status"]), "incomplete");
  EXPECT_EQ(int64_t(completed["response"]["usage"]["input_tokens"]), 4);
  EXPECT_EQ(int64_t(completed["response"]["usage"]["output_tokens"]), 3);
  EXPECT_EQ(stream.find("[DONE]"), std::string::npos);
  simdjson::dom::element created = parser.parse(events.front().second);
  EXPECT_TRUE(created["response"]["usage"].is_null());
  EXPECT_EQ(std::string_view(created["response"]["status"]), "in_progress");
}

TEST(MockResponsesTest, EchoesRequestFields) {
  MockRequest request = ParseResponses(
      R"({"model":"mock-model","input":"hi","previous_response_id":"resp_1","background":true,)"
      R"("metadata":{"k":"v"},"temperature":0.5,"tools":[{"type":"function","name":"f"}]})");
  EXPECT_NE(request.echo.find(R"("previous_response_id":"resp_1",)"), std::string::npos);
  EXPECT_NE(request.echo.find(R"("background":true,)"), std::string::npos);
  EXPECT_NE(request.echo.find(R"("metadata":{"k":"v"},)"), std::string::npos);
  EXPECT_NE(request.echo.find(R"("temperature":0.5,)"), std::string::npos);
  EXPECT_NE(request.echo.find(R"("tools":[{"type":"function","name":"f"}],)"), std::string::npos);
  EXPECT_NE(request.echo.find(R"("instructions":null,)"), std::string::npos);
}

}  // namespace
}  // namespace trl
