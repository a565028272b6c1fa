#include "proxy/request_fields.h"

#include <gtest/gtest.h>

#include <span>
#include <string>
#include <utility>
#include <vector>

#include "limits/token_counter.h"

namespace trl {
namespace {

// Extracts from a body kept until the next call: the texts may view it.
std::optional<FieldError> Extract(ApiEndpoint e, std::string body, RequestFields& out) {
  static std::string kept;
  kept = std::move(body);
  return ExtractRequestFields(e, kept, out);
}

std::vector<std::string> Texts(const RequestFields& f) {
  return std::vector<std::string>(f.texts.begin(), f.texts.end());
}

std::string At(const std::string& body, ByteSpan span) {
  return body.substr(span.offset, span.length);
}

// Each body sent to `endpoint` is refused, naming its param.
void ExpectRefused(ApiEndpoint endpoint,
                   const std::vector<std::pair<std::string, std::string>>& cases) {
  for (const auto& [body, param] : cases) {
    RequestFields f;
    auto err = Extract(endpoint, body, f);
    ASSERT_TRUE(err) << body;
    EXPECT_EQ(err->param, param) << body;
  }
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
  EXPECT_EQ(f.choices, 1);
  // tool_calls by their JSON text: the chat template renders them much like that.
  EXPECT_EQ(Texts(f), (std::vector<std::string>{"be brief", "bob", "hi there",
                                                R"([{"id":"c","type":"function",)"
                                                R"("function":{"name":"f","arguments":"{}"}}])"}));
}

TEST(RequestFields, UserNamesTheEndUserAndIsNeverCounted) {
  RequestFields f;
  ASSERT_FALSE(Extract(ApiEndpoint::kChatCompletions,
                       R"({"model":"m","user":"al\u0069ce","messages":[{"content":"x"}]})", f));
  EXPECT_EQ(f.user, "alice");
  EXPECT_EQ(Texts(f), std::vector<std::string>{"x"});
  ASSERT_FALSE(Extract(ApiEndpoint::kEmbeddings, R"({"model":"m","user":null,"input":"x"})", f));
  EXPECT_EQ(f.user, "");
  ASSERT_FALSE(Extract(ApiEndpoint::kResponses, R"({"model":"m","user":"bob","input":"x"})", f));
  EXPECT_EQ(f.user, "bob");
  const std::string long_user(kMaxUserBytes + 1, 'u');
  ExpectRefused(
      ApiEndpoint::kChatCompletions,
      {{R"({"model":"m","user":5,"messages":[{"content":"x"}]})", "user"},
       {R"({"model":"m","user":["a"],"messages":[{"content":"x"}]})", "user"},
       {R"({"model":"m","user":"a\nb","messages":[{"content":"x"}]})", "user"},
       {R"({"model":"m","user":"a\u0000","messages":[{"content":"x"}]})", "user"},
       {R"({"model":"m","user":")" + long_user + R"(","messages":[{"content":"x"}]})", "user"},
       // Two users: the backend would read another one than the gateway.
       {R"({"model":"m","user":"a","user":"b","messages":[{"content":"x"}]})", "user"}});
}

TEST(RequestFields, ModelPositionAllowsInPlaceReplacement) {
  RequestFields f;
  std::string body = R"({"messages":[{"content":"x"}], "model" : "alias" , "n":1})";
  ASSERT_FALSE(ExtractRequestFields(ApiEndpoint::kChatCompletions, body, f));
  EXPECT_EQ(At(body, f.model_span), "\"alias\"");
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
      // A misspelt null is an error, never an exception on the request path.
      {ApiEndpoint::kChatCompletions,
       R"({"model":"m","max_tokens":nul3,"messages":[{"content":"x"}]})", "max_tokens"},
      {ApiEndpoint::kChatCompletions, R"({"model":"m","stream":nulx,"messages":[{"content":"x"}]})",
       "stream"},
      {ApiEndpoint::kChatCompletions,
       R"({"model":"m","stream_options":nul,"messages":[{"content":"x"}]})", "stream_options"},
      {ApiEndpoint::kCompletions, R"({"model":"m","prompt":"x","n":nulll})", "n"},
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
  EXPECT_EQ(
      CountPromptTokens(f, counter, MediaTokens{}),
      counter.PerRequestOverhead() + counter.PerMessageOverhead() + counter.CountText("hello"));
}

// A counter that records what it is given as a chat and as texts on their own: 1 token a text,
// 100 a chat message.
class RecordingCounter final : public TokenCounter {
 public:
  int64_t CountText(std::string_view text) const override {
    alone.emplace_back(text);
    return 1;
  }
  int64_t PerMessageOverhead() const override { return 0; }
  int64_t PerRequestOverhead() const override { return 0; }
  int64_t CountChat(std::span<const ChatTurn> messages) const override {
    for (const ChatTurn& m : messages) {
      chat.emplace_back(m.role, std::vector<std::string>(m.texts.begin(), m.texts.end()));
    }
    return 100 * static_cast<int64_t>(messages.size());
  }
  mutable std::vector<std::string> alone;
  mutable std::vector<std::pair<std::string, std::vector<std::string>>> chat;
};

// A chat framing sees each message with its role and every text it holds (tool calls too);
// tools and the other top-level fields count on their own, and a null content counts nothing.
TEST(RequestFields, ChatMessagesReachTheCounterWithTheirRolesAndToolsApart) {
  RequestFields f;
  ASSERT_FALSE(Extract(ApiEndpoint::kChatCompletions, R"({"model":"m",
    "tools":[{"type":"function","function":{"name":"f"}}],
    "messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
                {"role":"assistant","content":null,"tool_calls":[{"id":"c","function":{"name":"f","arguments":"{}"}}]},
                {"role":"tool","tool_call_id":"c","content":"0"}],
    "response_format":{"type":"json_object"}})",
                       f));
  RecordingCounter counter;
  EXPECT_EQ(CountPromptTokens(f, counter, MediaTokens{}), 300 + 2);
  using Turn = std::pair<std::string, std::vector<std::string>>;
  EXPECT_EQ(counter.chat,
            (std::vector<Turn>{
                {"user", {"a", "b"}},
                {"assistant", {R"([{"id":"c","function":{"name":"f","arguments":"{}"}}])"}},
                {"tool", {"c", "0"}}}));
  EXPECT_EQ(counter.alone,
            (std::vector<std::string>{R"([{"type":"function","function":{"name":"f"}}])",
                                      R"({"type":"json_object"})"}));
}

