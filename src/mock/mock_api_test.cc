#include "mock/mock_api.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

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
  // "be brief", "a b c" and the image part's url "x"; not the roles, not the parts' types.
  EXPECT_EQ(request.prompt_tokens, 2 + 3 + 1 + 3 * kTokensPerMessage);
  EXPECT_EQ(request.max_tokens, 0);
  EXPECT_FALSE(request.stream);
  EXPECT_FALSE(request.ToolCall());
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
      MustFail(MockEndpoint::kCompletions, R"({"model":"mock-model","prompt":"x","max_tokens":-1})")
          .param,
      "max_tokens");
}

TEST(MockApiTest, PlansAnswerLength) {
  MockOptions options = Options();  // max_output 4
  MockRequest request;
  request.prompt_tokens = 5;
  // No cap: --default-max-output words (here --max-output's), ended by that limit.
  MockAnswer answer = PlanMockAnswer(request, options);
  EXPECT_EQ(answer.words, 4);
  EXPECT_EQ(answer.finish_reason, "length");
  EXPECT_EQ(answer.usage.Total(), 9);
  EXPECT_FALSE(answer.tool_call);
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

TEST(MockApiTest, UncappedAnswersHaveTheDefaultLength) {
  MockOptions options = Options();  // max_output 4
  options.default_max_output = 10;
  MockRequest request;
  MockAnswer answer = PlanMockAnswer(request, options);
  EXPECT_EQ(answer.words, 10);  // beyond --max-output, which bounds capped answers only
  EXPECT_EQ(answer.finish_reason, "length");
  request.max_tokens = 7;
  answer = PlanMockAnswer(request, options);
  EXPECT_EQ(answer.words, 4);
  EXPECT_EQ(answer.finish_reason, "stop");
  options.default_max_output = 2;
  request.max_tokens = 0;
  EXPECT_EQ(PlanMockAnswer(request, options).words, 2);
}

// Python's json keeps the last of repeated keys, whole, in every object; null is None.
TEST(MockApiTest, LastOfRepeatedKeysWins) {
  MockOptions options = Options();
  const std::string messages = R"("messages":[{"role":"user","content":"hi"}])";
  auto parse = [&](const std::string& members) {
    return MustParse(MockEndpoint::kChat, "{" + messages + "," + members + "}", options);
  };
  EXPECT_FALSE(
      parse(R"("model":"mock-model","stream":true,"stream_options":{"include_usage":true},)"
            R"("stream_options":{})")
          .include_usage);
  EXPECT_FALSE(parse(R"("model":"mock-model","stream_options":{"include_usage":true},)"
                     R"("stream_options":null)")
                   .include_usage);
  EXPECT_FALSE(parse(R"("model":"mock-model","stream_options":{"include_usage":true,)"
                     R"("include_usage":false})")
                   .include_usage);
  EXPECT_FALSE(parse(R"("model":"mock-model","stream_options":{"include_usage":true,)"
                     R"("include_usage":null})")
                   .include_usage);
  EXPECT_TRUE(parse(R"("model":"mock-model","stream_options":{"include_usage":false},)"
                    R"("stream_options":{"include_usage":true})")
                  .include_usage);
  EXPECT_EQ(parse(R"("model":"mock-model","max_tokens":1,"max_tokens":null)").max_tokens, 0);
  EXPECT_EQ(parse(R"("model":"mock-model","max_tokens":null,"max_tokens":3)").max_tokens, 3);
  EXPECT_EQ(parse(R"("model":"mock-model","max_tokens":-5,"max_tokens":3)").max_tokens, 3);
  EXPECT_EQ(parse(R"("model":"mock-model","max_completion_tokens":2,"max_completion_tokens":null,)"
                  R"("max_tokens":3)")
                .max_tokens,
            3);
  EXPECT_FALSE(parse(R"("model":"mock-model","stream":true,"stream":false)").stream);
  EXPECT_FALSE(parse(R"("model":"mock-model","stream":true,"stream":null)").stream);
  EXPECT_TRUE(parse(R"("model":"mock-model","stream":"yes","stream":true)").stream);
  EXPECT_EQ(parse(R"("model":"mock-model","model":"other")").model, "other");
  // The root's messages, and a message's members, are replaced whole.
  MockRequest replaced =
      MustParse(MockEndpoint::kChat,
                R"({"model":"mock-model","messages":[{"content":"a b c d e"},{"content":"f"}],)"
                R"("messages":[{"content":"one two","content":"three","name":"n","name":"x y"}]})",
                options);
  EXPECT_EQ(replaced.prompt_tokens, 1 + 2 + kTokensPerMessage);
  // An earlier bad value does not matter once replaced; a later one does.
  EXPECT_EQ(MustFail(MockEndpoint::kChat,
                     "{" + messages + R"(,"model":"mock-model","stream":true,"stream":7})")
                .param,
            "stream");
}

// vLLM: `max_completion_tokens or max_tokens`, so 0 counts as absent.
TEST(MockApiTest, CapFollowsPythonTruthiness) {
  MockOptions options = Options();
  const std::string head = R"({"model":"mock-model","messages":[{"content":"x"}],)";
  auto cap = [&](const std::string& members) {
    return MustParse(MockEndpoint::kChat, head + members + "}", options).max_tokens;
  };
  EXPECT_EQ(cap(R"("max_tokens":0)"), 0);
  EXPECT_EQ(cap(R"("max_completion_tokens":0)"), 0);
  EXPECT_EQ(cap(R"("max_completion_tokens":0,"max_tokens":5)"), 5);
  EXPECT_EQ(cap(R"("max_completion_tokens":3,"max_tokens":0)"), 3);
  EXPECT_EQ(cap(R"("max_completion_tokens":null,"max_tokens":6)"), 6);
  EXPECT_EQ(cap(R"("max_tokens":9,"max_completion_tokens":2)"), 2);
  for (const char* bad : {R"("max_tokens":-1)", R"("max_tokens":1.5)", R"("max_tokens":"5")",
                          R"("max_tokens":true)", R"("max_tokens":18446744073709551615)"}) {
    MockError error = MustFail(MockEndpoint::kChat, head + bad + "}");
    EXPECT_EQ(error.status, 400) << bad;
    EXPECT_EQ(error.param, "max_tokens") << bad;
    EXPECT_EQ(error.message, "max_tokens must be an integer >= 0") << bad;
  }
  EXPECT_EQ(
      MustFail(MockEndpoint::kChat, head + R"("max_tokens":4,"max_completion_tokens":-2})").param,
      "max_completion_tokens");
}

// Every string the model reads counts, except a message's role and a content part's type.
TEST(MockApiTest, PromptCountsEverythingTheModelReads) {
  MockOptions options = Options();
  MockRequest request = MustParse(
      MockEndpoint::kChat,
      R"({"model":"mock-model","messages":[)"
      R"({"role":"system","content":"be brief","name":"rules"},)"
      R"({"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function",)"
      R"("function":{"name":"get_weather","arguments":"{\"city\": \"Paris\"}"}}]},)"
      R"({"role":"tool","tool_call_id":"c1","content":[{"type":"text","text":"sunny and warm"}]},)"
      R"({"role":"user","content":"thanks","weight":2,"extra":{"note":"two words"}}],)"
      R"("tools":[{"type":"function","function":{"name":"get_weather",)"
      R"("description":"Weather of a city","parameters":{"type":"object",)"
      R"("properties":{"city":{"type":"string"}}}}}],)"
      R"("functions":[{"name":"legacy fn"}],"response_format":{"type":"json_object"},)"
      R"("tool_choice":"none"})",
      options);
  // Per message: content and name; id, type, name and the 2-word arguments; tool_call_id and
  // the part's text; content and the nested note.
  const int64_t messages = (2 + 1) + (1 + 1 + 1 + 2) + (1 + 3) + (1 + 2) + 4 * kTokensPerMessage;
  // tools: function, get_weather, Weather of a city, object, string; functions: 2; format: 1.
  const int64_t rendered = (1 + 1 + 4 + 1 + 1) + 2 + 1;
  EXPECT_EQ(request.prompt_tokens, messages + rendered);
  EXPECT_FALSE(request.ToolCall());  // tool_choice "none"

  // Completions do not read chat-only members.
  EXPECT_EQ(
      MustParse(MockEndpoint::kCompletions,
                R"({"model":"mock-model","prompt":"a b","tools":[{"function":{"name":"f"}}]})",
                options)
          .prompt_tokens,
      2);
  for (const char* bad : {R"([{"content":[{"type":"text","text":"x"},7]}])", R"([{"content":7}])",
                          "[]", "[7]", R"({"content":"x"})"}) {
    EXPECT_EQ(MustFail(MockEndpoint::kChat,
                       R"({"model":"mock-model","messages":)" + std::string(bad) + "}")
                  .param,
              "messages")
        << bad;
  }
}

