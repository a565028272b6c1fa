// The gateway in-process: Gateway + the embedded store + a fake clock, with a scripted upstream
// (tests/fakes/fake_upstream.h) or real loopback backends (tests/fakes/fake_backend.h). What a
// client gets (status, headers, body), what the backend is sent, what the budgets hold after
// settlement, and the metrics, for each step of a request's life.
#include "proxy/gateway.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <future>
#include <thread>

#include "common/crypto.h"
#include "fakes/fake_backend.h"
#include "fakes/fake_clock.h"
#include "fakes/fake_key_store.h"
#include "fakes/fake_response_writer.h"
#include "fakes/fake_upstream.h"
#include "fakes/run_awaitable.h"
#include "limits/memory_store.h"
#include "limits/token_counter.h"
#include "proxy/upstream_exchange.h"

namespace trl {
namespace {

using testing::FakeBackend;

constexpr char kConfig[] = R"(
listen: 127.0.0.1:0
store:
  backend: memory
models:
  - name: llama2-7b
    aliases: [llama]
    backends: [${BACKEND_URL}]
    max_output_tokens: 100
    passthrough: [/health, /v1/responses/*]
  - name: other
    backends: [${BACKEND_URL}]
    passthrough: [/v1/responses/*]
api_keys:
  - name: team-a
    key: sk-a
    limits:
      - {tokens: 1000, per: 1m}
      - {requests: 2, per: 1m}
  - name: team-b
    key: sk-b
    models: [other]
)";
// "hi" is 1 token, its message 4 more, the request 3: a prompt estimate of 8 (token_counter.h).
constexpr char kChat[] =
    R"({"model":"llama","max_tokens":50,"messages":[{"role":"user","content":"hi"}]})";
constexpr int64_t kPromptEstimate = 8;
const std::vector<LimitConfig> kTeamALimits = {
    {LimitKind::kTokens, 1000, Millis(60'000), false, ""},
    {LimitKind::kRequests, 2, Millis(60'000), false, ""}};

std::shared_ptr<const Config> LoadConfig(const std::string& backend_url,
                                         const std::string& more_yaml = "") {
  LoadResult loaded = LoadConfigText(kConfig + more_yaml, [&](const std::string& name) {
    return name == "BACKEND_URL" ? std::optional<std::string>(backend_url) : std::nullopt;
  });
  EXPECT_TRUE(loaded.errors.empty()) << loaded.errors.front();
  return loaded.config;
}

http::Request Post(std::string body, std::string_view key = "sk-a",
                   std::string_view target = "/v1/chat/completions") {
  http::Request request{http::bhttp::verb::post, target, 11};
  if (!key.empty()) request.set(http::bhttp::field::authorization, "Bearer " + std::string(key));
  request.body() = std::move(body);
  return request;
}

http::Request GetModels(std::string_view key) {
  http::Request request{http::bhttp::verb::get, "/v1/models", 11};
  request.set(http::bhttp::field::authorization, "Bearer " + std::string(key));
  return request;
}

// The gateway with an Upstream of the test's choosing, on one io_context.
class GatewayHarness {
 public:
  // `more_yaml`: lines added to kConfig.
  GatewayHarness(asio::io_context& io, const std::string& backend_url, Upstream& upstream,
                 const KeyDirectory* keys = nullptr, const std::string& more_yaml = "")
      : io_(io), gateway_(metrics_, limiter_, clock_, keys, &usage_, &upstream) {
    gateway_.SetSnapshot(std::make_shared<GatewaySnapshot>(LoadConfig(backend_url, more_yaml)));
  }

  // Handles `request` to its end (the io_context runs until then).
  FakeResponseWriter Handle(http::Request request) {
    FakeResponseWriter writer;
    bool done = false;
    asio::co_spawn(io_, gateway_.Handle(request, writer), [&](std::exception_ptr) { done = true; });
    while (!done) io_.run_one();
    io_.restart();
    return writer;
  }
  // The key's budgets now: tokens, then requests.
  std::vector<int64_t> TeamALevels() {
    LimitReadings r = RunAwaitable(limiter_.ReadKeyLimits("team-a", "", kTeamALimits));
    EXPECT_TRUE(r.ok);
    std::vector<int64_t> levels;
    for (const LimitReading& reading : r.limits) levels.push_back(reading.level);
    return levels;
  }
  double CounterValue(Family<Counter>& family, const LabelValues& labels) {
    return family.With(labels).Value();
  }

  asio::io_context& io_;
  FakeClock clock_;
  MetricsRegistry metrics_;
  MemoryStore store_;
  Limiter limiter_{store_, clock_};
  UsageRecorder usage_;
  Gateway gateway_;
};

// A key is refused from its expires_at on (401 key_expired: the caller holds the secret, so
// saying why tells it nothing it could not use); the secret a rotation replaced works until the
// end of its grace period, the new one from the rotation on. On the gateway's clock.
TEST(GatewayKeyExpiryTest, KeysAndRotatedSecretsStopAtTheirTime) {
  asio::io_context io;
  FakeUpstream upstream;
  FakeKeyStore store;
  KeyDirectory keys(store);
  // The fake clock starts at 2023-11-14T22:13:20Z (1,700,000,000 s).
  GatewayHarness h(io, "http://127.0.0.1:1", upstream, &keys,
                   "  - name: team-c\n    key: sk-c\n    expires_at: 2023-11-14T22:13:30Z\n");
  KeyRecord rotated;
  rotated.key.name = "rotated";
  rotated.key.key_sha256 = Sha256Of("sk-new");
  rotated.previous_sha256 = Sha256Of("sk-old");
  rotated.previous_until = 1'700'000'005;
  rotated.key.expires_at = 1'700'000'020;
  ASSERT_EQ(RunAwaitable(store.Create(rotated)).status, KeyStore::WriteStatus::kOk);
  ASSERT_TRUE(RunAwaitable(keys.Sync(true, nullptr)));
  auto models = [&](std::string_view key) { return h.Handle(GetModels(key)); };
  auto expect_expired = [&](std::string_view key) {
    FakeResponseWriter w = models(key);
    EXPECT_EQ(w.status(), 401u) << key;
    EXPECT_NE(w.body().find(R"("code":"key_expired")"), std::string::npos) << w.body();
  };
  for (std::string_view key : {"sk-c", "sk-new", "sk-old"}) EXPECT_EQ(models(key).status(), 200u);

  h.clock_.Advance(std::chrono::milliseconds(4999));
  EXPECT_EQ(models("sk-old").status(), 200u);
  h.clock_.Advance(std::chrono::milliseconds(1));
  expect_expired("sk-old");
  EXPECT_EQ(models("sk-new").status(), 200u);

  h.clock_.Advance(std::chrono::seconds(5));  // 22:13:30
  expect_expired("sk-c");
  EXPECT_EQ(models("sk-a").status(), 200u);
  h.clock_.Advance(std::chrono::seconds(10));
  expect_expired("sk-new");
  expect_expired("sk-old");
  EXPECT_EQ(models("sk-unknown").status(), 401u);
  EXPECT_EQ(models("sk-unknown").body().find("key_expired"), std::string::npos);
}

class GatewayTest : public ::testing::Test {
 protected:
  asio::io_context io_;
  FakeUpstream upstream_;
  GatewayHarness h_{io_, "http://127.0.0.1:1", upstream_};
  GatewayMetrics& metrics_ = h_.gateway_.Metrics();
};

// A key made through the admin API is trusted while this instance's copy of the keys is at most
// store.key_sync_max_stale (default 1m) old: past that, a revoke made on another instance may
// not have reached it, so such a key gets 503 (retryable) until a sync succeeds. Config keys
// are not in the store and keep working.
TEST(GatewayKeySyncTest, KeysMadeThroughTheAdminApiAreRefusedWhileTheirCopyIsStale) {
  asio::io_context io;
  FakeUpstream upstream;
  FakeClock clock;
  FakeKeyStore store;
  KeyDirectory keys(store, clock);
  GatewayHarness h(io, "http://127.0.0.1:1", upstream, &keys);
  KeyRecord made;
  made.key.name = "made";
  made.key.key_sha256 = Sha256Of("sk-made");
  ASSERT_EQ(RunAwaitable(store.Create(made)).status, KeyStore::WriteStatus::kOk);
  ASSERT_TRUE(RunAwaitable(keys.Sync(true, nullptr)));
  auto models = [&](std::string_view key) { return h.Handle(GetModels(key)); };
  EXPECT_EQ(models("sk-made").status(), 200u);

  store.failing = true;
  clock.Advance(std::chrono::seconds(60));
  EXPECT_FALSE(RunAwaitable(keys.Sync(false, nullptr)));
  EXPECT_EQ(models("sk-made").status(), 200u);  // a minute old: still trusted
  clock.Advance(std::chrono::milliseconds(1));
  FakeResponseWriter stale = models("sk-made");
  EXPECT_EQ(stale.status(), 503u);
  EXPECT_NE(stale.body().find(R"("code":"key_store_unavailable")"), std::string::npos)
      << stale.body();
  EXPECT_EQ(models("sk-a").status(), 200u);
  EXPECT_EQ(models("sk-unknown").status(), 401u);

  store.failing = false;
  EXPECT_TRUE(RunAwaitable(keys.Sync(false, nullptr)));
  EXPECT_EQ(models("sk-made").status(), 200u);
}

// With identity.source header:<name>, each value is an identity with budgets, usage rows and
// metric series of its own: values that are not short printable names get 401, and past
// identity.max_identities a new name gets 503 while the names already let in keep working.
TEST(GatewayHeaderIdentityTest, ValuesAreCheckedAndNewNamesBounded) {
  asio::io_context io;
  FakeUpstream upstream;
  GatewayHarness h(io, "http://127.0.0.1:1", upstream, nullptr,
                   "identity: {source: 'header:x-user', max_identities: 2}\n");
  auto models = [&](std::string_view user) {
    http::Request request{http::bhttp::verb::get, "/v1/models", 11};
    request.set("x-user", user);
    return h.Handle(std::move(request));
  };
  EXPECT_EQ(models("alice").status(), 200u);
  EXPECT_EQ(models("bob").status(), 200u);
  FakeResponseWriter full = models("carol");
  EXPECT_EQ(full.status(), 503u);
  EXPECT_NE(full.body().find(R"("code":"identity_limit_reached")"), std::string::npos)
      << full.body();
  EXPECT_EQ(models("alice").status(), 200u);
  EXPECT_EQ(models("team-a").status(), 200u);  // a configured key's name is not counted
  FakeResponseWriter invalid = models("caf\xc3\xa9");
  EXPECT_EQ(invalid.status(), 401u);
  EXPECT_NE(invalid.body().find(R"("code":"invalid_identity")"), std::string::npos)
      << invalid.body();
  http::Request none{http::bhttp::verb::get, "/v1/models", 11};
  EXPECT_EQ(h.Handle(std::move(none)).status(), 401u);
  EXPECT_EQ(h.Handle(Post(kChat, "")).status(), 401u);  // no x-user: nothing reaches a backend
  EXPECT_TRUE(upstream.seen().empty());
  std::string metrics;
  h.gateway_.RenderStateMetrics(metrics);
  EXPECT_NE(metrics.find("trl_header_identities 2\n"), std::string::npos) << metrics;
}

TEST_F(GatewayTest, AnAdmittedRequestIsForwardedWithItsRateLimitHeaders) {
  upstream_.Push(FakeUpstream::Answer(Usage{7, 3}));
  FakeResponseWriter writer = h_.Handle(Post(kChat));

  EXPECT_EQ(writer.status(), 200u);
  EXPECT_EQ(writer.Header("x-ratelimit-limit-tokens"), "1000");
  EXPECT_EQ(writer.Header("x-ratelimit-remaining-tokens"),
            std::to_string(1000 - kPromptEstimate - 50));
  EXPECT_EQ(writer.Header("x-ratelimit-limit-requests"), "2");
  EXPECT_EQ(writer.Header("x-ratelimit-remaining-requests"), "1");
  ASSERT_EQ(upstream_.seen().size(), 1u);
  const FakeUpstream::Seen& seen = upstream_.seen()[0];
  EXPECT_EQ(seen.model, "llama2-7b");  // the alias resolved
  EXPECT_EQ(seen.target, "/v1/chat/completions");
  EXPECT_NE(seen.body.find(R"("model":"llama2-7b")"), std::string::npos) << seen.body;
  EXPECT_NE(seen.head_lines.find("x-ratelimit-limit-tokens: 1000\r\n"), std::string::npos)
      << seen.head_lines;
  EXPECT_FALSE(seen.stream);
}

// POST /v1/responses goes the way of chat: charged, forwarded with its cap in
// max_output_tokens, settled on input_tokens and output_tokens, which the client keeps.
TEST_F(GatewayTest, TheResponsesApiIsChargedAndSettledAsChat) {
  upstream_.Push(FakeUpstream::Answer(Usage{6, 4}));
  FakeResponseWriter writer =
      h_.Handle(Post(R"({"model":"llama","input":"hi","max_output_tokens":20,"stream":true})",
                     "sk-a", "/v1/responses"));
  EXPECT_EQ(writer.status(), 200u);
  EXPECT_EQ(writer.Header("x-ratelimit-limit-tokens"), "1000");
  ASSERT_EQ(upstream_.seen().size(), 1u);
  const FakeUpstream::Seen& seen = upstream_.seen()[0];
  EXPECT_EQ(seen.target, "/v1/responses");
  EXPECT_EQ(seen.body,
            R"({"model":"llama2-7b","input":"hi","max_output_tokens":20,"stream":true})");
  EXPECT_EQ(seen.usage_fields, UsageFields::kResponses);
  EXPECT_TRUE(seen.client_wants_usage);
  EXPECT_EQ(h_.TeamALevels(), (std::vector<int64_t>{1000 - 10, 1}));
  std::string words;
  for (int i = 0; i < 1200; ++i) words += "word ";
  FakeResponseWriter too_big =
      h_.Handle(Post(R"({"model":"llama","input":")" + words + R"("})", "sk-a", "/v1/responses"));
  EXPECT_EQ(too_big.status(), 400u);
  EXPECT_NE(too_big.body().find(R"("param":"input")"), std::string::npos) << too_big.body();
}

// vLLM's rerank is charged its query and documents, settled on the usage it reports;
// /tokenize costs a request and no tokens, and is forwarded to the backend's own /tokenize.
TEST_F(GatewayTest, RerankIsChargedAndTokenizeCostsOnlyARequest) {
  upstream_.Push(FakeUpstream::Answer(Usage{9, 0}));
  FakeResponseWriter rerank = h_.Handle(
      Post(R"({"model":"llama","query":"q","documents":["a","b"]})", "sk-a", "/v1/rerank"));
  EXPECT_EQ(rerank.status(), 200u);
  ASSERT_EQ(upstream_.seen().size(), 1u);
  EXPECT_EQ(upstream_.seen()[0].target, "/v1/rerank");
  EXPECT_EQ(upstream_.seen()[0].usage_fields, UsageFields::kPromptOnly);
  EXPECT_EQ(upstream_.seen()[0].body, R"({"model":"llama2-7b","query":"q","documents":["a","b"]})");
  EXPECT_EQ(h_.TeamALevels(), (std::vector<int64_t>{1000 - 9, 1}));

  upstream_.Push(FakeUpstream::Answer(std::nullopt, /*relayed=*/0));
  FakeResponseWriter tokenize =
      h_.Handle(Post(R"({"model":"llama","prompt":"hello"})", "sk-a", "/tokenize"));
  EXPECT_EQ(tokenize.status(), 200u);
  EXPECT_EQ(upstream_.seen().back().target, "/tokenize");
  EXPECT_FALSE(tokenize.HasHeader("x-ratelimit-limit-tokens"));
  EXPECT_EQ(tokenize.Header("x-ratelimit-remaining-requests"), "0");
  EXPECT_EQ(h_.TeamALevels(), (std::vector<int64_t>{1000 - 9, 0}));
  FakeResponseWriter refused =
      h_.Handle(Post(R"({"model":"llama","tokens":[1]})", "sk-a", "/detokenize"));
  EXPECT_EQ(refused.status(), 429u);
  EXPECT_NE(refused.body().find(R"("type":"requests")"), std::string::npos) << refused.body();
}

