// In-process tests of the real server on a loopback port 0, with a blocking Beast client.
#include "mock/mock_server.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "mock/gunzip_for_test.h"

namespace trl {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using asio::ip::tcp;

class MockServerTest : public ::testing::Test {
 protected:
  void Start(MockOptions options) {
    options.port = 0;
    server_ = std::make_unique<MockServer>(options);
    thread_ = std::thread([this] { server_->Run(); });
  }
  void TearDown() override {
    if (!server_) return;
    server_->Stop();
    thread_.join();
  }

  tcp::socket Connect() {
    tcp::socket socket(client_context_);
    socket.connect(server_->Endpoint());
    return socket;
  }

  http::request<http::string_body> Post(std::string target, std::string body,
                                        std::string fault = "") {
    http::request<http::string_body> request(http::verb::post, target, 11);
    request.set(http::field::host, "localhost");
    request.set(http::field::content_type, "application/json");
    if (!fault.empty()) request.set("x-mock-fault", fault);
    request.body() = std::move(body);
    request.prepare_payload();
    return request;
  }

  http::response<http::string_body> RoundTrip(tcp::socket& socket,
                                              const http::request<http::string_body>& request) {
    http::write(socket, request);
    boost::beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(socket, buffer, response);
    return response;
  }

  http::response<http::string_body> RoundTrip(const http::request<http::string_body>& request) {
    tcp::socket socket = Connect();
    return RoundTrip(socket, request);
  }

  std::string Get(std::string target) {
    http::request<http::string_body> request(http::verb::get, target, 11);
    return RoundTrip(request).body();
  }
  std::string Stats() { return Get("/mock/stats"); }

  // One member of /mock/stats.
  int64_t Stat(const std::string& name) {
    const std::string stats = Stats();
    const size_t at = stats.find("\"" + name + "\":");
    if (at == std::string::npos) {
      ADD_FAILURE() << name << " missing from " << stats;
      return -1;
    }
    return std::stoll(stats.substr(at + name.size() + 3));
  }

