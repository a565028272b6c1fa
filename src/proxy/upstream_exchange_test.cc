// PooledUpstream against backends on real loopback sockets (tests/fakes/fake_backend.h): what
// the backend is sent, what the client gets, what settlement is told, and the failures.
#include "proxy/upstream_exchange.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "fakes/fake_backend.h"
#include "fakes/fake_response_writer.h"

namespace trl {
namespace {

using testing::FakeBackend;

constexpr char kChat[] = R"({"model":"llama2-7b","messages":[{"role":"user","content":"hi"}]})";
constexpr char kRateLines[] =
    "x-ratelimit-limit-tokens: 100\r\nx-ratelimit-remaining-tokens: 90\r\n";
const std::string kHello =
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello world\"}}]}\n\n";
const std::string kUsage =
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,"
    "\"total_tokens\":5}}\n\n";
const std::string kDone = "data: [DONE]\n\n";

std::string ErrorJson(std::string_view message, std::string_view code) {
  return R"({"error":{"message":")" + std::string(message) +
         R"(","type":"api_error","param":null,"code":")" + std::string(code) + R"("}})";
}

class UpstreamExchangeTest : public ::testing::Test {
 protected:
  UpstreamExchangeTest() {
    model_config_.name = "llama2-7b";
    model_.config = &model_config_;
    model_.backends.push_back(std::make_shared<Backend>(backend_.Url()));
    client_.set(http::bhttp::field::authorization, "Bearer sk-secret");
    client_.set(http::bhttp::field::accept_encoding, "gzip");
    client_.set("x-custom", "kept");
  }

  ExchangeRequest Request(bool stream = false, bool wants_usage = false) {
    return {&model_,  "/v1/chat/completions", &client_, kChat, stream, wants_usage, kRateLines,
            &counter_};
  }
  // Starts the exchange; Finish runs the io_context until it is over.
  void Start(ExchangeRequest& request, FakeResponseWriter& writer) {
    result_.reset();
    asio::co_spawn(io_, upstream_.ForwardAndRelay(request, writer),
                   [this](std::exception_ptr, ExchangeResult r) { result_ = std::move(r); });
  }
  ExchangeResult Finish() {
    while (!result_) io_.run_one();
    return *result_;
  }
  ExchangeResult Exchange(ExchangeRequest request, FakeResponseWriter& writer) {
    Start(request, writer);
    return Finish();
  }
  // Starts a stream whose backend sends its first event and then nothing more.
  void StartHangingStream(ExchangeRequest& request, FakeResponseWriter& writer) {
    FakeBackend::Reply reply = FakeBackend::Stream({kHello}, false);
    reply.hang = true;
    backend_.Push(reply);
    Start(request, writer);
    while (writer.body().empty()) io_.run_one();
  }

  asio::io_context io_;
  FakeBackend backend_{io_};
  ConnectionPool pool_;
  PooledUpstream upstream_{pool_};
  ModelConfig model_config_;
  Model model_;
  ApproxTokenCounter counter_;
  http::Request client_{http::bhttp::verb::post, "/v1/chat/completions", 11};
  std::optional<ExchangeResult> result_;
};

TEST_F(UpstreamExchangeTest, APlainAnswerIsRelayedWithTheHeadLinesAndItsUsageKept) {
  const std::string answer =
      R"({"choices":[{"message":{"content":"Hi there"}}],"usage":{"prompt_tokens":3,"completion_tokens":2}})";
  backend_.Push(FakeBackend::Json(answer));
  FakeResponseWriter writer;
  ExchangeResult result = Exchange(Request(), writer);

  EXPECT_EQ(writer.status(), 200u);
  EXPECT_EQ(writer.body(), answer);
  EXPECT_EQ(writer.Header("content-type"), "application/json");
  EXPECT_EQ(writer.Header("x-ratelimit-limit-tokens"), "100");
  EXPECT_EQ(writer.Header("x-ratelimit-remaining-tokens"), "90");
  EXPECT_EQ(result.status, 200u);
  EXPECT_TRUE(result.reached_backend);
  EXPECT_FALSE(result.backend_rejected);
  ASSERT_TRUE(result.usage);
  EXPECT_EQ(result.usage->prompt_tokens, 3);
  EXPECT_EQ(result.usage->completion_tokens, 2);
  EXPECT_EQ(result.relayed_tokens, 0);  // the usage makes counting needless
  EXPECT_EQ(result.failure, UpstreamFailure::kNone);
  EXPECT_EQ(result.backend, backend_.Url().url);
  EXPECT_EQ(pool_.IdleCount(), 1u);  // kept for the next request

  // What the backend got: the body as it is, the client's own headers but not its key.
  ASSERT_EQ(backend_.received().size(), 1u);
  const FakeBackend::Received& got = backend_.received()[0];
  EXPECT_EQ(got.target, "/v1/chat/completions");
  EXPECT_EQ(got.body, kChat);
  EXPECT_EQ(got.headers["x-custom"], "kept");
  EXPECT_EQ(got.headers["accept-encoding"], "identity");
  EXPECT_EQ(got.headers.count("authorization"), 0u);
}