// A transcription: a form forwarded with its own Content-Type; charged its seconds of audio
// (here not WAV: 4000 bytes at 2000 a second) at the model's audio_second (50) and the model's
// output cap; settled on the seconds the backend reports and the transcript's tokens.
TEST_F(GatewayTest, ATranscriptionIsChargedItsAudioAndSettledOnTheReportedSeconds) {
  const std::string type = "multipart/form-data; boundary=B";
  const std::string form =
      "--B\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nllama\r\n"
      "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.ogg\"\r\n\r\n" +
      std::string(4000, 'x') + "\r\n--B--\r\n";
  FakeUpstream::Exchange answer = FakeUpstream::Answer(std::nullopt, /*relayed=*/3);
  answer.result.audio_seconds = 5;
  upstream_.Push(answer);
  http::Request request = Post(form, "sk-a", "/v1/audio/transcriptions");
  request.set(http::bhttp::field::content_type, type);
  FakeResponseWriter writer = h_.Handle(std::move(request));
  EXPECT_EQ(writer.status(), 200u);
  ASSERT_EQ(upstream_.seen().size(), 1u);
  const FakeUpstream::Seen& seen = upstream_.seen()[0];
  EXPECT_EQ(seen.content_type, type);
  EXPECT_EQ(seen.usage_fields, UsageFields::kTranscription);
  EXPECT_NE(seen.body.find("\r\n\r\nllama2-7b\r\n"), std::string::npos) << seen.body;
  ApproxTokenCounter counter;
  const int64_t overhead = counter.PerRequestOverhead();
  EXPECT_EQ(writer.Header("x-ratelimit-remaining-tokens"),
            std::to_string(1000 - (overhead + 2 * 50) - 100));  // the model's cap: 100
  EXPECT_EQ(h_.TeamALevels(), (std::vector<int64_t>{1000 - (overhead + 5 * 50) - 3, 1}));
  http::Request json = Post(R"({"model":"llama"})", "sk-a", "/v1/audio/transcriptions");
  FakeResponseWriter refused = h_.Handle(std::move(json));
  EXPECT_EQ(refused.status(), 400u);
  EXPECT_NE(refused.body().find("multipart/form-data"), std::string::npos) << refused.body();
}