  // Polls for a server-side effect of a client hang-up, which lands asynchronously.
  bool Eventually(const std::function<bool()>& condition) {
    auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < give_up) {
      if (condition()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  asio::io_context client_context_;
  std::unique_ptr<MockServer> server_;
  std::thread thread_;
};

// The data of each SSE event, in order.
std::vector<std::string> Events(std::string_view body) {
  std::vector<std::string> events;
  for (size_t end; (end = body.find("\n\n")) != std::string_view::npos;) {
    std::string_view event = body.substr(0, end);
    if (event.starts_with("data: ")) events.emplace_back(event.substr(6));
    body.remove_prefix(end + 2);
  }
  return events;
}

// Reads a chunked response, keeping each chunk's payload apart: one chunk is one write.
std::vector<std::string> ReadChunks(tcp::socket& socket,
                                    http::response_parser<http::string_body>& parser,
                                    boost::system::error_code& ec) {
  std::vector<std::string> chunks;
  std::string current;
  auto on_body = [&](std::uint64_t remain, std::string_view body, boost::system::error_code&) {
    current.append(body);
    if (remain == body.size()) chunks.push_back(std::exchange(current, {}));
    return body.size();
  };
  parser.on_chunk_body(on_body);
  boost::beast::flat_buffer buffer;
  http::read(socket, buffer, parser, ec);
  if (!current.empty()) chunks.push_back(current);
  return chunks;
}

MockOptions Unpaced() {
  MockOptions options;
  options.ttft = std::chrono::nanoseconds(0);
  options.tokens_per_second = 0;
  options.max_output = 4;
  options.faults = true;
  return options;
}

constexpr char kChat[] =
    R"({"model":"mock-model","messages":[{"role":"user","content":"hi there"}]})";

TEST_F(MockServerTest, ChatKeepAliveAndStats) {
  Start(Unpaced());
  tcp::socket socket = Connect();
  for (int i = 0; i < 2; ++i) {
    auto response = RoundTrip(socket, Post("/v1/chat/completions", kChat));
    EXPECT_EQ(response.result_int(), 200);
    EXPECT_EQ(response.count(http::field::content_encoding), 0u);
    // Uncapped: --default-max-output (here --max-output's 4) words, ended by that limit.
    EXPECT_NE(response.body().find(
                  R"("content":"w1 w2 w3 w4"},"logprobs":null,"finish_reason":"length")"),
              std::string::npos);
    EXPECT_NE(response.body().find(
                  R"("usage":{"prompt_tokens":5,"completion_tokens":4,"total_tokens":9})"),
              std::string::npos);
  }
  EXPECT_EQ(Stats(), R"({"requests_total":2,"open_streams":0,"open_connections":2,)"
                     R"("prompt_tokens_total":10,"completion_tokens_total":8,)"
                     R"("cached_tokens_total":0,)"
                     R"("served_prompt_tokens_total":10,"served_completion_tokens_total":8})");
}

TEST_F(MockServerTest, StreamWithUsage) {
  Start(Unpaced());
  auto response =
      RoundTrip(Post("/v1/chat/completions",
                     R"({"model":"mock-model","messages":[{"role":"user","content":"hi"}],)"
                     R"("max_tokens":2,"stream":true,"stream_options":{"include_usage":true}})"));
  EXPECT_EQ(response[http::field::content_type], "text/event-stream");
  EXPECT_TRUE(response.chunked());
  const std::string& body = response.body();
  EXPECT_NE(body.find(R"("delta":{"role":"assistant","content":"w1"})"), std::string::npos);
  EXPECT_NE(body.find(R"("delta":{"content":" w2"})"), std::string::npos);
  EXPECT_NE(body.find(R"("finish_reason":"length"}]})"), std::string::npos);
  EXPECT_NE(
      body.find(
          R"("choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2,"total_tokens":6}})"),
      std::string::npos);
  EXPECT_TRUE(body.ends_with("}\n\ndata: [DONE]\n\n"));
  EXPECT_NE(Stats().find(R"("prompt_tokens_total":4,"completion_tokens_total":2)"),
            std::string::npos);
}

TEST_F(MockServerTest, ResponsesStreamEventByEvent) {
  Start(Unpaced());
  tcp::socket socket = Connect();
  http::write(socket,
              Post("/v1/responses", R"({"model":"mock-model","input":"hi","max_output_tokens":2,)"
                                    R"("stream":true})"));
  http::response_parser<http::string_body> parser;
  boost::system::error_code ec;
  std::vector<std::string> chunks = ReadChunks(socket, parser, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(parser.get()[http::field::content_type], "text/event-stream");
  // The four head events in one write, one write per delta, the four tail events in one.
  ASSERT_EQ(chunks.size(), 4u);
  EXPECT_TRUE(chunks[0].starts_with("event: response.created\n"));
  EXPECT_TRUE(chunks[1].starts_with("event: response.output_text.delta\n"));
  EXPECT_NE(chunks[2].find(R"("sequence_number":5,)"), std::string::npos);
  EXPECT_NE(chunks[3].find("event: response.completed\n"), std::string::npos);
  EXPECT_NE(chunks[3].find(R"("usage":{"input_tokens":4,)"), std::string::npos);
  EXPECT_EQ(chunks[3].find("[DONE]"), std::string::npos);
  EXPECT_NE(Stats().find(R"("prompt_tokens_total":4,"completion_tokens_total":2,)"
                         R"("cached_tokens_total":0,)"
                         R"("served_prompt_tokens_total":4,"served_completion_tokens_total":2})"),
            std::string::npos);
}

TEST_F(MockServerTest, ResponsesNoUsageAndTruncate) {
  Start(Unpaced());
  constexpr char kBody[] = R"({"model":"mock-model","input":"hi","stream":true})";
  auto bare = RoundTrip(Post("/v1/responses", kBody, "no-usage"));
  EXPECT_NE(bare.body().find(R"("text":"w1 w2 w3 w4","annotations":[],"logprobs":[]}]}],)"
                             R"("usage":null}})"),
            std::string::npos);
  tcp::socket socket = Connect();
  http::write(socket, Post("/v1/responses", kBody, "truncate-stream"));
  http::response_parser<http::string_body> parser;
  boost::system::error_code ec;
  std::vector<std::string> chunks = ReadChunks(socket, parser, ec);
  EXPECT_TRUE(ec);               // cut before the chunked body's end
  ASSERT_EQ(chunks.size(), 3u);  // the head and 2 of 4 deltas
  EXPECT_NE(Stats().find(R"("prompt_tokens_total":0,"completion_tokens_total":0,)"),
            std::string::npos);
}

TEST_F(MockServerTest, UtilityRoutes) {
  Start(Unpaced());
  auto rerank = RoundTrip(
      Post("/v1/rerank", R"({"model":"mock-model","query":"a b","documents":["a","c d e"]})"));
  EXPECT_EQ(rerank.result_int(), 200);
  EXPECT_NE(rerank.body().find(R"("usage":{"total_tokens":8})"), std::string::npos);
  auto score = RoundTrip(Post("/v1/score", R"({"model":"mock-model","text_1":"a","text_2":"a"})"));
  EXPECT_NE(score.body().find(R"("usage":{"prompt_tokens":2,)"), std::string::npos);
  auto tokens = RoundTrip(Post("/tokenize", R"({"model":"mock-model","prompt":"a"})"));
  EXPECT_EQ(tokens.body(),
            R"({"count":1,"max_model_len":32768,"tokens":[281474976710753],"token_strs":null})");
  auto text =
      RoundTrip(Post("/detokenize", R"({"model":"mock-model","tokens":[281474976710753]})"));
  EXPECT_EQ(text.body(), R"({"prompt":"a"})");
  auto upload = Post("/v1/audio/transcriptions",
                     "--B\r\nContent-Disposition: form-data; name=file; filename=x\r\n\r\nabc\r\n"
                     "--B\r\nContent-Disposition: form-data; name=model\r\n\r\nmock-model\r\n"
                     "--B--\r\n");
  upload.set(http::field::content_type, "multipart/form-data; boundary=B");
  auto transcript = RoundTrip(upload);
  EXPECT_EQ(transcript.body(),
            R"({"text":"transcript of 3 bytes","usage":{"type":"duration","seconds":0}})");
  auto unknown = RoundTrip(Post("/v1/score", R"({"model":"nope","text_1":"a","text_2":"a"})"));
  EXPECT_EQ(unknown.result_int(), 404);
  auto failed = RoundTrip(Post("/tokenize", R"({"model":"mock-model","prompt":"a"})", "http500"));
  EXPECT_EQ(failed.result_int(), 500);
  // rerank's 8 and score's 2 prompt tokens, reported; the others count requests only.
  EXPECT_EQ(Stat("requests_total"), 7);
  EXPECT_NE(Stats().find(R"("prompt_tokens_total":10,"completion_tokens_total":0,)"
                         R"("cached_tokens_total":0,)"
                         R"("served_prompt_tokens_total":10,"served_completion_tokens_total":0})"),
            std::string::npos);
}

// With --stamp-tokens each token event (and only those) starts with ": sent_us=<µs>", the
// steady clock when it was written: between the request and the end of its answer here.
TEST_F(MockServerTest, StampedTokensCarryTheirSendTime) {
  MockOptions options = Unpaced();
  options.stamp_tokens = true;
  Start(options);
  const auto micros = [] {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  };
  const int64_t before = micros();
  auto response = RoundTrip(
      Post("/v1/chat/completions",
           R"({"model":"mock-model","messages":[{"role":"user","content":"hi"}],"max_tokens":3,)"
           R"("stream":true})"));
  const int64_t after = micros();
  const std::string& body = response.body();
  std::vector<int64_t> stamps;
  for (size_t at = body.find(": sent_us="); at != std::string::npos;
       at = body.find(": sent_us=", at + 1)) {
    EXPECT_TRUE(at == 0 || body.compare(at - 2, 2, "\n\n") == 0) << "starts an event";
    const size_t line_end = body.find('\n', at);
    stamps.push_back(std::stoll(body.substr(at + 10, line_end - at - 10)));
    EXPECT_EQ(body.compare(line_end + 1, 6, "data: "), 0) << "followed by the token's data";
  }
  ASSERT_EQ(stamps.size(), 3u);
  EXPECT_TRUE(std::is_sorted(stamps.begin(), stamps.end()));
  EXPECT_GE(stamps.front(), before);
  EXPECT_LE(stamps.back(), after);
  EXPECT_NE(body.find(R"("delta":{"content":" w3"})"), std::string::npos);
}

TEST_F(MockServerTest, FaultsAndErrors) {
  Start(Unpaced());
  EXPECT_EQ(RoundTrip(Post("/v1/chat/completions", kChat, "http500")).result_int(), 500);
  EXPECT_EQ(RoundTrip(Post("/v1/chat/completions", "{oops")).result_int(), 400);
  EXPECT_EQ(RoundTrip(Post("/v1/embeddings", R"({"model":"nope","input":"x"})")).result_int(), 404);
  auto no_usage =
      RoundTrip(Post("/v1/completions", R"({"model":"mock-model","prompt":"x"})", "no-usage"));
  EXPECT_EQ(no_usage.body().find("usage"), std::string::npos);

  tcp::socket socket = Connect();
  http::write(socket, Post("/v1/chat/completions", kChat, "reset"));
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> response;
  boost::system::error_code ec;
  http::read(socket, buffer, response, ec);
  EXPECT_EQ(ec, asio::error::connection_reset);

  tcp::socket truncated = Connect();
  http::write(truncated, Post("/v1/chat/completions", kChat, "truncate-stream"));
  http::read(truncated, buffer, response, ec);
  EXPECT_EQ(ec, http::error::partial_message);

  EXPECT_NE(Stats().find(R"("requests_total":6,)"), std::string::npos);
  // Only no-usage reported nothing while serving 1 + 4 tokens; truncate-stream's prompt counts.
  EXPECT_NE(Stats().find(R"("prompt_tokens_total":0,"completion_tokens_total":0,)"
                         R"("cached_tokens_total":0,)"
                         R"("served_prompt_tokens_total":6,"served_completion_tokens_total":4})"),
            std::string::npos);
}

// A wrong usage goes out where a right one would (the whole answer, the usage chunk) and is not
// counted as reported; what was served is.
TEST_F(MockServerTest, UsageFaultsReportWrongUsages) {
  Start(Unpaced());
  auto negative = RoundTrip(Post("/v1/chat/completions", kChat, "usage-negative"));
  EXPECT_EQ(negative.result_int(), 200);
  EXPECT_NE(negative.body().find(R"("usage":{"prompt_tokens":-1000000,"completion_tokens":4,)"),
            std::string::npos);
  auto stream = RoundTrip(Post("/v1/chat/completions",
                               R"({"model":"mock-model","messages":[{"content":"x"}],)"
                               R"("stream":true,"stream_options":{"include_usage":true}})",
                               "usage-no-completion"));
  std::vector<std::string> events = Events(stream.body());
  ASSERT_EQ(events.size(), 4u + 3u);  // 4 tokens, finish, usage, [DONE]
  EXPECT_NE(events[5].find(R"("choices":[],"usage":{"prompt_tokens":4,"total_tokens":8}})"),
            std::string::npos);
  EXPECT_EQ(events[6], "[DONE]");
  EXPECT_NE(Stats().find(R"("prompt_tokens_total":0,"completion_tokens_total":0,)"
                         R"("cached_tokens_total":0,)"
                         R"("served_prompt_tokens_total":9,"served_completion_tokens_total":8})"),
            std::string::npos);
}

// vLLM's stream_options.continuous_usage_stats: the usage so far on every chunk with choices,
// then the usage chunk; nothing without include_usage.
TEST_F(MockServerTest, ContinuousUsageStats) {
  Start(Unpaced());
  const std::string head =
      R"({"model":"mock-model","messages":[{"content":"a b"}],"max_tokens":2,"stream":true,)";
  auto response = RoundTrip(
      Post("/v1/chat/completions",
           head + R"("stream_options":{"include_usage":true,"continuous_usage_stats":true}})"));
  std::vector<std::string> events = Events(response.body());
  ASSERT_EQ(events.size(), 2u + 3u);
  const std::string usage = R"("usage":{"prompt_tokens":5,"completion_tokens":)";
  EXPECT_NE(events[0].find(R"("content":"w1"},"logprobs":null,"finish_reason":null}],)" + usage +
                           R"(1,"total_tokens":6}})"),
            std::string::npos);
  EXPECT_NE(events[1].find(R"("content":" w2"},"logprobs":null,"finish_reason":null}],)" + usage +
                           R"(2,"total_tokens":7}})"),
            std::string::npos);
  EXPECT_NE(events[2].find(R"("finish_reason":"length"}],)" + usage + R"(2,"total_tokens":7}})"),
            std::string::npos);
  EXPECT_NE(events[3].find(R"("choices":[],)" + usage + R"(2,"total_tokens":7}})"),
            std::string::npos);
  // Reported once: the usage chunk.
  EXPECT_NE(Stats().find(R"("prompt_tokens_total":5,"completion_tokens_total":2,)"),
            std::string::npos);

  auto without = RoundTrip(
      Post("/v1/chat/completions", head + R"("stream_options":{"continuous_usage_stats":true}})"));
  EXPECT_EQ(without.body().find("usage"), std::string::npos);
  // A tool-call stream: its head chunk carries the usage before any word.
  auto tools = RoundTrip(
      Post("/v1/chat/completions",
           head + R"("tools":[{"type":"function","function":{"name":"f"}}],)"
                  R"("stream_options":{"include_usage":true,"continuous_usage_stats":true}})"));
  events = Events(tools.body());
  ASSERT_EQ(events.size(), 1u + 2u + 3u);
  // The tool's strings ("function", "f") are words the model reads.
  EXPECT_NE(
      events[0].find(R"("usage":{"prompt_tokens":7,"completion_tokens":0,"total_tokens":7}})"),
      std::string::npos);
  EXPECT_NE(
      events[2].find(R"("usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9}})"),
      std::string::npos);
}

