// In-process tests of the real server on a loopback port 0, with a blocking Beast client.
#include "mock/mock_server.h"

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <algorithm>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

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

  std::string Stats() {
    http::request<http::string_body> request(http::verb::get, "/mock/stats", 11);
    return RoundTrip(request).body();
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

MockOptions Unpaced() {
  MockOptions options;
  options.ttft = std::chrono::nanoseconds(0);
  options.tokens_per_second = 0;
  options.max_output = 4;
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
    EXPECT_NE(
        response.body().find(R"("content":"w1 w2 w3 w4"},"logprobs":null,"finish_reason":"stop")"),
        std::string::npos);
    EXPECT_NE(response.body().find(
                  R"("usage":{"prompt_tokens":5,"completion_tokens":4,"total_tokens":9})"),
              std::string::npos);
  }
  EXPECT_EQ(Stats(), R"({"requests_total":2,"open_streams":0,"open_connections":2,)"
                     R"("prompt_tokens_total":10,"completion_tokens_total":8})");
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
  auto response = RoundTrip(Post(
      "/v1/chat/completions",
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
  EXPECT_NE(Stats().find(R"("prompt_tokens_total":0,"completion_tokens_total":0)"),
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

}  // namespace
}  // namespace trl