// A model's passthrough paths: forwarded with their method, query and body as they came (the
// model's canonical name aside), held to request limits, never charged tokens. A path several
// models list needs the model named; a path none lists is 404.
TEST_F(GatewayTest, PassthroughPathsAreForwardedAsTheyCame) {
  http::Request get{http::bhttp::verb::get, "/health?verbose=1", 11};
  get.set(http::bhttp::field::authorization, "Bearer sk-a");
  FakeResponseWriter health = h_.Handle(std::move(get));
  EXPECT_EQ(health.status(), 200u);
  ASSERT_EQ(upstream_.seen().size(), 1u);
  EXPECT_EQ(upstream_.seen()[0].model, "llama2-7b");
  EXPECT_EQ(upstream_.seen()[0].target, "/health?verbose=1");
  EXPECT_EQ(upstream_.seen()[0].method, "GET");
  EXPECT_EQ(upstream_.seen()[0].body, "");
  EXPECT_EQ(health.Header("x-ratelimit-remaining-requests"), "1");
  EXPECT_FALSE(health.HasHeader("x-ratelimit-limit-tokens"));

  FakeResponseWriter cancel =
      h_.Handle(Post(R"({"model":"llama"})", "sk-a", "/v1/responses/resp_1/cancel"));
  EXPECT_EQ(cancel.status(), 200u);
  ASSERT_EQ(upstream_.seen().size(), 2u);
  EXPECT_EQ(upstream_.seen()[1].body, R"({"model":"llama2-7b"})");
  EXPECT_EQ(h_.TeamALevels(), (std::vector<int64_t>{1000, 0}));  // no token charged

  http::Request ambiguous{http::bhttp::verb::get, "/v1/responses/resp_1", 11};
  ambiguous.set(http::bhttp::field::authorization, "Bearer sk-b");
  FakeResponseWriter several = h_.Handle(std::move(ambiguous));
  EXPECT_EQ(several.status(), 400u);
  EXPECT_NE(several.body().find(R"("param":"model")"), std::string::npos) << several.body();
  FakeResponseWriter elsewhere =
      h_.Handle(Post(R"({"model":"llama"})", "sk-b", "/v1/responses/resp_1/cancel"));
  EXPECT_EQ(elsewhere.status(), 403u);  // team-b may use `other` only
  EXPECT_EQ(h_.Handle(Post("{}", "sk-a", "/v1/other")).status(), 404u);
  EXPECT_EQ(upstream_.seen().size(), 2u);
}