// ----------------------------------------------------------------------------------------------
// Repeated keys: the backend keeps the last, the gateway would have read another.
// ----------------------------------------------------------------------------------------------

TEST(RequestFields, RepeatedTopLevelKeyIsRefused) {
  const std::pair<std::string, std::string> cases[] = {
      {R"({"model":"m","max_tokens":5,"messages":[{"content":"x"}],"max_tokens":100000})",
       "max_tokens"},
      // The same key however it is escaped: Python's json unescapes before it compares.
      {R"({"model":"m","max_tokens":5,"max\u005ftokens":9,"messages":[{"content":"x"}]})",
       "max_tokens"},
      {R"({"model":"m","messages":[{"content":"x"}],"model":"other"})", "model"},
      {R"({"model":"m","messages":[{"content":"x"}],"messages":[{"content":"y"}]})", "messages"},
      {R"({"model":"m","temperature":1,"messages":[{"content":"x"}],"temperature":0})",
       "temperature"},
      {R"({"model":"m","stream":false,"messages":[{"content":"x"}],"stream":true})", "stream"},
  };
  for (const auto& [body, param] : cases) {
    RequestFields f;
    auto err = Extract(ApiEndpoint::kChatCompletions, body, f);
    ASSERT_TRUE(err.has_value()) << body;
    EXPECT_EQ(err->param, param) << body;
    EXPECT_NE(err->message.find("Send each field once"), std::string::npos) << err->message;
  }
}

