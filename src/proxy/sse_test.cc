#include "proxy/sse.h"

#include <gtest/gtest.h>

namespace trl {
namespace {

constexpr UsageFields kGen = UsageFields::kPromptAndCompletion;

std::vector<std::string> FeedAll(SseSplitter& s, std::vector<std::string_view> pieces) {
  std::vector<std::string> events;
  for (auto p : pieces) s.Feed(p, [&](std::string_view e) { events.emplace_back(e); });
  return events;
}

TEST(SseSplitter, SplitsEventsAcrossArbitraryPieces) {
  SseSplitter s;
  auto events = FeedAll(s, {"data: {\"a\"", ":1}\n", "\ndata: [DONE]\n\n"});
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0], "data: {\"a\":1}\n\n");
  EXPECT_EQ(events[1], "data: [DONE]\n\n");
  EXPECT_EQ(s.TakeRest(), "");
}

TEST(SseSplitter, ManyEventsInOnePieceAndCrlf) {
  SseSplitter s;
  auto events = FeedAll(s, {"data: 1\n\ndata: 2\r\n\r\ndata: 3"});
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0], "data: 1\n\n");
  EXPECT_EQ(events[1], "data: 2\r\n\r\n");
  EXPECT_EQ(s.TakeRest(), "data: 3");
}

TEST(SseSplitter, OversizedEventIsPassedOnNotBuffered) {
  SseSplitter s(8);
  auto events = FeedAll(s, {"data: 0123456789"});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0], "data: 0123456789");
  EXPECT_EQ(s.TakeRest(), "");
}

TEST(ParseStreamEvent, ContentChunk) {
  auto e = ParseStreamEvent(
      "data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hello\"}}]}\n\n",
      kGen);
  EXPECT_FALSE(e.done);
  EXPECT_FALSE(e.usage_only);
  EXPECT_FALSE(e.usage.has_value());
  ASSERT_EQ(e.texts.size(), 1u);
  EXPECT_EQ(e.texts[0], "hello");
}

TEST(ParseStreamEvent, UsageChunk) {
  auto e = ParseStreamEvent(
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":5,"
      "\"total_tokens\":12}}\n\n",
      kGen);
  EXPECT_TRUE(e.usage_only);
  ASSERT_TRUE(e.usage.has_value());
  EXPECT_EQ(e.usage->prompt_tokens, 7);
  EXPECT_EQ(e.usage->completion_tokens, 5);
}

TEST(ParseStreamEvent, DoneAndNonJson) {
  EXPECT_TRUE(ParseStreamEvent("data: [DONE]\n\n", kGen).done);
  auto e = ParseStreamEvent(": keep-alive\n\n", kGen);
  EXPECT_FALSE(e.done);
  EXPECT_TRUE(e.texts.empty());
}

TEST(ParseResponseBody, ChatCompletion) {
  std::string body =
      "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"a b c\"}}],"
      "\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":3,\"total_tokens\":13}}";
  auto r = ParseResponseBody(body, kGen);
  ASSERT_TRUE(r.usage.has_value());
  EXPECT_FALSE(r.usage_invalid);
  EXPECT_EQ(r.usage->Total(), 13);
  ASSERT_EQ(r.texts.size(), 1u);
  EXPECT_EQ(r.texts[0], "a b c");
}

TEST(ParseResponseBody, EmbeddingsUsageHasNoCompletion) {
  std::string body = "{\"data\":[],\"usage\":{\"prompt_tokens\":4,\"total_tokens\":4}}";
  auto r = ParseResponseBody(body, UsageFields::kPromptOnly);
  ASSERT_TRUE(r.usage.has_value());
  EXPECT_FALSE(r.usage_invalid);
  EXPECT_EQ(r.usage->prompt_tokens, 4);
  EXPECT_EQ(r.usage->completion_tokens, 0);
}

// ----------------------------------------------------------------------------------------------
// What the model wrote: every text of every choice, and only texts.
// ----------------------------------------------------------------------------------------------