// A header the client's Connection header names is hop-by-hop (RFC 9110, 7.6.1): it is the
// client's hop's, not the backend's, whatever its name.
TEST_F(UpstreamExchangeTest, HeadersNamedInTheClientsConnectionHeaderStayBehind) {
  client_.set(http::bhttp::field::connection, "keep-alive, X-Hop-Secret ,x-other");
  client_.set("x-hop-secret", "for the front proxy");
  client_.set("X-Other", "also");
  backend_.Push(
      FakeBackend::Json(R"({"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":0}})"));
  FakeResponseWriter writer;
  Exchange(Request(), writer);
  ASSERT_EQ(backend_.received().size(), 1u);
  const FakeBackend::Received& got = backend_.received()[0];
  EXPECT_EQ(got.headers.count("x-hop-secret"), 0u);
  EXPECT_EQ(got.headers.count("x-other"), 0u);
  EXPECT_EQ(got.headers.count("connection"), 0u);
  EXPECT_EQ(got.headers["x-custom"], "kept");
}

// What a client says about where a request came from (X-Forwarded-*, X-Real-IP, Forwarded) is
// believed only from a trusted proxy (server.trusted_proxies), which the gateway adds itself to.
// From anyone else it is dropped, and the backend is told what the gateway saw.
TEST_F(UpstreamExchangeTest, ForwardingHeadersAreTheGatewaysUnlessFromATrustedProxy) {
  client_.set("X-Forwarded-For", "1.2.3.4");
  client_.set("x-forwarded-proto", "https");
  client_.set("X-Forwarded-Host", "spoofed.example");
  client_.set("X-Real-IP", "1.2.3.4");
  client_.set(http::bhttp::field::forwarded, "for=1.2.3.4");
  for (bool trusted : {false, true}) {
    SCOPED_TRACE(trusted);
    backend_.Push(
        FakeBackend::Json(R"({"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":0}})"));
    ExchangeRequest request = Request();
    request.client_address = "192.0.2.7";
    request.client_is_trusted_proxy = trusted;
    FakeResponseWriter writer;
    Exchange(request, writer);
    ASSERT_EQ(backend_.received().size(), trusted ? 2u : 1u);
    const FakeBackend::Received& got = backend_.received().back();
    EXPECT_EQ(got.headers.count("x-forwarded-for"), 1u);
    EXPECT_EQ(got.headers.count("x-forwarded-proto"), 1u);
    if (trusted) {
      EXPECT_EQ(got.headers.at("x-forwarded-for"), "1.2.3.4, 192.0.2.7");
      EXPECT_EQ(got.headers.at("x-forwarded-proto"), "https");
      EXPECT_EQ(got.headers.at("x-forwarded-host"), "spoofed.example");
      EXPECT_EQ(got.headers.at("x-real-ip"), "1.2.3.4");
      EXPECT_EQ(got.headers.at("forwarded"), "for=1.2.3.4");
    } else {
      EXPECT_EQ(got.headers.at("x-forwarded-for"), "192.0.2.7");
      EXPECT_EQ(got.headers.at("x-forwarded-proto"), "http");
      EXPECT_EQ(got.headers.count("x-forwarded-host"), 0u);
      EXPECT_EQ(got.headers.count("x-real-ip"), 0u);
      EXPECT_EQ(got.headers.count("forwarded"), 0u);
    }
  }
}

TEST_F(UpstreamExchangeTest, AnAnswerWithoutUsageHasItsTextCounted) {
  backend_.Push(FakeBackend::Json(R"({"choices":[{"message":{"content":"Hello world"}}]})"));
  FakeResponseWriter writer;
  ExchangeResult result = Exchange(Request(), writer);
  EXPECT_EQ(writer.status(), 200u);
  EXPECT_FALSE(result.usage);
  EXPECT_EQ(result.relayed_tokens, counter_.CountText("Hello world"));
}

TEST_F(UpstreamExchangeTest, ABackends5xxIsTheGatewaysOwn502AndServedNothing) {
  backend_.Push(FakeBackend::Json(R"({"error":"boom"})", 500));
  FakeResponseWriter writer;
  ExchangeResult result = Exchange(Request(), writer);
  EXPECT_EQ(writer.status(), 502u);
  EXPECT_EQ(writer.body(), ErrorJson("The model backend failed with HTTP 500. Retry the request.",
                                     "backend_error"));
  EXPECT_FALSE(writer.HasHeader("x-ratelimit-limit-tokens"));
  EXPECT_EQ(result.status, 502u);
  EXPECT_TRUE(result.backend_rejected);
  EXPECT_EQ(result.failure, UpstreamFailure::kHttpStatus);
  EXPECT_EQ(UpstreamFailureLabel(result.failure, result.backend_status), "http500");
}