TEST(RequestFields, RepeatedKeyFoundAmongManyKeys) {
  // Past the linear search's few keys: the hash set must see the repeat too.
  std::string body = R"({"model":"m","messages":[{"content":"x"}])";
  for (int i = 0; i < 100; ++i) body += ",\"k" + std::to_string(i) + "\":1";
  RequestFields f;
  EXPECT_FALSE(Extract(ApiEndpoint::kChatCompletions, body + "}", f));
  auto err = Extract(ApiEndpoint::kChatCompletions, body + ",\"k3\":2}", f);
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->param, "k3");
  err = Extract(ApiEndpoint::kChatCompletions, body + ",\"k99\":2}", f);
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->param, "k99");
}

TEST(RequestFields, RepeatedKeyInStreamOptionsIsRefused) {
  RequestFields f;
  auto err = Extract(ApiEndpoint::kChatCompletions,
                     R"({"model":"m","stream":true,"messages":[{"content":"x"}],
                        "stream_options":{"include_usage":true,"include\u005fusage":false}})",
                     f);
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->param, "stream_options.include_usage");
  err = Extract(ApiEndpoint::kChatCompletions,
                R"({"model":"m","messages":[{"content":"x"}],
                   "stream_options":{"continuous_usage_stats":true,"continuous_usage_stats":1}})",
                f);
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->param, "stream_options.continuous_usage_stats");
}

TEST(RequestFields, RepeatedKeyInAMessageCountsBoth) {
  RequestFields f;
  ASSERT_FALSE(Extract(ApiEndpoint::kChatCompletions,
                       R"({"model":"m","messages":[{"role":"user","content":"a",)"
                       R"("content":"b c"}]})",
                       f));
  EXPECT_EQ(Texts(f), (std::vector<std::string>{"a", "b c"}));
}

// ----------------------------------------------------------------------------------------------
// The output cap and the number of choices.
// ----------------------------------------------------------------------------------------------

TEST(RequestFields, CapNullIsAbsentAndItsSpanIsKept) {
  RequestFields f;
  std::string body = R"({"model":"m","max_tokens": null ,"max_completion_tokens":null,)"
                     R"("messages":[{"content":"x"}]})";
  ASSERT_FALSE(ExtractRequestFields(ApiEndpoint::kChatCompletions, body, f));
  EXPECT_FALSE(f.max_tokens.has_value());
  EXPECT_EQ(At(body, f.max_tokens_span), "null");
  EXPECT_EQ(At(body, f.max_completion_tokens_span), "null");
}

TEST(RequestFields, CapZeroIsRefusedSinceTheBackendReadsItAsNoCap) {
  for (std::string name : {"max_tokens", "max_completion_tokens"}) {
    RequestFields f;
    auto err = Extract(ApiEndpoint::kChatCompletions,
                       R"({"model":"m","messages":[{"content":"x"}],")" + name + R"(":0})", f);
    ASSERT_TRUE(err.has_value()) << name;
    EXPECT_EQ(err->param, name);
    EXPECT_NE(err->message.find("at least 1"), std::string::npos) << err->message;
  }
  RequestFields f;
  auto err = Extract(ApiEndpoint::kCompletions, R"({"model":"m","prompt":"x","max_tokens":0})", f);
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->param, "max_tokens");
}

TEST(RequestFields, CapBoundsAndTypes) {
  const std::pair<std::string, bool> cases[] = {
      {"1", true},    {"10000000", true}, {"10000001", false},
      {"5.0", false}, {"1e3", false},     {"true", false},
      {"-0", false},  {"[5]", false},     {"18446744073709551616", false},
  };
  for (const auto& [value, ok] : cases) {
    RequestFields f;
    auto err =
        Extract(ApiEndpoint::kChatCompletions,
                R"({"model":"m","messages":[{"content":"x"}],"max_tokens":)" + value + "}", f);
    EXPECT_EQ(!err.has_value(), ok) << value;
    if (err) EXPECT_EQ(err->param, "max_tokens");
  }
}

TEST(RequestFields, EscapedCapKeyIsRead) {
  RequestFields f;
  std::string body = R"({"model":"m","max\u005ftokens":7,"messages":[{"content":"x"}]})";
  ASSERT_FALSE(ExtractRequestFields(ApiEndpoint::kChatCompletions, body, f));
  EXPECT_EQ(f.max_tokens, 7);
  EXPECT_EQ(At(body, f.max_tokens_span), "7");
}