TEST_F(MockServerTest, ClientHangUpFreesStreamAndHang) {
  MockOptions options = Unpaced();
  options.tokens_per_second = 20;
  options.max_output = 100;  // five seconds of stream
  Start(options);
  {
    tcp::socket socket = Connect();
    http::write(socket,
                Post("/v1/chat/completions",
                     R"({"model":"mock-model","messages":[{"content":"x"}],"stream":true})"));
    ASSERT_TRUE(
        Eventually([&] { return Stats().find(R"("open_streams":1)") != std::string::npos; }));
    tcp::socket hung = Connect();
    http::write(hung, Post("/v1/chat/completions", kChat, "hang"));
    ASSERT_TRUE(
        Eventually([&] { return Stats().find(R"("open_connections":3)") != std::string::npos; }));
  }  // both clients hang up
  EXPECT_TRUE(Eventually([&] {
    return Stats().find(R"("open_streams":0,"open_connections":1)") != std::string::npos;
  }));
}

TEST_F(MockServerTest, UncappedAnswersUseTheDefaultLength) {
  MockOptions options = Unpaced();  // max_output 4
  options.default_max_output = 6;
  Start(options);
  auto uncapped = RoundTrip(Post(
      "/v1/chat/completions",
      R"({"model":"mock-model","messages":[{"content":"hi"}],"max_tokens":5,"max_tokens":0})"));
  EXPECT_NE(uncapped.body().find(
                R"("content":"w1 w2 w3 w4 w5 w6"},"logprobs":null,"finish_reason":"length")"),
            std::string::npos);
  EXPECT_NE(uncapped.body().find(R"("completion_tokens":6,)"), std::string::npos);
  auto capped = RoundTrip(Post(
      "/v1/completions", R"({"model":"mock-model","prompt":"hi","max_tokens":9,"stream":false})"));
  EXPECT_NE(capped.body().find(R"("text":"w1 w2 w3 w4","logprobs":null,"finish_reason":"stop")"),
            std::string::npos);
}