TEST_F(UpstreamExchangeTest, AStreamIsRelayedWithoutTheUsageTheClientDidNotAskFor) {
  backend_.Push(FakeBackend::Stream({kHello, kUsage, kDone}));
  FakeResponseWriter writer;
  ExchangeResult result = Exchange(Request(true, false), writer);
  EXPECT_EQ(writer.status(), 200u);
  EXPECT_TRUE(writer.streamed());
  EXPECT_TRUE(writer.finished());
  EXPECT_EQ(writer.Header("content-type"), "text/event-stream");
  EXPECT_EQ(writer.Header("x-ratelimit-limit-tokens"), "100");
  EXPECT_EQ(writer.body(), kHello + kDone);
  ASSERT_TRUE(result.usage);
  EXPECT_EQ(result.usage->Total(), 5);
  EXPECT_EQ(result.failure, UpstreamFailure::kNone);
  EXPECT_TRUE(result.first_byte);
  EXPECT_EQ(pool_.IdleCount(), 1u);
}

TEST_F(UpstreamExchangeTest, AStreamKeepsTheUsageTheClientAskedFor) {
  backend_.Push(FakeBackend::Stream({kHello, kUsage, kDone}));
  FakeResponseWriter writer;
  Exchange(Request(true, true), writer);
  EXPECT_EQ(writer.body(), kHello + kUsage + kDone);
}

TEST_F(UpstreamExchangeTest, AStreamTheBackendBreaksOffEndsWithAnErrorEvent) {
  FakeBackend::Reply reply = FakeBackend::Stream({kHello}, false);
  reply.close = true;
  backend_.Push(reply);
  FakeResponseWriter writer;
  ExchangeResult result = Exchange(Request(true), writer);
  EXPECT_EQ(writer.body(),
            kHello + "data: " +
                ErrorJson("The model backend ended the stream early. Retry the request.",
                          "backend_error") +
                "\n\n");
  EXPECT_TRUE(writer.finished());  // the client's connection stays usable
  EXPECT_EQ(result.failure, UpstreamFailure::kTruncated);
  EXPECT_FALSE(result.usage);
  EXPECT_EQ(result.relayed_tokens, counter_.CountText("Hello world"));
  EXPECT_EQ(pool_.IdleCount(), 0u);
}

TEST_F(UpstreamExchangeTest, AClientThatHangsUpAbandonsTheExchange) {
  FakeResponseWriter writer;
  ExchangeRequest request = Request(true);
  StartHangingStream(request, writer);
  writer.HangUp();
  ExchangeResult result = Finish();
  EXPECT_EQ(result.status, 200u);
  EXPECT_EQ(result.failure, UpstreamFailure::kNone);  // not the backend's fault
  EXPECT_EQ(result.relayed_tokens, counter_.CountText("Hello world"));
  EXPECT_FALSE(writer.finished());
  EXPECT_EQ(pool_.IdleCount(), 0u);  // the backend was still generating: not reused
}

TEST_F(UpstreamExchangeTest, AShutdownCutEndsTheStreamWithAnErrorEvent) {
  FakeResponseWriter writer;
  ExchangeRequest request = Request(true);
  StartHangingStream(request, writer);
  writer.CutNow();
  ExchangeResult result = Finish();
  EXPECT_EQ(result.failure, UpstreamFailure::kShutdown);
  EXPECT_EQ(writer.body(),
            kHello + "data: " +
                ErrorJson("The gateway is shutting down; the stream was cut. Retry the request.",
                          "model_unavailable") +
                "\n\n");
  EXPECT_TRUE(writer.finished());
  EXPECT_EQ(result.relayed_tokens, counter_.CountText("Hello world"));
}

TEST_F(UpstreamExchangeTest, ARefusedConnectionIsRetriedOnAnotherBackend) {
  auto refusing = std::make_shared<Backend>(testing::RefusingBackendUrl());
  model_.backends.insert(model_.backends.begin(), refusing);
  Backend& good = *model_.backends.back();
  good.BeginRequest();  // busier, so the refusing backend is picked first
  FakeResponseWriter writer;
  ExchangeResult result = Exchange(Request(), writer);
  good.EndRequest();
  EXPECT_EQ(writer.status(), 200u);
  EXPECT_EQ(result.backend, good.Url().url);
  EXPECT_EQ(result.failure, UpstreamFailure::kNone);
  EXPECT_FALSE(refusing->Up());  // ejected
  EXPECT_EQ(backend_.received().size(), 1u);
}