TEST(MockApiTest, TokenIdInputsCountOnePerId) {
  MockOptions options = Options();
  auto prompt = [&](const std::string& value) {
    return MustParse(MockEndpoint::kCompletions, R"({"model":"mock-model","prompt":)" + value + "}",
                     options)
        .prompt_tokens;
  };
  EXPECT_EQ(prompt("[1,2,3]"), 3);
  EXPECT_EQ(prompt("[[1,2],[3]]"), 3);
  EXPECT_EQ(prompt(R"(["a b",[7,8,9]])"), 5);
  MockRequest embeddings = MustParse(
      MockEndpoint::kEmbeddings, R"({"model":"mock-model","input":[[1,2],[3],[1,2]]})", options);
  EXPECT_EQ(embeddings.prompt_tokens, 5);
  ASSERT_EQ(embeddings.input_hashes.size(), 3u);  // one vector per id array
  EXPECT_EQ(embeddings.input_hashes[0], embeddings.input_hashes[2]);
  EXPECT_NE(embeddings.input_hashes[0], embeddings.input_hashes[1]);
  EXPECT_EQ(MustParse(MockEndpoint::kEmbeddings, R"({"model":"mock-model","input":[5,6]})", options)
                .input_hashes.size(),
            1u);
  for (const char* bad : {"[]", "[[]]", "[1.5]", R"([1,"a"])", R"(["a",[1,"b"]])", "{}", "true"}) {
    EXPECT_EQ(MustFail(MockEndpoint::kCompletions,
                       R"({"model":"mock-model","prompt":)" + std::string(bad) + "}")
                  .param,
              "prompt")
        << bad;
  }
  EXPECT_EQ(MustFail(MockEndpoint::kEmbeddings, R"({"model":"mock-model","input":null})").param,
            "input");
}