// The last of repeated keys wins over the wire too: this is not a stream.
TEST_F(MockServerTest, LastOfRepeatedKeysWins) {
  Start(Unpaced());
  auto response = RoundTrip(Post("/v1/chat/completions",
                                 R"({"model":"nope","messages":[{"content":"hi"}],"stream":true,)"
                                 R"("model":"mock-model","stream":false,"max_tokens":2})"));
  EXPECT_EQ(response.result_int(), 200);
  EXPECT_EQ(response[http::field::content_type], "application/json");
  EXPECT_NE(response.body().find(R"("content":"w1 w2"})"), std::string::npos);
}

TEST_F(MockServerTest, ToolCallAnswer) {
  Start(Unpaced());
  auto response =
      RoundTrip(Post("/v1/chat/completions",
                     R"({"model":"mock-model","messages":[{"content":"hi"}],"max_tokens":3,)"
                     R"("tools":[{"type":"function","function":{"name":"lookup"}}]})"));
  const std::string& body = response.body();
  // Prompt: "hi", the tool's "function" and "lookup", 3 for the message.
  const size_t id_at = body.find(R"("id":"chatcmpl-mock)");
  ASSERT_NE(id_at, std::string::npos);
  const std::string seq = body.substr(id_at + 19, body.find('"', id_at + 19) - id_at - 19);
  EXPECT_NE(
      body.find(R"("message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_mock)" +
                seq +
                R"(","type":"function","function":{"name":"lookup",)"
                R"("arguments":"{\"text\":\"w1 w2 w3\"}"}}]},"logprobs":null,)"
                R"("finish_reason":"tool_calls"}],)"
                R"("usage":{"prompt_tokens":6,"completion_tokens":3,"total_tokens":9}})"),
      std::string::npos)
      << body;
}