// A model's own tokenizer (Exact) that counts as the estimate does, once the test lets it.
class HeldCounter final : public TokenCounter {
 public:
  int64_t CountText(std::string_view text) const override {
    counted_on = std::this_thread::get_id();
    entered.set_value();
    if (counted_on != io_thread) released.wait();  // never block the test's own thread
    return ApproxTokenCounter().CountText(text);
  }
  int64_t PerMessageOverhead() const override { return 4; }
  int64_t PerRequestOverhead() const override { return 3; }
  bool Exact() const override { return true; }

  mutable std::promise<void> entered;
  std::shared_future<void> released;
  mutable std::thread::id counted_on;
  const std::thread::id io_thread = std::this_thread::get_id();
};

// Counting a large prompt with a model's own tokenizer takes tens of milliseconds: it is done
// on the counting threads, and the I/O thread serves other requests meanwhile.
TEST_F(GatewayTest, ALargePromptIsCountedOffTheIoThread) {
  auto snapshot = std::make_shared<GatewaySnapshot>(LoadConfig("http://127.0.0.1:1"));
  auto held = std::make_shared<HeldCounter>();
  std::promise<void> release;
  held->released = release.get_future().share();
  snapshot->counters["other"] = held;
  h_.gateway_.SetSnapshot(snapshot);

  const std::string large = R"({"model":"other","messages":[{"role":"user","content":")" +
                            std::string(100'000, 'a') + R"("}]})";
  http::Request big = Post(large, "sk-b");
  FakeResponseWriter big_writer;
  bool big_done = false;
  asio::co_spawn(io_, h_.gateway_.Handle(big, big_writer),
                 [&](std::exception_ptr) { big_done = true; });
  io_.poll();  // up to the count, handed to the counting threads
  held->entered.get_future().wait();
  ASSERT_NE(held->counted_on, std::this_thread::get_id());

  FakeResponseWriter small = h_.Handle(Post(kChat));  // served while the count is held
  EXPECT_EQ(small.status(), 200u);
  EXPECT_FALSE(big_done);
  release.set_value();
  while (!big_done) io_.run_one();
  EXPECT_EQ(big_writer.status(), 200u);
  ASSERT_EQ(upstream_.seen().size(), 2u);
  EXPECT_EQ(upstream_.seen()[0].model, "llama2-7b");
  EXPECT_EQ(upstream_.seen()[1].model, "other");
}