TEST(RequestFields, ChoicesAreNTimesPrompts) {
  struct Case {
    ApiEndpoint endpoint;
    std::string rest;
    int64_t choices;
  };
  const Case cases[] = {
      {ApiEndpoint::kChatCompletions, R"("messages":[{"content":"x"}])", 1},
      {ApiEndpoint::kChatCompletions, R"("messages":[{"content":"x"}],"n":null)", 1},
      {ApiEndpoint::kChatCompletions, R"("messages":[{"content":"x"}],"n":3)", 3},
      {ApiEndpoint::kCompletions, R"("prompt":"x","n":2,"best_of":5)", 5},
      {ApiEndpoint::kCompletions, R"("prompt":"x","n":4,"best_of":2)", 4},
      {ApiEndpoint::kCompletions, R"("prompt":["a","b","c"],"n":2)", 6},
      {ApiEndpoint::kCompletions, R"("prompt":[[1,2],[3]])", 2},
      {ApiEndpoint::kCompletions, R"("prompt":[1,2,3])", 1},
      {ApiEndpoint::kCompletions, R"("prompt":[])", 1},
      {ApiEndpoint::kCompletions, R"("prompt":["a",[1]],"best_of":3)", 6},
  };
  for (const auto& c : cases) {
    RequestFields f;
    auto err = Extract(c.endpoint, R"({"model":"m",)" + c.rest + "}", f);
    ASSERT_FALSE(err) << c.rest << ": " << err->message;
    EXPECT_EQ(f.choices, c.choices) << c.rest;
  }
}

TEST(RequestFields, ChoiceCountsOutOfRangeAreRefused) {
  const std::pair<std::string, std::string> cases[] = {
      {R"("n":0)", "n"},   {R"("n":129)", "n"},           {R"("n":1.5)", "n"},
      {R"("n":"2")", "n"}, {R"("best_of":0)", "best_of"}, {R"("best_of":1000)", "best_of"},
  };
  for (const auto& [rest, param] : cases) {
    RequestFields f;
    auto err = Extract(ApiEndpoint::kCompletions, R"({"model":"m","prompt":"x",)" + rest + "}", f);
    ASSERT_TRUE(err.has_value()) << rest;
    EXPECT_EQ(err->param, param);
  }
}

TEST(RequestFields, EmbeddingsHaveNoCapOrChoices) {
  RequestFields f;
  EXPECT_FALSE(
      Extract(ApiEndpoint::kEmbeddings, R"({"model":"e","input":"x","max_tokens":0,"n":0})", f));
  EXPECT_FALSE(f.max_tokens.has_value());
  EXPECT_EQ(f.choices, 1);
}

// ----------------------------------------------------------------------------------------------
// Where the rewritten fields sit.
// ----------------------------------------------------------------------------------------------

TEST(RequestFields, SpansOfTheRewrittenFields) {
  RequestFields f;
  std::string body =
      " \n{ \"model\"\t:\t\"a\\\"b\" ,\"max_tokens\" :  12\n, \"stream\":true, "
      "\"stream_options\" : "
      "{ \"x\": [1, 2] , \"include_usage\" : false } , \"messages\":[{\"content\":\"x\"}]}";
  ASSERT_FALSE(ExtractRequestFields(ApiEndpoint::kChatCompletions, body, f));
  EXPECT_EQ(f.after_root_brace, 3u);
  EXPECT_EQ(At(body, f.model_span), "\"a\\\"b\"");
  EXPECT_EQ(f.model, "a\"b");
  EXPECT_EQ(At(body, f.max_tokens_span), "12");
  EXPECT_FALSE(f.max_completion_tokens_span.Present());
  EXPECT_TRUE(f.has_stream_options);
  EXPECT_EQ(At(body, f.stream_options_span), "{ \"x\": [1, 2] , \"include_usage\" : false }");
  EXPECT_EQ(f.stream_options_members, 2);
  EXPECT_EQ(At(body, f.include_usage_span), "false");
  EXPECT_FALSE(f.include_usage);
}