TEST(MockApiTest, ToolsTurnTheAnswerIntoACall) {
  MockOptions options = Options();
  const std::string head = R"({"model":"mock-model","messages":[{"content":"x"}],)";
  auto tool = [&](const std::string& members) {
    return MustParse(MockEndpoint::kChat, head + members + "}", options).tool_name;
  };
  EXPECT_EQ(tool(R"("tools":[{"type":"function","function":{"name":"first"}},)"
                 R"({"type":"function","function":{"name":"second"}}])"),
            "first");
  EXPECT_EQ(tool(R"("tools":[{"function":{"name":"a"},"function":{"name":"b"}}])"), "b");
  EXPECT_EQ(tool(R"("tools":[{"function":{"name":"f"}}],"tool_choice":"auto")"), "f");
  EXPECT_EQ(tool(R"("tools":[{"function":{"name":"f"}}],"tool_choice":"required")"), "f");
  EXPECT_EQ(tool(R"("tools":[{"function":{"name":"f"}}],"tool_choice":null)"), "f");
  EXPECT_EQ(tool(R"("tools":[{"function":{"name":"f"}}],"tool_choice":"none")"), "");
  EXPECT_EQ(tool(R"("tools":[{"function":{"name":"f"}}],"tools":[])"), "");
  EXPECT_EQ(tool(R"("tools":null)"), "");
  for (const char* bad :
       {R"("tools":{})", R"("tools":[7])", R"("tools":[{"function":{}}])",
        R"("tools":[{"function":{"name":""}}])", R"("tools":[{"function":{"name":3}}])"}) {
    EXPECT_EQ(MustFail(MockEndpoint::kChat, head + bad + "}").param, "tools") << bad;
  }

  MockRequest request =
      MustParse(MockEndpoint::kChat,
                head + R"("max_tokens":3,"tools":[{"function":{"name":"f"}}]})", options);
  MockAnswer answer = PlanMockAnswer(request, options);
  EXPECT_TRUE(answer.tool_call);
  EXPECT_EQ(answer.words, 3);
  EXPECT_EQ(answer.finish_reason, "tool_calls");
  EXPECT_EQ(answer.usage.completion_tokens, 3);
}