TEST_F(GatewayTest, SettlementReplacesTheReservationByTheBackendsUsage) {
  upstream_.Push(FakeUpstream::Answer(Usage{7, 3}));
  h_.Handle(Post(kChat));
  EXPECT_EQ(h_.TeamALevels(), (std::vector<int64_t>{1000 - 10, 1}));
  EXPECT_EQ(h_.CounterValue(metrics_.tokens, {"llama2-7b", "team-a", "", "prompt"}), 7);
  EXPECT_EQ(h_.CounterValue(metrics_.tokens, {"llama2-7b", "team-a", "", "completion"}), 3);
  EXPECT_EQ(h_.CounterValue(metrics_.requests, {"llama2-7b", "team-a", "", "200"}), 1);
  EXPECT_EQ(h_.limiter_.Stats().by_usage.applied, 1u);
}

TEST_F(GatewayTest, WithoutUsageThePromptEstimateAndTheRelayedTokensAreCharged) {
  upstream_.Push(FakeUpstream::Answer(std::nullopt, /*relayed=*/12));
  h_.Handle(Post(kChat));
  EXPECT_EQ(h_.TeamALevels(), (std::vector<int64_t>{1000 - kPromptEstimate - 12, 1}));
  EXPECT_EQ(h_.limiter_.Stats().by_estimate.applied, 1u);
}