TEST(RequestFields, StreamOptionsNullAndEmpty) {
  RequestFields f;
  std::string body = R"({"model":"m","stream_options":null ,"messages":[{"content":"x"}]})";
  ASSERT_FALSE(ExtractRequestFields(ApiEndpoint::kChatCompletions, body, f));
  EXPECT_FALSE(f.has_stream_options);
  EXPECT_EQ(At(body, f.stream_options_span), "null");
  body = R"({"model":"m","stream_options":{"include_usage":null},"messages":[{"content":"x"}]})";
  ASSERT_FALSE(ExtractRequestFields(ApiEndpoint::kChatCompletions, body, f));
  EXPECT_TRUE(f.has_stream_options);
  EXPECT_FALSE(f.include_usage);
  EXPECT_EQ(At(body, f.include_usage_span), "null");
  body = R"({"model":"m","stream_options":{},"messages":[{"content":"x"}]})";
  ASSERT_FALSE(ExtractRequestFields(ApiEndpoint::kChatCompletions, body, f));
  EXPECT_EQ(f.stream_options_members, 0);
  EXPECT_FALSE(f.include_usage_span.Present());
}

// ----------------------------------------------------------------------------------------------
// Everything a model reads is counted.
// ----------------------------------------------------------------------------------------------

TEST(RequestFields, ContentPartsTextMediaAndOthers) {
  RequestFields f;
  ASSERT_FALSE(Extract(ApiEndpoint::kChatCompletions, R"({"model":"m","messages":[{"content":[
      {"type":"text","text":"one"},
      {"type":"refusal","refusal":"two"},
      "three",
      {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"},"text":"not read"},
      {"type":"input_image","image_url":"https://x/y.png"},
      {"type":"input_audio","input_audio":{"data":"BBBB","format":"wav"}},
      {"type":"audio_url","audio_url":{"url":"https://x/a.wav"}},
      {"type":"video_url","video_url":{"url":"https://x/v.mp4"}},
      {"type":"file","file":{"file_data":"CCCC"}},
      {"text":"no type","type":"other"},
      {"text":"untyped"},
      {"type":"text","type":"image_url","image_url":{"url":"u"},"text":"last type wins"}]}]})",
                       f));
  EXPECT_EQ(Texts(f),
            (std::vector<std::string>{"one", "two", "three", R"({"text":"no type","type":"other"})",
                                      R"({"text":"untyped"})"}));
  EXPECT_EQ(f.media.images, 3);
  EXPECT_EQ(f.media.audios, 2);
  EXPECT_EQ(f.media.videos, 1);
  EXPECT_EQ(f.media.files, 1);
}

TEST(RequestFields, EveryMessageMemberButAKnownRoleCounts) {
  RequestFields f;
  ASSERT_FALSE(Extract(ApiEndpoint::kChatCompletions, R"({"model":"m","messages":[
      {"role":"assistant","content":null,"reasoning_content":"think",
       "function_call":{"name":"f","arguments":"{\"a\":1}"}},
      {"role":"tool","tool_call_id":"call_1","content":"42","weight":3},
      {"role":"narrator","content":"x"}]})",
                       f));
  EXPECT_EQ(Texts(f), (std::vector<std::string>{"think", R"({"name":"f","arguments":"{\"a\":1}"})",
                                                "call_1", "42", "narrator", "x"}));
  EXPECT_EQ(f.messages, 3);
}

TEST(RequestFields, TopLevelFieldsTheModelReadsCount) {
  RequestFields f;
  ASSERT_FALSE(Extract(ApiEndpoint::kChatCompletions, R"({"model":"m",
      "tools":[{"type":"function","function":{"name":"get","parameters":{}}}],
      "tool_choice":"auto","response_format":{"type":"json_object"},
      "chat_template_kwargs":{"enable_thinking":true},"documents":[{"text":"doc"}],
      "user":"u","stop":["s"],"seed":1,"metadata":{"k":"v"},"service_tier":"auto",
      "logit_bias":{"1":2},"temperature":0.5,"logprobs":true,"n":1,"stream":false,
      "messages":[{"role":"user","content":"x"}]})",
                       f));
  EXPECT_EQ(Texts(f), (std::vector<std::string>{
                          R"([{"type":"function","function":{"name":"get","parameters":{}}}])",
                          "auto", R"({"type":"json_object"})", R"({"enable_thinking":true})",
                          R"([{"text":"doc"}])", "x"}));
}