std::vector<std::string> Texts(const TextViews& texts) {
  return std::vector<std::string>(texts.begin(), texts.end());
}

TEST(ParseStreamEvent, CountsEverythingTheModelWritesInEveryChoice) {
  auto e = ParseStreamEvent(
      R"(data: {"id":"chatcmpl-1","choices":[)"
      R"({"index":0,"delta":{"role":"assistant","reasoning_content":"r1","reasoning":"r2"}},)"
      R"({"index":1,"delta":{"refusal":"no","tool_calls":[{"index":0,"id":"call_9",)"
      R"("type":"function","function":{"name":"get","arguments":"{\"a\""}}]}},)"
      R"({"index":2,"delta":{"function_call":{"name":"f","arguments":"1"},"content":"c"}}]})"
      "\n\n",
      kGen);
  EXPECT_EQ(Texts(e.texts),
            (std::vector<std::string>{"r1", "r2", "no", "get", "{\"a\"", "f", "1", "c"}));
}

TEST(ParseResponseBody, CountsMessagesToolCallsAndCompletionText) {
  std::string body = R"({"id":"x","choices":[{"message":{"role":"assistant","content":null,)"
                     R"("tool_calls":[{"id":"call_1","type":"function",)"
                     R"("function":{"name":"n","arguments":"{}"}}]}},)"
                     R"({"text":"completion text"}]})";
  auto r = ParseResponseBody(body, kGen);
  EXPECT_FALSE(r.usage.has_value());
  EXPECT_FALSE(r.usage_invalid);  // no usage at all is not an invalid one
  EXPECT_EQ(Texts(r.texts), (std::vector<std::string>{"n", "{}", "completion text"}));
}

// ----------------------------------------------------------------------------------------------
// Usage is trusted only when it is sane.
// ----------------------------------------------------------------------------------------------

TEST(ParseResponseBody, UsageCountsMustBeSaneIntegers) {
  const std::pair<std::string, bool> cases[] = {
      {R"({"prompt_tokens":0,"completion_tokens":0})", true},
      {R"({"prompt_tokens":1000000000,"completion_tokens":1000000000})", true},
      {R"({"prompt_tokens":1000000001,"completion_tokens":1})", false},
      {R"({"prompt_tokens":1,"completion_tokens":-1})", false},
      {R"({"prompt_tokens":1,"completion_tokens":2.0})", false},
      {R"({"prompt_tokens":1,"completion_tokens":"2"})", false},
      {R"({"prompt_tokens":1,"completion_tokens":9223372036854775808})", false},
      {R"({"prompt_tokens":1,"completion_tokens":null})", false},
      {R"({"prompt_tokens":1})", false},  // a generation without completion_tokens
      {R"({"completion_tokens":1})", false},
      {R"(5)", false},
      {R"("lots")", false},
      {R"([1,2])", false},
  };
  for (const auto& [usage, valid] : cases) {
    std::string body = R"({"choices":[{"text":"a"}],"usage":)" + usage + "}";
    auto r = ParseResponseBody(body, kGen);
    EXPECT_EQ(r.usage.has_value(), valid) << usage;
    EXPECT_EQ(r.usage_invalid, !valid) << usage;
  }
}