TEST_F(GatewayTest, ABackendFailureCostsNothingAndIsCountedByReason) {
  upstream_.Push(FakeUpstream::Failure(503, UpstreamFailure::kConnect, "{}"));
  EXPECT_EQ(h_.Handle(Post(kChat)).status(), 503u);
  EXPECT_EQ(h_.TeamALevels()[0], 1000);  // nothing reached a backend: nothing charged
  EXPECT_EQ(h_.CounterValue(metrics_.upstream_errors, {"llama2-7b", "http://backend-1", "connect"}),
            1);
  EXPECT_EQ(h_.CounterValue(metrics_.requests, {"llama2-7b", "team-a", "", "503"}), 1);
}

TEST_F(GatewayTest, TheThirdRequestInAMinuteIs429WithRetryAfter) {
  h_.Handle(Post(kChat));
  h_.Handle(Post(kChat));
  h_.clock_.Advance(std::chrono::seconds(15));
  FakeResponseWriter writer = h_.Handle(Post(kChat));

  EXPECT_EQ(writer.status(), 429u);
  EXPECT_EQ(writer.Header("retry-after"), "15");  // the first request's slot, back at 1m
  EXPECT_EQ(writer.Header("retry-after-ms"), "15000");
  EXPECT_EQ(writer.Header("x-ratelimit-remaining-requests"), "0");
  EXPECT_EQ(writer.Header("x-ratelimit-limit-requests"), "2");
  EXPECT_NE(writer.body().find(R"("type":"requests")"), std::string::npos) << writer.body();
  EXPECT_NE(writer.body().find(R"("code":"rate_limit_exceeded")"), std::string::npos);
  EXPECT_EQ(upstream_.seen().size(), 2u);  // the refused one was not forwarded
  EXPECT_EQ(h_.CounterValue(metrics_.rejections, {"llama2-7b", "team-a", "", "requests", "key"}),
            1);
  EXPECT_EQ(h_.CounterValue(metrics_.requests, {"llama2-7b", "team-a", "", "429"}), 1);
}