TEST(RequestFields, CompletionsCountSuffixAndOtherFields) {
  RequestFields f;
  ASSERT_FALSE(Extract(ApiEndpoint::kCompletions,
                       R"({"model":"m","prompt":"p","suffix":"s","user":"u","echo":true})", f));
  EXPECT_EQ(Texts(f), (std::vector<std::string>{"p", "s"}));
}

TEST(RequestFields, EmbeddingsCountTheInputOnly) {
  RequestFields f;
  ASSERT_FALSE(Extract(ApiEndpoint::kEmbeddings,
                       R"({"model":"e","input":["a","b"],"tools":[1],"dimensions":8,"x":"y"})", f));
  EXPECT_EQ(Texts(f), (std::vector<std::string>{"a", "b"}));
}

TEST(RequestFields, MediaPartsCostTheirConfiguredTokens) {
  RequestFields f;
  ASSERT_FALSE(Extract(ApiEndpoint::kChatCompletions, R"({"model":"m","messages":[{"content":[
      {"type":"image_url","image_url":{"url":"u"}},{"type":"image","image":"u"},
      {"type":"input_audio","input_audio":{}},{"type":"video_url","video_url":{}},
      {"type":"input_file","file_id":"f"}]}]})",
                       f));
  ApproxTokenCounter counter;
  const int64_t base = counter.PerRequestOverhead() + counter.PerMessageOverhead();
  EXPECT_EQ(CountPromptTokens(f, counter, MediaTokens{}), base + 2 * 1024 + 1024 + 4096 + 1024);
  EXPECT_EQ(
      CountPromptTokens(f, counter, MediaTokens{.image = 10, .audio = 1, .video = 0, .file = 100}),
      base + 2 * 10 + 1 + 0 + 100);
  // Hostile numbers saturate instead of overflowing.
  EXPECT_EQ(CountPromptTokens(f, counter, MediaTokens{.image = kMaxTokenCount}), kMaxTokenCount);
}

// The Responses API (POST /v1/responses): instructions, input and tools are what the model
// reads; max_output_tokens is the cap; ids and settings are not counted.
TEST(RequestFields, ResponsesStringInput) {
  RequestFields f;
  auto err = Extract(ApiEndpoint::kResponses,
                     R"({"model":"m","instructions":"Be brief.","input":"Hello there",
                        "tools":[{"type":"function","name":"f"}],"max_output_tokens":50,
                        "previous_response_id":"resp_1","store":false,"stream":true,
                        "background":false,"metadata":{"a":"b"},"user":"u"})",
                     f);
  ASSERT_FALSE(err) << err->message;
  EXPECT_TRUE(f.stream);
  EXPECT_EQ(f.max_tokens, 50);
  EXPECT_EQ(f.choices, 1);
  EXPECT_EQ(f.messages, 0);
  EXPECT_EQ(Texts(f), (std::vector<std::string>{"Be brief.", "Hello there",
                                                R"([{"type":"function","name":"f"}])"}));
}

// Input items: each is one message of the chat template (a function call or its output too);
// every member counts but type, id, status and a known role; content parts as in chat.
TEST(RequestFields, ResponsesInputItems) {
  RequestFields f;
  auto err = Extract(ApiEndpoint::kResponses, R"({"model":"m","input":[
      {"role":"user","content":"Hi"},
      {"type":"message","id":"msg_1","status":"completed","role":"assistant",
       "content":[{"type":"output_text","text":"Yo","annotations":[]}]},
      {"type":"function_call","id":"fc_1","call_id":"c1","name":"get","arguments":"{}"},
      {"type":"function_call_output","call_id":"c1","output":"42"},
      {"role":"user","content":[{"type":"input_text","text":"and?"},
                                {"type":"input_image","image_url":"data:image/png;base64,AAAA"}]}]})",
                     f);
  ASSERT_FALSE(err) << err->message;
  EXPECT_EQ(f.messages, 5);
  EXPECT_EQ(f.media.images, 1);
  EXPECT_FALSE(f.max_tokens.has_value());
  EXPECT_EQ(Texts(f),
            (std::vector<std::string>{"Hi", "Yo", "c1", "get", "{}", "c1", "42", "and?"}));
}