TEST_F(MockServerTest, ToolCallStream) {
  Start(Unpaced());
  auto response = RoundTrip(
      Post("/v1/chat/completions",
           R"({"model":"mock-model","messages":[{"content":"hi"}],"max_tokens":3,"stream":true,)"
           R"("stream_options":{"include_usage":true},"tools":[{"function":{"name":"lookup"}}]})"));
  std::vector<std::string> events = Events(response.body());
  ASSERT_EQ(events.size(), 7u);  // head, 3 fragments, finish, usage, [DONE]
  simdjson::dom::parser parser;
  std::string arguments;
  for (size_t i = 0; i < 4; ++i) {
    simdjson::dom::element call =
        parser.parse(events[i])["choices"].at(0)["delta"]["tool_calls"].at(0);
    EXPECT_EQ(int64_t(call["index"]), 0);
    arguments += std::string_view(call["function"]["arguments"]);
    if (i == 0) {
      EXPECT_EQ(std::string_view(call["function"]["name"]), "lookup");
      EXPECT_EQ(std::string_view(call["type"]), "function");
      EXPECT_TRUE(std::string_view(call["id"]).starts_with("call_mock"));
      EXPECT_EQ(std::string_view(parser.parse(events[i])["choices"].at(0)["delta"]["role"]),
                "assistant");
    } else {
      EXPECT_EQ(call["function"]["name"].error(), simdjson::NO_SUCH_FIELD);
    }
  }
  EXPECT_EQ(arguments, R"({"text":"w1 w2 w3"})");
  EXPECT_NE(events[4].find(R"("finish_reason":"tool_calls")"), std::string::npos);
  EXPECT_NE(events[5].find(R"("usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8})"),
            std::string::npos);
  EXPECT_EQ(events[6], "[DONE]");

  // A cut stream sends the head and the first half of the fragments.
  tcp::socket socket = Connect();
  http::write(socket, Post("/v1/chat/completions",
                           R"({"model":"mock-model","messages":[{"content":"hi"}],"stream":true,)"
                           R"("tools":[{"function":{"name":"lookup"}}]})",
                           "truncate-stream"));
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> cut;
  boost::system::error_code ec;
  http::read(socket, buffer, cut, ec);
  EXPECT_EQ(ec, http::error::partial_message);
  EXPECT_EQ(Stat("served_completion_tokens_total"), 3 + 2);
}