TEST(ParseResponseBody, CachedTokensAreAPartOfThePromptOrNothing) {
  const std::pair<std::string, int64_t> cases[] = {
      {R"("prompt_tokens_details":{"cached_tokens":6})", 6},
      {R"("prompt_tokens_details":{"audio_tokens":0,"cached_tokens":0})", 0},
      {R"("prompt_tokens_details":{"cached_tokens":50})", 10},  // at most prompt_tokens
      {R"("prompt_tokens_details":null)", 0},
      {R"("prompt_tokens_details":{"cached_tokens":null})", 0},
      {R"("prompt_tokens_details":{"cached_tokens":-3})", 0},
      {R"("prompt_tokens_details":{"cached_tokens":"6"})", 0},
      {R"("prompt_tokens_details":{"cached_tokens":2.5})", 0},
      {R"("prompt_tokens_details":[6])", 0},
      {R"("input_tokens_details":{"cached_tokens":6})", 0},  // the Responses API's name
  };
  for (const auto& [details, cached] : cases) {
    std::string body = R"({"choices":[{"text":"a"}],"usage":{"prompt_tokens":10,)" + details +
                       R"(,"completion_tokens":3}})";
    auto r = ParseResponseBody(body, kGen);
    ASSERT_TRUE(r.usage.has_value()) << details;  // a bad detail never voids the counts
    EXPECT_EQ(r.usage->cached_tokens, cached) << details;
    EXPECT_EQ(r.usage->Total(), 13) << details;
  }
  auto stream = ParseStreamEvent(
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":5,"
      "\"prompt_tokens_details\":{\"cached_tokens\":4}}}\n\n",
      kGen);
  ASSERT_TRUE(stream.usage.has_value());
  EXPECT_EQ(stream.usage->cached_tokens, 4);
}

TEST(ParseResponseBody, EmbeddingsUsageNeedsNoCompletionButAValidOne) {
  std::string body = R"({"data":[],"usage":{"prompt_tokens":4,"completion_tokens":-3}})";
  auto r = ParseResponseBody(body, UsageFields::kPromptOnly);
  EXPECT_FALSE(r.usage.has_value());
  EXPECT_TRUE(r.usage_invalid);
  body = R"({"data":[],"usage":{"completion_tokens":0}})";
  r = ParseResponseBody(body, UsageFields::kPromptOnly);
  EXPECT_TRUE(r.usage_invalid);
  body = R"({"data":[],"usage":{"total_tokens":-4}})";
  EXPECT_TRUE(ParseResponseBody(body, UsageFields::kPromptOnly).usage_invalid);
}

// vLLM's rerank reports total_tokens alone: for what generates nothing, that is the prompt.
TEST(ParseResponseBody, TotalTokensStandInForAMissingPromptCount) {
  std::string body = R"({"results":[],"usage":{"total_tokens":9}})";
  auto r = ParseResponseBody(body, UsageFields::kPromptOnly);
  ASSERT_TRUE(r.usage.has_value());
  EXPECT_EQ(r.usage->prompt_tokens, 9);
  EXPECT_EQ(r.usage->completion_tokens, 0);
  body = R"({"data":[],"usage":{"total_tokens":9,"prompt_tokens":7}})";
  EXPECT_EQ(ParseResponseBody(body, UsageFields::kPromptOnly).usage->prompt_tokens, 7);
  body = R"({"choices":[],"usage":{"total_tokens":9,"completion_tokens":2}})";
  EXPECT_TRUE(ParseResponseBody(body, UsageFields::kPromptAndCompletion).usage_invalid);
}

TEST(ParseStreamEvent, InvalidUsageChunkIsStillUsageOnly) {
  auto e =
      ParseStreamEvent(R"(data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":-5}})"
                       "\n\n",
                       kGen);
  EXPECT_FALSE(e.usage.has_value());
  EXPECT_TRUE(e.usage_invalid);
  EXPECT_TRUE(e.usage_only);
}

TEST(ParseStreamEvent, MalformedValuesAreNotExceptions) {
  auto e = ParseStreamEvent(
      R"(data: {"choices":[{"delta":{"function_call":nul1,"tool_calls":[{"function":nul2}]}}],)"
      R"("usage":nulx})"
      "\n\n",
      kGen);
  EXPECT_FALSE(e.usage.has_value());
  EXPECT_TRUE(e.usage_invalid);
}

TEST(ParseStreamEvent, NullUsageIsNoUsage) {
  auto e = ParseStreamEvent(R"(data: {"choices":[{"delta":{"content":"x"}}],"usage":null})"
                            "\n\n",
                            kGen);
  EXPECT_FALSE(e.usage.has_value());
  EXPECT_FALSE(e.usage_invalid);
  EXPECT_FALSE(e.usage_only);
  EXPECT_EQ(e.usage_length, 0u);
}