TEST(MockApiTest, ToolCallBodies) {
  EXPECT_EQ(Build([](std::string& out) { AppendToolArguments(out, 2); }), R"({"text":"w1 w2"})");
  EXPECT_EQ(Build([](std::string& out) { AppendToolCallId(out, 7); }), "call_mock7");
  MockResponseMeta meta{"chatcmpl-mock7", 1700000000, "mock-model", "call_mock7", "get_weather"};
  MockAnswer answer{2, "tool_calls", {5, 2}, true};
  EXPECT_EQ(
      Build([&](std::string& out) {
        AppendCompletionBody(out, MockEndpoint::kChat, meta, answer, MockUsageReport::kValid);
      }),
      R"({"id":"chatcmpl-mock7","object":"chat.completion","created":1700000000,"model":"mock-model",)"
      R"("choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[)"
      R"({"id":"call_mock7","type":"function","function":{"name":"get_weather",)"
      R"("arguments":"{\"text\":\"w1 w2\"}"}}]},"logprobs":null,"finish_reason":"tool_calls"}],)"
      R"("usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}})");
}

TEST(MockApiTest, ToolCallStreamEvents) {
  MockResponseMeta meta{"chatcmpl-mock1", 5, "m", "call_mock1", "f"};
  const std::string prefix =
      R"(data: {"id":"chatcmpl-mock1","object":"chat.completion.chunk","created":5,"model":"m",)";
  EXPECT_EQ(Build([&](std::string& out) { AppendStreamToolCallHead(out, meta); }),
            prefix + R"("choices":[{"index":0,"delta":{"role":"assistant","content":null,)"
                     R"("tool_calls":[{"index":0,"id":"call_mock1","type":"function",)"
                     R"("function":{"name":"f","arguments":""}}]},"logprobs":null,)"
                     R"("finish_reason":null}]})"
                     "\n\n");
  auto fragment = [&](int64_t word, int64_t words) {
    return Build([&](std::string& out) { AppendStreamToolCallToken(out, meta, word, words); });
  };
  const std::string before =
      prefix +
      R"("choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":)";
  const std::string after = R"(}}]},"logprobs":null,"finish_reason":null}]})"
                            "\n\n";
  EXPECT_EQ(fragment(1, 3), before + R"("{\"text\":\"w1")" + after);
  EXPECT_EQ(fragment(2, 3), before + R"(" w2")" + after);
  EXPECT_EQ(fragment(3, 3), before + R"(" w3\"}")" + after);
  EXPECT_EQ(fragment(1, 1), before + R"("{\"text\":\"w1\"}")" + after);
}

TEST(MockApiTest, AcceptsGzip) {
  EXPECT_TRUE(AcceptsGzip("gzip"));
  EXPECT_TRUE(AcceptsGzip("gzip, deflate, br"));
  EXPECT_TRUE(AcceptsGzip("br;q=1.0, GZip ; q=0.5"));
  EXPECT_TRUE(AcceptsGzip("gzip;q=0.001"));
  EXPECT_TRUE(AcceptsGzip("gzip;level=1"));
  EXPECT_FALSE(AcceptsGzip(""));
  EXPECT_FALSE(AcceptsGzip("identity"));
  EXPECT_FALSE(AcceptsGzip("deflate, br"));
  EXPECT_FALSE(AcceptsGzip("*"));
  EXPECT_FALSE(AcceptsGzip("gzip;q=0"));
  EXPECT_FALSE(AcceptsGzip("gzip; Q=0.000, identity"));
  EXPECT_FALSE(AcceptsGzip("x-gzip2, gzipper"));
}

TEST(MockApiTest, JsonStringsStayValidForAnyBytes) {
  auto json = [](std::string_view text) {
    return Build([&](std::string& out) { AppendJsonString(out, text); });
  };
  EXPECT_EQ(json("a\"b\\c\n\x01"), R"("a\"b\\c\u000a\u0001")");
  const std::string utf8 = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
  EXPECT_EQ(json(utf8), "\"" + utf8 + "\"");
  EXPECT_EQ(json("a\xff"
                 "b\xc3"),
            R"("a\ufffdb\ufffd")");
  // An overlong "/" and a UTF-16 surrogate: one U+FFFD per byte.
  EXPECT_EQ(json("\xc0\xaf\xed\xa0\x80"), R"("\ufffd\ufffd\ufffd\ufffd\ufffd")");
}

TEST(MockApiTest, RequestRecords) {
  MockRequestRecord record = MakeRequestRecord(
      "POST", "/v1/chat/completions?x=1",
      {{"Host", "localhost"}, {"X-Tag", "a"}, {"Content-Type", "application/json"}, {"x-tag", "b"}},
      R"({"model":"m"})", 100);
  EXPECT_EQ(Build([&](std::string& out) { AppendRequestRecord(out, record); }),
            R"({"method":"POST","target":"/v1/chat/completions?x=1","headers":{"host":"localhost",)"
            R"("x-tag":"a, b","content-type":"application/json"},"body":"{\"model\":\"m\"}"})");
  // Cut to the limit, and back to the start of a character that straddles it.
  record = MakeRequestRecord("POST", "/", {}, "ab\xc3\xa9z", 3);
  EXPECT_TRUE(record.truncated);
  EXPECT_EQ(record.body, "ab");
  EXPECT_EQ(Build([&](std::string& out) { AppendRequestRecord(out, record); }),
            R"({"method":"POST","target":"/","headers":{},"body":"ab","truncated":true})");
  record = MakeRequestRecord("POST", "/", {}, "ab\xc3\xa9z", 4);
  EXPECT_EQ(record.body, "ab\xc3\xa9");
  record = MakeRequestRecord("POST", "/", {}, "abc", 3);
  EXPECT_FALSE(record.truncated);
  EXPECT_EQ(record.body, "abc");
}

TEST(MockApiTest, CompletionBodies) {
  MockResponseMeta meta{"chatcmpl-mock7", 1700000000, "mock-model", {}, {}};
  MockAnswer answer{3, "length", {5, 3}};
  EXPECT_EQ(
      Build([&](std::string& out) {
        AppendCompletionBody(out, MockEndpoint::kChat, meta, answer, MockUsageReport::kValid);
      }),
      R"({"id":"chatcmpl-mock7","object":"chat.completion","created":1700000000,"model":"mock-model",)"
      R"("choices":[{"index":0,"message":{"role":"assistant","content":"w1 w2 w3"},"logprobs":null,)"
      R"("finish_reason":"length"}],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}})");
  meta.id = "cmpl-mock8";
  EXPECT_EQ(
      Build([&](std::string& out) {
        AppendCompletionBody(out, MockEndpoint::kCompletions, meta, answer, MockUsageReport::kNone);
      }),
      R"({"id":"cmpl-mock8","object":"text_completion","created":1700000000,"model":"mock-model",)"
      R"("choices":[{"index":0,"text":"w1 w2 w3","logprobs":null,"finish_reason":"length"}]})");
}

TEST(MockApiTest, StreamEvents) {
  MockResponseMeta meta{"chatcmpl-mock1", 5, "m", {}, {}};
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
  EXPECT_EQ(
      Build([&](std::string& out) { AppendEmbeddingsBody(out, request, MockUsageReport::kValid); }),
      R"({"object":"list","data":[{"object":"embedding","index":0,)"
      R"("embedding":[-1,0.5,-0.0078125,-0.5,0,0.9921875,-0.9921875,-1]}],"model":"e",)"
      R"("usage":{"prompt_tokens":2,"total_tokens":2}})");
  request.base64 = true;
  std::string base64 =
      Build([&](std::string& out) { AppendEmbeddingsBody(out, request, MockUsageReport::kNone); });
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

TEST(MockApiTest, UsageFaultsReportWrongUsages) {
  EXPECT_EQ(UsageReportFor(ParseMockFault("usage-negative")), MockUsageReport::kNegative);
  EXPECT_EQ(UsageReportFor(ParseMockFault("usage-huge")), MockUsageReport::kHuge);
  EXPECT_EQ(UsageReportFor(ParseMockFault("usage-float")), MockUsageReport::kFloat);
  EXPECT_EQ(UsageReportFor(ParseMockFault("usage-no-completion")), MockUsageReport::kNoCompletion);
  EXPECT_EQ(UsageReportFor(ParseMockFault("no-usage")), MockUsageReport::kNone);
  EXPECT_EQ(UsageReportFor(ParseMockFault("")), MockUsageReport::kValid);
  EXPECT_EQ(UsageReportFor(ParseMockFault("truncate-stream")), MockUsageReport::kValid);

  auto usage = [](MockUsageReport report) {
    return Build([&](std::string& out) { AppendUsage(out, {7, 3}, report); });
  };
  EXPECT_EQ(usage(MockUsageReport::kNone), "");
  EXPECT_EQ(usage(MockUsageReport::kValid),
            R"("usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10})");
  EXPECT_EQ(usage(MockUsageReport::kNegative),
            R"("usage":{"prompt_tokens":-1000000,"completion_tokens":3,"total_tokens":-999997})");
  EXPECT_EQ(
      usage(MockUsageReport::kHuge),
      R"("usage":{"prompt_tokens":1000000001,"completion_tokens":3,"total_tokens":1000000004})");
  EXPECT_EQ(usage(MockUsageReport::kFloat),
            R"("usage":{"prompt_tokens":7.5,"completion_tokens":3,"total_tokens":10.5})");
  EXPECT_EQ(usage(MockUsageReport::kNoCompletion),
            R"("usage":{"prompt_tokens":7,"total_tokens":10})");

  // In a whole answer, in the usage chunk, and in an embeddings answer.
  MockResponseMeta meta{"chatcmpl-mock7", 1700000000, "mock-model", {}, {}};
  MockAnswer answer{1, "length", {5, 1}};
  EXPECT_EQ(
      Build([&](std::string& out) {
        AppendCompletionBody(out, MockEndpoint::kChat, meta, answer, MockUsageReport::kHuge);
      }),
      R"({"id":"chatcmpl-mock7","object":"chat.completion","created":1700000000,"model":"mock-model",)"
      R"("choices":[{"index":0,"message":{"role":"assistant","content":"w1"},"logprobs":null,)"
      R"("finish_reason":"length"}],)"
      R"("usage":{"prompt_tokens":1000000001,"completion_tokens":1,"total_tokens":1000000002}})");
  EXPECT_EQ(Build([&](std::string& out) {
              AppendStreamUsage(out, MockEndpoint::kChat, meta, {4, 2}, MockUsageReport::kFloat);
            }),
            R"(data: {"id":"chatcmpl-mock7","object":"chat.completion.chunk","created":1700000000,)"
            R"("model":"mock-model","choices":[],)"
            R"("usage":{"prompt_tokens":4.5,"completion_tokens":2,"total_tokens":6.5}})"
            "\n\n");
  MockRequest embeddings;
  embeddings.endpoint = MockEndpoint::kEmbeddings;
  embeddings.model = "e";
  embeddings.prompt_tokens = 2;
  embeddings.input_hashes = {0};
  const std::string vectors = R"({"object":"list","data":[{"object":"embedding","index":0,)"
                              R"("embedding":[-1,-1,-1,-1,-1,-1,-1,-1]}],"model":"e")";
  EXPECT_EQ(Build([&](std::string& out) {
              AppendEmbeddingsBody(out, embeddings, MockUsageReport::kNegative);
            }),
            vectors + R"(,"usage":{"prompt_tokens":-1000000,"completion_tokens":0,)"
                      R"("total_tokens":-1000000}})");
  // An embeddings usage has no completion_tokens: usage-no-completion leaves it valid.
  EXPECT_EQ(Build([&](std::string& out) {
              AppendEmbeddingsBody(out, embeddings, MockUsageReport::kNoCompletion);
            }),
            vectors + R"(,"usage":{"prompt_tokens":2,"total_tokens":2}})");
}

// x-mock-cached-tokens: digits only, read into the request; anything else is a 400 naming it.
TEST(MockApiTest, ReadsCachedTokensHeader) {
  const auto read = [](std::string_view value) {
    MockRequest request;
    EXPECT_FALSE(ReadCachedTokensHeader(value, request)) << value;
    return request.cached_tokens;
  };
  EXPECT_EQ(read("0"), 0);
  EXPECT_EQ(read("12"), 12);
  EXPECT_EQ(read("007"), 7);
  EXPECT_EQ(read("99999999999999999999999"), std::numeric_limits<int64_t>::max());
  for (std::string_view bad : {"", "-1", "+1", "1.5", "1e3", "abc", "3x", " 3", "1, 2", "٣"}) {
    MockRequest request;
    std::optional<MockError> error = ReadCachedTokensHeader(bad, request);
    ASSERT_TRUE(error) << bad;
    EXPECT_EQ(error->status, 400);
    EXPECT_EQ(error->type, "invalid_request_error");
    EXPECT_EQ(error->param, "x-mock-cached-tokens");
    EXPECT_EQ(error->message, "x-mock-cached-tokens must be a non-negative integer, got \"" +
                                  std::string(bad) + '"');
    EXPECT_FALSE(request.cached_tokens);
  }
  MockRequest request;
  ASSERT_TRUE(ReadCachedTokensHeader("x", request));
  EXPECT_EQ(
      Build([&](std::string& out) { AppendErrorBody(out, *ReadCachedTokensHeader("x", request)); }),
      R"({"error":{"message":"x-mock-cached-tokens must be a non-negative integer, got \"x\"",)"
      R"("type":"invalid_request_error","param":"x-mock-cached-tokens","code":null}})");
}

// The answer's usage reports min(N, prompt_tokens) cached; prompt and total stay as they are.
TEST(MockApiTest, CachedTokensAreCappedByThePrompt) {
  MockOptions options = Options();  // max_output 4
  MockRequest request;
  request.prompt_tokens = 5;
  EXPECT_FALSE(PlanMockAnswer(request, options).usage.cached_tokens);
  for (auto [given, reported] : {std::pair<int64_t, int64_t>{0, 0},
                                 {3, 3},
                                 {5, 5},
                                 {6, 5},
                                 {std::numeric_limits<int64_t>::max(), 5}}) {
    request.cached_tokens = given;
    const MockAnswer answer = PlanMockAnswer(request, options);
    EXPECT_EQ(answer.usage.cached_tokens, reported) << given;
    EXPECT_EQ(answer.usage.prompt_tokens, 5);
    EXPECT_EQ(answer.usage.Total(), 9);
  }
}

// prompt_tokens_details goes last in the usage: in a whole answer, in the usage chunk, and in
// every wrong usage (the usage-* faults lie about the rest only).
TEST(MockApiTest, UsageReportsCachedTokens) {
  const MockUsage cached{7, 3, 2};
  auto usage = [&](MockUsageReport report) {
    return Build([&](std::string& out) { AppendUsage(out, cached, report); });
  };
  const std::string details = R"(,"prompt_tokens_details":{"cached_tokens":2}})";
  EXPECT_EQ(usage(MockUsageReport::kNone), "");
  EXPECT_EQ(usage(MockUsageReport::kValid),
            R"("usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10)" + details);
  EXPECT_EQ(usage(MockUsageReport::kNegative),
            R"("usage":{"prompt_tokens":-1000000,"completion_tokens":3,"total_tokens":-999997)" +
                details);
  EXPECT_EQ(
      usage(MockUsageReport::kHuge),
      R"("usage":{"prompt_tokens":1000000001,"completion_tokens":3,"total_tokens":1000000004)" +
          details);
  EXPECT_EQ(usage(MockUsageReport::kFloat),
            R"("usage":{"prompt_tokens":7.5,"completion_tokens":3,"total_tokens":10.5)" + details);
  EXPECT_EQ(usage(MockUsageReport::kNoCompletion),
            R"("usage":{"prompt_tokens":7,"total_tokens":10)" + details);
  EXPECT_EQ(Build([](std::string& out) {
              AppendUsage(out, {7, 3, 0}, MockUsageReport::kValid);
            }),
            R"("usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10,)"
            R"("prompt_tokens_details":{"cached_tokens":0}})");

  MockResponseMeta meta{"cmpl-mock8", 1700000000, "mock-model", {}, {}, {}};
  MockAnswer answer{3, "length", {5, 3, 4}};
  EXPECT_EQ(
      Build([&](std::string& out) {
        AppendCompletionBody(out, MockEndpoint::kCompletions, meta, answer,
                             MockUsageReport::kValid);
      }),
      R"({"id":"cmpl-mock8","object":"text_completion","created":1700000000,"model":"mock-model",)"
      R"("choices":[{"index":0,"text":"w1 w2 w3","logprobs":null,"finish_reason":"length"}],)"
      R"("usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8,)"
      R"("prompt_tokens_details":{"cached_tokens":4}}})");
  meta.id = "chatcmpl-mock9";
  EXPECT_EQ(Build([&](std::string& out) {
              AppendStreamUsage(out, MockEndpoint::kChat, meta, answer.usage);
            }),
            R"(data: {"id":"chatcmpl-mock9","object":"chat.completion.chunk","created":1700000000,)"
            R"("model":"mock-model","choices":[],)"
            R"("usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8,)"
            R"("prompt_tokens_details":{"cached_tokens":4}}})"
            "\n\n");
}