TEST_F(MockServerTest, GzipWholeAnswers) {
  Start(Unpaced());
  auto request = Post("/v1/chat/completions",
                      R"({"model":"mock-model","messages":[{"content":"hi"}],"max_tokens":2})");
  request.set(http::field::accept_encoding, "br, gzip;q=0.5");
  auto response = RoundTrip(request);
  EXPECT_EQ(response.result_int(), 200);
  EXPECT_EQ(response[http::field::content_encoding], "gzip");
  EXPECT_EQ(response[http::field::content_length], std::to_string(response.body().size()));
  std::optional<std::string> json = GunzipForTest(response.body());
  ASSERT_TRUE(json.has_value());
  EXPECT_TRUE(json->starts_with(R"({"id":"chatcmpl-mock)"));
  EXPECT_TRUE(json->ends_with(
      R"("choices":[{"index":0,"message":{"role":"assistant","content":"w1 w2"},"logprobs":null,)"
      R"("finish_reason":"length"}],"usage":{"prompt_tokens":4,"completion_tokens":2,"total_tokens":6}})"));

  request.body() = "{oops";  // errors too
  request.prepare_payload();
  response = RoundTrip(request);
  EXPECT_EQ(response.result_int(), 400);
  EXPECT_EQ(response[http::field::content_encoding], "gzip");
  EXPECT_EQ(GunzipForTest(response.body()),
            R"({"error":{"message":"request body is not a valid JSON object",)"
            R"("type":"invalid_request_error","param":null,"code":null}})");

  for (const char* refused : {"identity", "gzip;q=0", "deflate"}) {
    request.set(http::field::accept_encoding, refused);
    response = RoundTrip(request);
    EXPECT_EQ(response.count(http::field::content_encoding), 0u) << refused;
    EXPECT_TRUE(response.body().starts_with(R"({"error":)")) << refused;
  }
}

// One gzip stream, sync-flushed per event: every chunk decodes at once into whole events.
TEST_F(MockServerTest, GzipStreamsEventByEvent) {
  Start(Unpaced());
  auto request =
      Post("/v1/completions", R"({"model":"mock-model","prompt":"hi","max_tokens":3,"stream":true,)"
                              R"("stream_options":{"include_usage":true}})");
  request.set(http::field::accept_encoding, "gzip");
  tcp::socket socket = Connect();
  http::write(socket, request);
  http::response_parser<http::string_body> parser;
  boost::system::error_code ec;
  std::vector<std::string> chunks = ReadChunks(socket, parser, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(parser.get()[http::field::content_encoding], "gzip");
  EXPECT_EQ(parser.get()[http::field::content_type], "text/event-stream");
  ASSERT_EQ(chunks.size(), 6u);  // 3 tokens, finish, usage, [DONE]
  std::string received;
  for (size_t i = 0; i < chunks.size(); ++i) {
    received += chunks[i];
    const bool last = i + 1 == chunks.size();
    std::optional<std::string> text = GunzipForTest(received, !last);
    ASSERT_TRUE(text.has_value()) << "chunk " << i;
    EXPECT_TRUE(text->ends_with("\n\n")) << "chunk " << i;
    EXPECT_EQ(Events(*text).size(), i + 1) << "chunk " << i;
    if (last) {
      EXPECT_TRUE(text->ends_with("}\n\ndata: [DONE]\n\n"));
    }
  }
  std::vector<std::string> events = Events(*GunzipForTest(received));
  EXPECT_NE(events[1].find(R"("text":" w2")"), std::string::npos);

  // A cut gzip stream: the events sent decode, and the member never ends.
  tcp::socket cut_socket = Connect();
  request.set("x-mock-fault", "truncate-stream");
  http::write(cut_socket, request);
  http::response_parser<http::string_body> cut_parser;
  std::vector<std::string> cut = ReadChunks(cut_socket, cut_parser, ec);
  EXPECT_EQ(ec, http::error::partial_message);
  std::string cut_bytes;
  for (const std::string& chunk : cut) cut_bytes += chunk;
  EXPECT_EQ(GunzipForTest(cut_bytes), std::nullopt);
  std::optional<std::string> cut_text = GunzipForTest(cut_bytes, true);
  ASSERT_TRUE(cut_text.has_value());
  EXPECT_EQ(Events(*cut_text).size(), 2u);
}

// Without --faults the header is the client's like any other: no fault, the usual answer.
TEST_F(MockServerTest, FaultHeadersDoNothingWithoutFaults) {
  MockOptions options = Unpaced();
  options.faults = false;
  Start(options);
  for (std::string fault : {"http500", "reset", "hang", "no-usage"}) {
    auto response = RoundTrip(
        Post("/v1/chat/completions",
             R"({"model":"mock-model","messages":[{"role":"user","content":"hi"}]})", fault));
    EXPECT_EQ(response.result_int(), 200u) << fault;
    EXPECT_NE(response.body().find(R"("usage":)"), std::string::npos) << fault;
  }
}

// x-mock-cached-tokens: N puts min(N, prompt_tokens) in usage.prompt_tokens_details, without
// --faults too; prompt_tokens and total_tokens stay as they are.
TEST_F(MockServerTest, CachedTokensHeader) {
  MockOptions options = Unpaced();
  options.faults = false;
  Start(options);
  const auto post = [&](std::string target, std::string body, std::string cached) {
    auto request = Post(std::move(target), std::move(body));
    request.set("x-mock-cached-tokens", cached);
    return RoundTrip(request);
  };
  // kChat has 5 prompt tokens and gets 4 words.
  auto whole = post("/v1/chat/completions", kChat, "3");
  EXPECT_EQ(whole.result_int(), 200);
  EXPECT_TRUE(
      whole.body().ends_with(R"("usage":{"prompt_tokens":5,"completion_tokens":4,"total_tokens":9,)"
                             R"("prompt_tokens_details":{"cached_tokens":3}}})"))
      << whole.body();
  auto zero =
      post("/v1/completions", R"({"model":"mock-model","prompt":"a b","max_tokens":1})", "0");
  EXPECT_TRUE(
      zero.body().ends_with(R"("usage":{"prompt_tokens":2,"completion_tokens":1,"total_tokens":3,)"
                            R"("prompt_tokens_details":{"cached_tokens":0}}})"))
      << zero.body();

  // A stream: the usage chunk only, capped by the prompt; none in the running usages.
  auto stream = post("/v1/completions",
                     R"({"model":"mock-model","prompt":"a b","max_tokens":2,"stream":true,)"
                     R"("stream_options":{"include_usage":true,"continuous_usage_stats":true}})",
                     "1000");
  std::vector<std::string> events = Events(stream.body());
  ASSERT_EQ(events.size(), 2u + 3u);  // 2 tokens, finish, usage, [DONE]
  for (int i = 0; i < 3; ++i) {
    EXPECT_NE(events[i].find(R"("usage":{"prompt_tokens":2,)"), std::string::npos) << i;
    EXPECT_EQ(events[i].find("prompt_tokens_details"), std::string::npos) << i;
  }
  EXPECT_NE(events[3].find(R"("choices":[],"usage":{"prompt_tokens":2,"completion_tokens":2,)"
                           R"("total_tokens":4,"prompt_tokens_details":{"cached_tokens":2}}})"),
            std::string::npos)
      << events[3];
  EXPECT_EQ(events[4], "[DONE]");
  // Without include_usage nothing reports it.
  auto bare = post("/v1/chat/completions",
                   R"({"model":"mock-model","messages":[{"content":"x"}],"stream":true})", "1");
  EXPECT_EQ(bare.body().find("usage"), std::string::npos);

  // Not a non-negative integer: a 400 naming the header, the request not served.
  for (std::string bad : {"-1", "abc", "1.5", "", "+2"}) {
    auto rejected = post("/v1/chat/completions", kChat, bad);
    EXPECT_EQ(rejected.result_int(), 400) << bad;
    EXPECT_EQ(rejected.body(),
              R"({"error":{"message":"x-mock-cached-tokens must be a non-negative integer, got )"
              R"(\")" +
                  bad +
                  R"(\"","type":"invalid_request_error","param":"x-mock-cached-tokens",)"
                  R"("code":null}})");
  }
  // Given twice: the values joined, so not an integer.
  auto twice = Post("/v1/chat/completions", kChat);
  twice.insert("x-mock-cached-tokens", "1");
  twice.insert("x-mock-cached-tokens", "2");
  auto rejected = RoundTrip(twice);
  EXPECT_EQ(rejected.result_int(), 400);
  EXPECT_NE(rejected.body().find(R"(got \"1, 2\")"), std::string::npos) << rejected.body();
  // Other routes do not read it.
  auto embeddings = post("/v1/embeddings", R"({"model":"mock-model","input":"a"})", "abc");
  EXPECT_EQ(embeddings.result_int(), 200);
  EXPECT_EQ(embeddings.body().find("prompt_tokens_details"), std::string::npos);

  // Reported: 3 + 0 + 2 cached tokens of 5 + 2 + 2 + 1 (embeddings) prompt tokens; served: the
  // stream without a usage chunk too.
  EXPECT_EQ(Stat("cached_tokens_total"), 5);
  EXPECT_EQ(Stat("prompt_tokens_total"), 10);
  EXPECT_EQ(Stat("served_prompt_tokens_total"), 5 + 2 + 2 + 4 + 1);
}