TEST_F(GatewayTest, AReservationNoLimitCanGrantIs400) {
  FakeResponseWriter writer = h_.Handle(Post(
      R"({"model":"llama","max_tokens":100,"n":20,"messages":[{"role":"user","content":"hi"}]})"));
  EXPECT_EQ(writer.status(), 400u);
  EXPECT_NE(writer.body().find(R"("code":"tokens_exceed_limit")"), std::string::npos);
  EXPECT_NE(writer.body().find(R"("param":"max_tokens")"), std::string::npos);
  EXPECT_TRUE(upstream_.seen().empty());
}

TEST_F(GatewayTest, AMissingOrUnknownKeyIs401) {
  const std::string expected =
      R"({"error":{"message":"Invalid or missing API key. Send it as 'Authorization: Bearer <key>'.",)"
      R"("type":"invalid_request_error","param":null,"code":"invalid_api_key"}})";
  for (std::string_view key : {"", "sk-nobody"}) {
    FakeResponseWriter writer = h_.Handle(Post(kChat, key));
    EXPECT_EQ(writer.status(), 401u);
    EXPECT_EQ(writer.body(), expected);
    EXPECT_FALSE(writer.HasHeader("x-ratelimit-limit-tokens"));
  }
  FakeResponseWriter models = h_.Handle(Post("", "sk-nobody", "/v1/models"));
  EXPECT_EQ(models.status(), 405u);  // /v1/models is GET only, whoever asks
  EXPECT_EQ(models.Header("Allow"), "GET");
  http::Request get{http::bhttp::verb::get, "/v1/models", 11};
  EXPECT_EQ(h_.Handle(get).body(), expected);
  EXPECT_TRUE(upstream_.seen().empty());
  EXPECT_EQ(h_.CounterValue(metrics_.requests, {"", "", "", "401"}), 2);
}

TEST_F(GatewayTest, ABodyThatIsNotARequestIs400) {
  FakeResponseWriter writer = h_.Handle(Post(R"({"model":"llama","messages":"hi"})"));
  EXPECT_EQ(writer.status(), 400u);
  EXPECT_NE(writer.body().find(R"("code":"invalid_request")"), std::string::npos);
  EXPECT_EQ(h_.CounterValue(metrics_.requests, {"", "team-a", "", "400"}), 1);
  EXPECT_EQ(h_.TeamALevels(), (std::vector<int64_t>{1000, 2}));  // nothing admitted
}

TEST_F(GatewayTest, UnknownAndForbiddenModels) {
  FakeResponseWriter unknown =
      h_.Handle(Post(R"({"model":"gpt-9","messages":[{"role":"user","content":"hi"}]})"));
  EXPECT_EQ(unknown.status(), 404u);
  EXPECT_NE(unknown.body().find(R"("code":"model_not_found")"), std::string::npos);
  FakeResponseWriter forbidden = h_.Handle(Post(kChat, "sk-b"));
  EXPECT_EQ(forbidden.status(), 403u);
  EXPECT_NE(forbidden.body().find(R"("code":"model_not_allowed")"), std::string::npos);
  EXPECT_TRUE(upstream_.seen().empty());
}