// ----------------------------------------------------------------------------------------------
// Usage removed for a client that did not ask for it.
// ----------------------------------------------------------------------------------------------

TEST(AppendWithoutUsage, ContentChunkKeepsItsChoices) {
  auto e = ParseStreamEvent(
      R"(data: {"id":"x","choices":[{"delta":{"content":"hi"},"finish_reason":"stop"}],)"
      R"("usage": {"prompt_tokens":3,"completion_tokens":1,"total_tokens":4} })"
      "\n\n",
      kGen);
  ASSERT_TRUE(e.usage.has_value());
  EXPECT_FALSE(e.usage_only);
  std::string out = "before";
  AppendWithoutUsage(e, out);
  EXPECT_EQ(out, R"(beforedata: {"id":"x","choices":[{"delta":{"content":"hi"},)"
                 R"("finish_reason":"stop"}],"usage": null })"
                 "\n\n");
}

TEST(AppendWithoutUsage, EventOfManyLinesBecomesOneLine) {
  auto e = ParseStreamEvent(
      "data: {\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1},\r\n"
      "data: \"choices\":[{\"text\":\"a\"}]}\r\n\r\n",
      kGen);
  ASSERT_TRUE(e.usage.has_value());
  ASSERT_EQ(Texts(e.texts), std::vector<std::string>{"a"});
  std::string out;
  AppendWithoutUsage(e, out);
  EXPECT_EQ(out, "data: {\"usage\":null, \"choices\":[{\"text\":\"a\"}]}\n\n");
}

TEST(AppendWithoutUsage, InvalidUsageIsRemovedToo) {
  auto e = ParseStreamEvent(R"(data: {"choices":[{"text":"a"}],"usage":"garbage"})"
                            "\n\n",
                            kGen);
  EXPECT_TRUE(e.usage_invalid);
  std::string out;
  AppendWithoutUsage(e, out);
  EXPECT_EQ(out, "data: {\"choices\":[{\"text\":\"a\"}],\"usage\":null}\n\n");
}

constexpr UsageFields kResponses = UsageFields::kResponses;

// The Responses API: usage is input_tokens and output_tokens; what the model wrote is the text,
// refusal and function-call parts of `output`.
TEST(ParseResponseBody, Responses) {
  std::string body = R"({"id":"resp_1","object":"response","status":"completed","output":[
      {"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"think"}]},
      {"type":"message","id":"msg_1","role":"assistant","content":[
        {"type":"output_text","text":"Hello","annotations":[]},{"type":"refusal","refusal":"no"}]},
      {"type":"function_call","id":"fc_1","call_id":"c1","name":"get","arguments":"{\"a\":1}"}],
      "usage":{"input_tokens":12,"input_tokens_details":{"cached_tokens":4},"output_tokens":7,
               "output_tokens_details":{"reasoning_tokens":2},"total_tokens":19}})";
  ResponseSummary s = ParseResponseBody(body, kResponses);
  ASSERT_TRUE(s.usage.has_value());
  EXPECT_EQ(s.usage->prompt_tokens, 12);
  EXPECT_EQ(s.usage->completion_tokens, 7);
  EXPECT_EQ(s.usage->cached_tokens, 4);
  EXPECT_EQ(std::vector<std::string>(s.texts.begin(), s.texts.end()),
            (std::vector<std::string>{"think", "Hello", "no", "get", "{\"a\":1}"}));
  std::string chat_shaped = R"({"usage":{"prompt_tokens":1,"completion_tokens":2}})";
  EXPECT_TRUE(ParseResponseBody(chat_shaped, kResponses).usage_invalid);
}