// Without the header: no prompt_tokens_details anywhere, nothing counted as cached.
TEST_F(MockServerTest, NoCachedTokensWithoutTheHeader) {
  Start(Unpaced());
  auto whole = RoundTrip(Post("/v1/chat/completions", kChat));
  EXPECT_TRUE(whole.body().ends_with(
      R"("usage":{"prompt_tokens":5,"completion_tokens":4,"total_tokens":9}})"));
  auto stream =
      RoundTrip(Post("/v1/completions", R"({"model":"mock-model","prompt":"a","stream":true,)"
                                        R"("stream_options":{"include_usage":true}})"));
  EXPECT_NE(stream.body().find(R"("usage":{"prompt_tokens":1,"completion_tokens":4,)"
                               R"("total_tokens":5}})"),
            std::string::npos);
  EXPECT_EQ(stream.body().find("prompt_tokens_details"), std::string::npos);
  EXPECT_EQ(Stat("cached_tokens_total"), 0);
}

// The usage faults keep their one lie and the true cached tokens; no-usage reports none. Neither
// counts as reported.
TEST_F(MockServerTest, CachedTokensUnderUsageFaults) {
  Start(Unpaced());
  const auto post = [&](std::string body, std::string fault) {
    auto request = Post("/v1/chat/completions", std::move(body), std::move(fault));
    request.set("x-mock-cached-tokens", "2");
    return RoundTrip(request);
  };
  auto negative = post(kChat, "usage-negative");
  EXPECT_TRUE(negative.body().ends_with(
      R"("usage":{"prompt_tokens":-1000000,"completion_tokens":4,"total_tokens":-999996,)"
      R"("prompt_tokens_details":{"cached_tokens":2}}})"))
      << negative.body();
  auto no_completion = post(R"({"model":"mock-model","messages":[{"content":"x"}],)"
                            R"("stream":true,"stream_options":{"include_usage":true}})",
                            "usage-no-completion");
  EXPECT_NE(no_completion.body().find(R"("choices":[],"usage":{"prompt_tokens":4,)"
                                      R"("total_tokens":8,)"
                                      R"("prompt_tokens_details":{"cached_tokens":2}}})"),
            std::string::npos);
  auto none = post(kChat, "no-usage");
  EXPECT_EQ(none.body().find("usage"), std::string::npos);
  EXPECT_EQ(Stat("cached_tokens_total"), 0);
}

TEST_F(MockServerTest, RecentRequests) {
  Start(Unpaced());
  EXPECT_EQ(Get("/mock/requests"), "[]");
  auto request = Post("/v1/embeddings?trace=1", R"({"model":"mock-model","input":"a"})", "http500");
  request.set("X-Api-Key", "k1");
  request.insert("x-api-key", "k2");
  RoundTrip(request);
  Get("/mock/stats");  // not an inference route: not recorded
  EXPECT_EQ(Get("/mock/requests"),
            R"([{"method":"POST","target":"/v1/embeddings?trace=1","headers":{"host":"localhost",)"
            R"("content-type":"application/json","x-mock-fault":"http500","content-length":"34",)"
            R"("x-api-key":"k1, k2"},"body":"{\"model\":\"mock-model\",\"input\":\"a\"}"}])");

  // The last 64, oldest first.
  tcp::socket socket = Connect();
  for (int i = 0; i < 70; ++i) {
    RoundTrip(socket, Post("/v1/completions",
                           R"({"model":"mock-model","prompt":"n)" + std::to_string(i) + R"("})"));
  }
  std::string listed = Get("/mock/requests");
  simdjson::dom::parser parser;
  simdjson::dom::array records = parser.parse(listed);
  ASSERT_EQ(records.size(), 64u);
  EXPECT_EQ(std::string_view(records.at(0)["body"]), R"({"model":"mock-model","prompt":"n6"})");
  EXPECT_EQ(std::string_view(records.at(63)["body"]), R"({"model":"mock-model","prompt":"n69"})");

  // A body over 1 MiB is kept truncated.
  std::string big = R"({"model":"mock-model","prompt":")" + std::string(1 << 20, 'a') + R"("})";
  EXPECT_EQ(RoundTrip(socket, Post("/v1/completions", big)).result_int(), 200);
  listed = Get("/mock/requests");
  records = parser.parse(listed);
  simdjson::dom::element last = records.at(63);
  EXPECT_EQ(std::string_view(last["body"]), big.substr(0, 1 << 20));
  EXPECT_TRUE(bool(last["truncated"]));
  EXPECT_EQ(records.at(62)["truncated"].error(), simdjson::NO_SUCH_FIELD);

  auto reset = RoundTrip(Post("/mock/reset-stats", ""));
  EXPECT_EQ(reset.result_int(), 200);
  EXPECT_EQ(Get("/mock/requests"), "[]");
}