TEST_F(GatewayTest, UnknownPathsAndMethods) {
  EXPECT_EQ(h_.Handle(Post(kChat, "sk-a", "/v2/chat")).status(), 404u);
  http::Request get{http::bhttp::verb::get, "/v1/chat/completions", 11};
  FakeResponseWriter writer = h_.Handle(get);
  EXPECT_EQ(writer.status(), 405u);
  EXPECT_NE(writer.body().find(R"("code":"method_not_allowed")"), std::string::npos);
  EXPECT_EQ(writer.Header("Allow"), "POST");  // RFC 9110, 15.5.6: a 405 names what is allowed
}

// The gateway over PooledUpstream and a real loopback backend: the whole request path.
class GatewayBackendTest : public ::testing::Test {
 protected:
  GatewayBackendTest() : h_(io_, backend_url_, upstream_) {}

  asio::io_context io_;
  FakeBackend backend_{io_};
  std::string backend_url_ = backend_.Url().url;
  ConnectionPool pool_;
  PooledUpstream upstream_{pool_};
  GatewayHarness h_;
};

TEST_F(GatewayBackendTest, AStreamWithoutUsageIsSettledOnTheTokensRelayed) {
  // The backend ignores include_usage: the gateway counts what it relays.
  backend_.Push(FakeBackend::Stream(
      {"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"}}]}\n\n",
       "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" world\"}}]}\n\n",
       "data: [DONE]\n\n"}));
  FakeResponseWriter writer = h_.Handle(Post(
      R"({"model":"llama","stream":true,"max_tokens":50,"messages":[{"role":"user","content":"hi"}]})"));

  EXPECT_EQ(writer.status(), 200u);
  EXPECT_TRUE(writer.streamed());
  EXPECT_TRUE(writer.finished());
  EXPECT_NE(writer.body().find("Hello"), std::string::npos);
  ASSERT_EQ(backend_.received().size(), 1u);
  // What was reserved is what the backend is asked for, and its usage.
  EXPECT_NE(backend_.received()[0].body.find(R"("include_usage":true)"), std::string::npos)
      << backend_.received()[0].body;
  // "Hello" and " world": 2 tokens each (ceil(bytes / 4), token_counter.h).
  EXPECT_EQ(h_.TeamALevels(), (std::vector<int64_t>{1000 - kPromptEstimate - 4, 1}));
}

TEST_F(GatewayBackendTest, AStreamsUsageIsSettledAndRemovedWhenNotAskedFor) {
  backend_.Push(FakeBackend::Stream(
      {"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"}}]}\n\n",
       "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":30,"
       "\"total_tokens\":39}}\n\n",
       "data: [DONE]\n\n"}));
  FakeResponseWriter writer = h_.Handle(Post(
      R"({"model":"llama","stream":true,"max_tokens":50,"messages":[{"role":"user","content":"hi"}]})"));

  EXPECT_EQ(writer.status(), 200u);
  EXPECT_EQ(writer.body().find("usage"), std::string::npos) << writer.body();
  EXPECT_EQ(h_.TeamALevels(), (std::vector<int64_t>{1000 - 39, 1}));
  GatewayMetrics& m = h_.gateway_.Metrics();
  EXPECT_EQ(h_.CounterValue(m.tokens, {"llama2-7b", "team-a", "", "completion"}), 30);
}

TEST_F(GatewayBackendTest, ABackends500IsA502CountedAsHttp500) {
  backend_.Push(FakeBackend::Json(R"({"error":"boom"})", 500));
  FakeResponseWriter writer = h_.Handle(Post(kChat));
  EXPECT_EQ(writer.status(), 502u);
  EXPECT_NE(writer.body().find(R"("code":"backend_error")"), std::string::npos);
  EXPECT_FALSE(writer.HasHeader("x-ratelimit-limit-tokens"));
  EXPECT_EQ(h_.TeamALevels()[0], 1000);  // an error answer costs nothing
  EXPECT_EQ(h_.CounterValue(h_.gateway_.Metrics().upstream_errors,
                            {"llama2-7b", backend_url_, "http500"}),
            1);
}

}  // namespace
}  // namespace trl