// Streamed: the deltas are what the model wrote (the .done events and response.completed repeat
// it whole: not counted again); response.completed carries the usage, inside `response`.
TEST(ParseStreamEvent, ResponsesEvents) {
  auto delta = ParseStreamEvent(
      "event: response.output_text.delta\n"
      "data: {\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1\",\"output_index\":0,"
      "\"content_index\":0,\"delta\":\"Hel\",\"sequence_number\":4}\n\n",
      kResponses);
  EXPECT_EQ(std::vector<std::string>(delta.texts.begin(), delta.texts.end()),
            (std::vector<std::string>{"Hel"}));
  EXPECT_FALSE(delta.usage.has_value());
  auto args = ParseStreamEvent(
      "data: {\"delta\":\"{\\\"a\\\"\",\"type\":\"response.function_call_arguments.delta\"}\n\n",
      kResponses);
  EXPECT_EQ(std::vector<std::string>(args.texts.begin(), args.texts.end()),
            (std::vector<std::string>{"{\"a\""}));
  auto done = ParseStreamEvent(
      "data: {\"type\":\"response.output_text.done\",\"text\":\"Hello\",\"delta\":\"x\"}\n\n",
      kResponses);
  EXPECT_TRUE(done.texts.empty());
  auto completed = ParseStreamEvent(
      "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{"
      "\"id\":\"resp_1\",\"output\":[{\"type\":\"message\",\"content\":[{\"type\":\"output_text\","
      "\"text\":\"Hello\"}]}],\"usage\":{\"input_tokens\":5,\"output_tokens\":3,"
      "\"total_tokens\":8}},\"sequence_number\":9}\n\n",
      kResponses);
  ASSERT_TRUE(completed.usage.has_value());
  EXPECT_EQ(completed.usage->prompt_tokens, 5);
  EXPECT_EQ(completed.usage->completion_tokens, 3);
  EXPECT_TRUE(completed.texts.empty());
  auto broken = ParseStreamEvent(
      "data: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":-1,"
      "\"output_tokens\":3}}}\n\n",
      kResponses);
  EXPECT_FALSE(broken.usage.has_value());
  EXPECT_TRUE(broken.usage_invalid);
}

// A transcription: token usage as input and output; duration usage apart, in seconds (rounded
// up), with the transcript counted; an answer that is not JSON is all transcript.
TEST(ParseResponseBody, Transcriptions) {
  constexpr UsageFields kAudio = UsageFields::kTranscription;
  std::string tokens =
      R"({"text":"hi there","usage":{"type":"tokens","input_tokens":30,"output_tokens":4}})";
  ResponseSummary a = ParseResponseBody(tokens, kAudio);
  ASSERT_TRUE(a.usage.has_value());
  EXPECT_EQ(a.usage->prompt_tokens, 30);
  EXPECT_EQ(a.usage->completion_tokens, 4);
  EXPECT_FALSE(a.audio_seconds.has_value());
  std::string duration = R"({"text":"hi there","usage":{"type":"duration","seconds":2.5}})";
  ResponseSummary b = ParseResponseBody(duration, kAudio);
  EXPECT_FALSE(b.usage.has_value());
  EXPECT_FALSE(b.usage_invalid);
  EXPECT_EQ(b.audio_seconds, 3);
  EXPECT_EQ(std::vector<std::string>(b.texts.begin(), b.texts.end()),
            (std::vector<std::string>{"hi there"}));
  std::string text = "hi there\n";
  ResponseSummary c = ParseResponseBody(text, kAudio);
  EXPECT_EQ(std::vector<std::string>(c.texts.begin(), c.texts.end()),
            (std::vector<std::string>{"hi there\n"}));
  for (std::string bad : {R"({"usage":{"type":"duration","seconds":-1}})",
                          R"({"usage":{"type":"tokens","input_tokens":3}})",
                          R"({"usage":{"seconds":3}})", R"({"usage":5})"}) {
    ResponseSummary d = ParseResponseBody(bad, kAudio);
    EXPECT_TRUE(d.usage_invalid) << bad;
    EXPECT_FALSE(d.usage.has_value() || d.audio_seconds.has_value()) << bad;
  }
  std::string none = R"({"text":"x","usage":null})";
  EXPECT_FALSE(ParseResponseBody(none, kAudio).usage_invalid);
}

}  // namespace
}  // namespace trl