// served_*: what the backend did, whatever usage it reported.
TEST_F(MockServerTest, ServedTokensCountWhatWentOut) {
  Start(Unpaced());
  // A stream without include_usage reports no usage, yet served 5 prompt and 2 output tokens.
  auto streamed = RoundTrip(Post("/v1/chat/completions",
                                 R"({"model":"mock-model","messages":[{"content":"a b"}],)"
                                 R"("max_tokens":2,"stream":true})"));
  EXPECT_EQ(Events(streamed.body()).size(), 4u);
  EXPECT_EQ(Stat("prompt_tokens_total"), 0);
  EXPECT_EQ(Stat("served_prompt_tokens_total"), 5);
  EXPECT_EQ(Stat("served_completion_tokens_total"), 2);
  // Embeddings: prompt only. A 400 serves nothing.
  RoundTrip(Post("/v1/embeddings", R"({"model":"mock-model","input":["a","b c"]})"));
  RoundTrip(Post("/v1/embeddings", R"({"model":"mock-model","input":[]})"));
  EXPECT_EQ(Stat("served_prompt_tokens_total"), 5 + 3);
  EXPECT_EQ(Stat("served_completion_tokens_total"), 2);
  EXPECT_EQ(Stat("prompt_tokens_total"), 3);
}

// A client that hangs up mid-stream was served only the tokens written before it left.
TEST_F(MockServerTest, ServedTokensStopAtHangUp) {
  MockOptions options = Unpaced();
  options.tokens_per_second = 0.2;  // the second token is due in 5 s: the hang-up comes first
  Start(options);
  {
    tcp::socket socket = Connect();
    http::write(socket, Post("/v1/chat/completions",
                             R"({"model":"mock-model","messages":[{"content":"hi"}],)"
                             R"("stream":true,"stream_options":{"include_usage":true}})"));
    std::string received;
    char scratch[1024];
    while (received.find(R"("content":"w1")") == std::string::npos) {
      received.append(scratch, socket.read_some(asio::buffer(scratch)));
    }
  }
  ASSERT_TRUE(Eventually([&] { return Stat("open_streams") == 0; }));
  EXPECT_EQ(Stat("served_prompt_tokens_total"), 4);
  EXPECT_EQ(Stat("served_completion_tokens_total"), 1);
  EXPECT_EQ(Stat("completion_tokens_total"), 0);  // no usage chunk went out
}

// GET /metrics: vLLM's series, counting what was generated (mock_metrics.h).
TEST_F(MockServerTest, MetricsCountWhatWasGenerated) {
  Start(Unpaced());
  // 5 prompt tokens, 4 words; 4 and 2 streamed; embeddings: 3 prompt tokens, no first token.
  EXPECT_EQ(RoundTrip(Post("/v1/chat/completions", kChat)).result_int(), 200);
  RoundTrip(Post("/v1/chat/completions",
                 R"({"model":"mock-model","messages":[{"content":"hi"}],"max_tokens":2,)"
                 R"("stream":true})"));
  RoundTrip(Post("/v1/embeddings", R"({"model":"mock-model","input":["a","b c"]})"));
  // Nothing generated: a 400 and a fault.
  RoundTrip(Post("/v1/chat/completions", R"({"model":"mock-model"})"));
  RoundTrip(Post("/v1/chat/completions", kChat, "http500"));

  http::request<http::string_body> request(http::verb::get, "/metrics", 11);
  auto response = RoundTrip(request);
  EXPECT_EQ(response.result_int(), 200);
  EXPECT_EQ(response[http::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
  const std::string labels = R"({model_name="mock-model",engine="0"})";
  const auto has = [](const std::string& text, const std::string& line) {
    return text.find("\n" + line + "\n") != std::string::npos;
  };
  const std::string& text = response.body();
  EXPECT_TRUE(has(text, "vllm:prompt_tokens_total" + labels + " 12")) << text;
  EXPECT_TRUE(has(text, "vllm:generation_tokens_total" + labels + " 6")) << text;
  EXPECT_TRUE(has(text, "vllm:time_to_first_token_seconds_count" + labels + " 2")) << text;
  EXPECT_TRUE(has(text, "vllm:num_requests_waiting" + labels + " 0")) << text;
  EXPECT_TRUE(has(text, "vllm:gpu_cache_usage_perc" + labels + " 0")) << text;
  // A request stops running after its answer is written, which the client may see first.
  EXPECT_TRUE(Eventually(
      [&] { return has(Get("/metrics"), "vllm:num_requests_running" + labels + " 0"); }));
  // Counters only go up: /mock/reset-stats leaves them be.
  RoundTrip(Post("/mock/reset-stats", ""));
  EXPECT_TRUE(has(Get("/metrics"), "vllm:prompt_tokens_total" + labels + " 12"));
}

}  // namespace
}  // namespace trl