TEST(MockApiTest, ContinuousUsageStats) {
  MockOptions options = Options();
  const std::string head = R"({"model":"mock-model","messages":[{"role":"user","content":"hi"}],)"
                           R"("stream":true,)";
  MockRequest request = MustParse(
      MockEndpoint::kChat,
      head + R"("stream_options":{"include_usage":true,"continuous_usage_stats":true}})", options);
  EXPECT_TRUE(request.include_usage);
  EXPECT_TRUE(request.continuous_usage);
  // The last wins; null is absent.
  request = MustParse(MockEndpoint::kChat,
                      head + R"("stream_options":{"continuous_usage_stats":true,)"
                             R"("continuous_usage_stats":null}})",
                      options);
  EXPECT_FALSE(request.continuous_usage);
  EXPECT_EQ(
      MustFail(MockEndpoint::kChat, head + R"("stream_options":{"continuous_usage_stats":"yes"}})")
          .param,
      "stream_options");

  // Chunks with choices carry the usage so far; without a report they carry none.
  MockResponseMeta meta{"chatcmpl-mock1", 5, "m", "call_mock1", "f"};
  const std::string prefix =
      R"(data: {"id":"chatcmpl-mock1","object":"chat.completion.chunk","created":5,"model":"m",)";
  const MockChunkUsage so_far{MockUsageReport::kValid, {6, 2}};
  EXPECT_EQ(Build([&](std::string& out) {
              AppendStreamToken(out, MockEndpoint::kChat, meta, 2, so_far);
            }),
            prefix + R"("choices":[{"index":0,"delta":{"content":" w2"},"logprobs":null,)"
                     R"("finish_reason":null}],)"
                     R"("usage":{"prompt_tokens":6,"completion_tokens":2,"total_tokens":8}})"
                     "\n\n");
  EXPECT_EQ(Build([&](std::string& out) {
              AppendStreamToken(out, MockEndpoint::kChat, meta, 2, MockChunkUsage{});
            }),
            Build([&](std::string& out) { AppendStreamToken(out, MockEndpoint::kChat, meta, 2); }));
  EXPECT_EQ(Build([&](std::string& out) {
              AppendStreamFinish(out, MockEndpoint::kCompletions, meta, "length",
                                 {MockUsageReport::kNegative, {6, 2}});
            }),
            R"(data: {"id":"chatcmpl-mock1","object":"text_completion","created":5,"model":"m",)"
            R"("choices":[{"index":0,"text":"","logprobs":null,"finish_reason":"length"}],)"
            R"("usage":{"prompt_tokens":-1000000,"completion_tokens":2,"total_tokens":-999998}})"
            "\n\n");
  const std::string usage0 =
      R"(,"usage":{"prompt_tokens":6,"completion_tokens":0,"total_tokens":6}})"
      "\n\n";
  const std::string head_event =
      Build([&](std::string& out) { AppendStreamToolCallHead(out, meta); });
  EXPECT_EQ(Build([&](std::string& out) {
              AppendStreamToolCallHead(out, meta, {MockUsageReport::kValid, {6, 0}});
            }),
            head_event.substr(0, head_event.size() - 3) + usage0);
  const std::string token_event =
      Build([&](std::string& out) { AppendStreamToolCallToken(out, meta, 1, 2); });
  EXPECT_EQ(Build([&](std::string& out) {
              AppendStreamToolCallToken(out, meta, 1, 2, {MockUsageReport::kValid, {6, 0}});
            }),
            token_event.substr(0, token_event.size() - 3) + usage0);
}

}  // namespace
}  // namespace trl
