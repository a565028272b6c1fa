#include "proxy/sse.h"

#include <gtest/gtest.h>

namespace trl {
namespace {

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
      "data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hello\"}}]}\n\n");
  EXPECT_FALSE(e.done);
  EXPECT_FALSE(e.usage_only);
  EXPECT_FALSE(e.usage.has_value());
  ASSERT_EQ(e.texts.size(), 1u);
  EXPECT_EQ(e.texts[0], "hello");
}

TEST(ParseStreamEvent, UsageChunk) {
  auto e = ParseStreamEvent(
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":5,"
      "\"total_tokens\":12}}\n\n");
  EXPECT_TRUE(e.usage_only);
  ASSERT_TRUE(e.usage.has_value());
  EXPECT_EQ(e.usage->prompt_tokens, 7);
  EXPECT_EQ(e.usage->completion_tokens, 5);
}

TEST(ParseStreamEvent, DoneAndNonJson) {
  EXPECT_TRUE(ParseStreamEvent("data: [DONE]\n\n").done);
  auto e = ParseStreamEvent(": keep-alive\n\n");
  EXPECT_FALSE(e.done);
  EXPECT_TRUE(e.texts.empty());
}

TEST(ParseResponseBody, ChatCompletion) {
  std::string body =
      "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"a b c\"}}],"
      "\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":3,\"total_tokens\":13}}";
  auto r = ParseResponseBody(body);
  ASSERT_TRUE(r.usage.has_value());
  EXPECT_EQ(r.usage->Total(), 13);
  ASSERT_EQ(r.texts.size(), 1u);
  EXPECT_EQ(r.texts[0], "a b c");
}

TEST(ParseResponseBody, EmbeddingsUsageHasNoCompletion) {
  std::string body = "{\"data\":[],\"usage\":{\"prompt_tokens\":4,\"total_tokens\":4}}";
  auto r = ParseResponseBody(body);
  ASSERT_TRUE(r.usage.has_value());
  EXPECT_EQ(r.usage->prompt_tokens, 4);
  EXPECT_EQ(r.usage->completion_tokens, 0);
}

}  // namespace
}  // namespace trl