TEST_F(UpstreamExchangeTest, NoBackendAcceptingIsA503NamingTheConnectFailure) {
  model_.backends = {std::make_shared<Backend>(testing::RefusingBackendUrl())};
  FakeResponseWriter writer;
  ExchangeResult result = Exchange(Request(), writer);
  EXPECT_EQ(writer.status(), 503u);
  EXPECT_EQ(writer.body(),
            ErrorJson("No healthy backend is available for model 'llama2-7b'. Retry later.",
                      "model_unavailable"));
  EXPECT_FALSE(writer.HasHeader("x-ratelimit-limit-tokens"));
  EXPECT_FALSE(result.reached_backend);
  EXPECT_EQ(result.failure, UpstreamFailure::kConnect);
}

TEST_F(UpstreamExchangeTest, NoAvailableBackendIsUnavailable) {
  Backend& only = *model_.backends.front();
  only.ReportFailure(std::chrono::steady_clock::now() + std::chrono::hours(1));
  FakeResponseWriter writer;
  ExchangeResult result = Exchange(Request(), writer);
  EXPECT_EQ(writer.status(), 503u);
  EXPECT_EQ(result.failure, UpstreamFailure::kUnavailable);
  EXPECT_EQ(backend_.accepted(), 0);
}

TEST_F(UpstreamExchangeTest, AStalePooledConnectionIsRetriedOnAFreshOne) {
  FakeBackend::Reply closing = FakeBackend::Json("{}");
  closing.close = true;  // after an answer that said nothing of closing
  backend_.Push(closing);
  FakeResponseWriter first;
  Exchange(Request(), first);
  ASSERT_EQ(pool_.IdleCount(), 1u);
  while (backend_.closed() < 1) io_.run_one();

  FakeResponseWriter second;
  ExchangeResult result = Exchange(Request(), second);
  EXPECT_EQ(second.status(), 200u);
  EXPECT_EQ(result.failure, UpstreamFailure::kNone);
  EXPECT_TRUE(model_.backends.front()->Up());  // a stale connection is not the backend's fault
  EXPECT_EQ(backend_.accepted(), 2);
  EXPECT_EQ(backend_.received().size(), 2u);
}

TEST_F(UpstreamExchangeTest, ACompressedAnswerIsA502AndCannotBeCounted) {
  backend_.Push(
      {"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
       "Content-Length: 4\r\n\r\nabcd"});
  FakeResponseWriter writer;
  ExchangeResult result = Exchange(Request(), writer);
  EXPECT_EQ(writer.status(), 502u);
  EXPECT_EQ(writer.body(), ErrorJson("The model backend answered in an encoding the gateway "
                                     "cannot read (gzip). Retry the request.",
                                     "backend_error"));
  EXPECT_EQ(result.failure, UpstreamFailure::kEncoding);
  EXPECT_TRUE(result.uncountable);
}

TEST_F(UpstreamExchangeTest, ABackendSilentForTheModelsTimeoutIsA504) {
  model_config_.timeout = std::chrono::milliseconds(20);
  FakeBackend::Reply silent;
  silent.hang = true;
  backend_.Push(silent);
  FakeResponseWriter writer;
  ExchangeResult result = Exchange(Request(), writer);
  EXPECT_EQ(writer.status(), 504u);
  EXPECT_EQ(writer.body(), ErrorJson("The model backend did not answer within 20ms. Retry later.",
                                     "backend_timeout"));
  EXPECT_EQ(result.failure, UpstreamFailure::kTimeout);
  EXPECT_TRUE(result.reached_backend);
}

TEST(UpstreamFailureLabelTest, LabelsAreTheDocumentedOnes) {
  EXPECT_EQ(UpstreamFailureLabel(UpstreamFailure::kNone, 0), "");
  EXPECT_EQ(UpstreamFailureLabel(UpstreamFailure::kConnect, 0), "connect");
  EXPECT_EQ(UpstreamFailureLabel(UpstreamFailure::kReset, 0), "reset");
  EXPECT_EQ(UpstreamFailureLabel(UpstreamFailure::kTimeout, 0), "timeout");
  EXPECT_EQ(UpstreamFailureLabel(UpstreamFailure::kTruncated, 0), "truncated");
  EXPECT_EQ(UpstreamFailureLabel(UpstreamFailure::kHttpStatus, 503), "http503");
  EXPECT_EQ(UpstreamFailureLabel(UpstreamFailure::kEncoding, 0), "encoding");
  EXPECT_EQ(UpstreamFailureLabel(UpstreamFailure::kShutdown, 0), "shutdown");
  EXPECT_EQ(UpstreamFailureLabel(UpstreamFailure::kUnavailable, 0), "unavailable");
}

}  // namespace
}  // namespace trl