TEST(RequestFields, ResponsesRefusals) {
  ExpectRefused(ApiEndpoint::kResponses,
                {
                    {R"({"model":"m","input":"x","background":true})", "background"},
                    {R"({"model":"m","instructions":"x"})", "input"},
                    {R"({"model":"m","input":"x","max_output_tokens":0})", "max_output_tokens"},
                    {R"({"model":"m","input":7})", "input"},
                    {R"({"model":"m","input":["x"]})", "input[0]"},
                    {R"({"model":"m","input":[{"content":5}]})", "input[0].content"},
                    {R"({"model":"m","input":"x","max_output_tokens":5,"max_output_tokens":9})",
                     "max_output_tokens"},
                });
}

// vLLM's rerank: each document is scored in one sequence with the query, so the query counts
// once per document; documents as strings or objects (by their JSON text).
TEST(RequestFields, RerankCountsTheQueryOncePerDocument) {
  RequestFields f;
  auto err = Extract(ApiEndpoint::kRerank,
                     R"({"documents":["a b",{"text":"c"},"d"],"model":"m","query":"q?",
                        "top_n":2,"return_documents":true})",
                     f);
  ASSERT_FALSE(err) << err->message;
  EXPECT_EQ(Texts(f), (std::vector<std::string>{"a b", R"({"text":"c"})", "d", "q?", "q?", "q?"}));
  EXPECT_FALSE(f.stream);
  ExpectRefused(ApiEndpoint::kRerank,
                {{R"({"model":"m","documents":["a"]})", "query"},
                 {R"({"model":"m","query":"q"})", "documents"},
                 {R"({"model":"m","query":"q","documents":"a"})", "documents"},
                 {R"({"model":"m","query":5,"documents":["a"]})", "query"},
                 {R"({"model":"m","query":"q","documents":[]})", "documents"}});
}

// vLLM's score: text_1 and text_2, each a string or a list; a single one is paired with every
// item of the other (so counted that many times), two lists pair item by item.
TEST(RequestFields, ScorePairsTheTexts) {
  RequestFields f;
  ASSERT_FALSE(Extract(ApiEndpoint::kScore, R"({"model":"m","text_1":"q","text_2":["a","b"]})", f));
  EXPECT_EQ(Texts(f), (std::vector<std::string>{"q", "a", "b", "q"}));
  ASSERT_FALSE(
      Extract(ApiEndpoint::kScore, R"({"model":"m","text_1":["x","y"],"text_2":["a","b"]})", f));
  EXPECT_EQ(Texts(f), (std::vector<std::string>{"x", "y", "a", "b"}));
  ASSERT_FALSE(Extract(ApiEndpoint::kScore, R"({"text_2":"a","text_1":"x","model":"m"})", f));
  EXPECT_EQ(Texts(f), (std::vector<std::string>{"a", "x"}));
  ExpectRefused(ApiEndpoint::kScore,
                {{R"({"model":"m","text_1":"q"})", "text_2"},
                 {R"({"model":"m","text_2":"q"})", "text_1"},
                 {R"({"model":"m","text_1":["a","b"],"text_2":["c","d","e"]})", "text_2"},
                 {R"({"model":"m","text_1":[1],"text_2":"c"})", "text_1"}});
}

// /tokenize and /detokenize are not charged: only the model is read (and must be there).
TEST(RequestFields, TokenizeReadsOnlyTheModel) {
  RequestFields f;
  ASSERT_FALSE(Extract(ApiEndpoint::kTokenize, R"({"model":"m","prompt":"hello"})", f));
  EXPECT_EQ(f.model, "m");
  EXPECT_TRUE(f.texts.empty());
  ASSERT_FALSE(Extract(ApiEndpoint::kDetokenize, R"({"model":"m","tokens":[1,2]})", f));
  EXPECT_TRUE(f.texts.empty());
  auto missing = Extract(ApiEndpoint::kDetokenize, R"({"tokens":[1,2]})", f);
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->param, "model");
}

}  // namespace
}  // namespace trl
