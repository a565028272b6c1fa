// The whole gateway in-process: GatewayApp opened on a config in a temporary directory (the
// embedded store, both listeners on port 0), in front of mock-llm's server running in this
// process too, spoken to through loopback sockets by a blocking client. Each test waits on what
// the client reads, never on time; the only durations are the config's grace periods, each far
// from what the test's requests take.
#include "app/gateway_app.h"

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <csignal>
#include <ctime>
#include <fstream>
#include <functional>
#include <thread>

#include "common/run_to_completion.h"
#include "fakes/temp_dir.h"
#include "limits/token_counter.h"
#include "mock/mock_server.h"

namespace trl {
namespace {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace json = boost::json;
using asio::ip::tcp;

constexpr char kAdminToken[] = "admin-secret";
constexpr char kApiKey[] = "sk-team-a";

bhttp::request<bhttp::string_body> MakeRequest(bhttp::verb method, const std::string& target,
                                               const std::string& body, const std::string& bearer) {
  bhttp::request<bhttp::string_body> request{method, target, 11};
  request.set(bhttp::field::host, "localhost");
  if (!bearer.empty()) request.set(bhttp::field::authorization, "Bearer " + bearer);
  if (!body.empty()) request.set(bhttp::field::content_type, "application/json");
  request.body() = body;
  request.prepare_payload();
  return request;
}

// One request on a connection of its own; its whole answer.
bhttp::response<bhttp::string_body> Fetch(const tcp::endpoint& at, bhttp::verb method,
                                          const std::string& target, const std::string& bearer,
                                          const std::string& body = "") {
  asio::io_context io;
  tcp::socket socket(io);
  socket.connect(at);
  bhttp::write(socket, MakeRequest(method, target, body, bearer));
  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> response;
  bhttp::read(socket, buffer, response);
  return response;
}

// A streamed answer read as it comes: its events so far, each "data:" line's JSON ("[DONE]"
// left out).
class StreamClient {
 public:
  StreamClient(const tcp::endpoint& at, const std::string& target, const std::string& body)
      : socket_(io_) {
    socket_.connect(at);
    bhttp::write(socket_, MakeRequest(bhttp::verb::post, target, body, kApiKey));
    bhttp::read_header(socket_, buffer_, parser_);
  }

  unsigned Status() const { return parser_.get().result_int(); }
  bool Complete() const { return parser_.is_done(); }

  // Reads until `enough` says so for the events so far, or the answer ends.
  void ReadUntil(const std::function<bool(const std::vector<json::value>&)>& enough) {
    while (!parser_.is_done() && !enough(Events())) bhttp::read_some(socket_, buffer_, parser_);
  }
  void ReadToEnd() {
    ReadUntil([](const auto&) { return false; });
  }

  std::vector<json::value> Events() const {
    std::vector<json::value> events;
    const std::string& body = parser_.get().body();
    for (size_t at = 0, end; (end = body.find("\n\n", at)) != std::string::npos; at = end + 2) {
      std::string_view event(body.data() + at, end - at);
      if (!event.starts_with("data: ") || event == "data: [DONE]") continue;
      events.push_back(json::parse(event.substr(6)));
    }
    return events;
  }

 private:
  asio::io_context io_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
  bhttp::response_parser<bhttp::string_body> parser_;
};

// The text a chat stream's event carries, in every choice.
std::string ContentOf(const json::value& event) {
  std::string text;
  if (const auto* choices = event.as_object().if_contains("choices")) {
    for (const auto& choice : choices->as_array()) {
      const auto* delta = choice.as_object().if_contains("delta");
      const auto* content = delta ? delta->as_object().if_contains("content") : nullptr;
      if (content && content->is_string()) text += content->as_string();
    }
  }
  return text;
}

bool HasContent(const std::vector<json::value>& events) {
  for (const auto& e : events) {
    if (!ContentOf(e).empty()) return true;
  }
  return false;
}

std::string ChatBody(int max_tokens, bool stream) {
  return R"({"model": "m", "messages": [{"role": "user", "content": "hello there"}],)"
         R"( "max_tokens": )" +
         std::to_string(max_tokens) + R"(, "stream": )" + (stream ? "true" : "false") + "}";
}

class GatewayAppTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (serve_.joinable()) {
      app_->Drain();
      serve_.join();
      app_->Stop();
    }
    app_.reset();
    if (mock_) {
      mock_->Stop();
      mock_thread_.join();
    }
  }

  void StartMock(double tokens_per_second) {
    MockOptions options;
    options.port = 0;
    options.models = {"m"};
    options.max_output = 64;
    options.ttft = std::chrono::nanoseconds(0);
    options.tokens_per_second = tokens_per_second;
    mock_ = std::make_unique<MockServer>(options);
    mock_thread_ = std::thread([this] { mock_->Run(); });
  }

  std::string DataDir() const { return dir_.Path("data"); }
  std::string ConfigPath() const { return dir_.Path("config.yaml"); }

  // The config: `server` and `extra_keys` as given, everything else fixed.
  void WriteConfig(const std::string& server, const std::string& extra_keys = "",
                   const std::string& aliases = "[]") {
    std::ofstream(ConfigPath()) << "listen: 127.0.0.1:0\n"
                                << "server: " << server << "\n"
                                << "admin: {listen: 127.0.0.1:0, token: " << kAdminToken << "}\n"
                                << "store: {backend: memory, data_dir: " << DataDir() << "}\n"
                                << "usage: {flush_interval: 1m}\n"
                                << "models:\n"
                                << "  - name: m\n"
                                << "    aliases: " << aliases << "\n"
                                << "    backends: [http://127.0.0.1:"
                                << (mock_ ? mock_->Endpoint().port() : 9) << "]\n"
                                << "api_keys:\n"
                                << "  - {name: team-a, key: " << kApiKey
                                << ", limits: [{tokens: 100000, per: 1m}]}\n"
                                << extra_keys;
  }

  // Opens and starts the app on the config written last, and serves on a thread of its own.
  void Launch(bool handle_signals = false) {
    GatewayApp::Opened opened = GatewayApp::Open({ConfigPath(), -1, handle_signals});
    ASSERT_TRUE(opened.app) << (opened.errors.empty() ? "" : opened.errors.front());
    app_ = std::move(opened.app);
    ASSERT_EQ(app_->Start(), "");
    ASSERT_TRUE(app_->AdminEndpoint());
    serve_ = std::thread([this] { app_->Serve(); });
  }

  // Serve has returned: the drain is over. Then the exit code of Stop.
  int WaitAndStop() {
    serve_.join();
    return app_->Stop();
  }

  // Every usage row written to data_dir.
  UsageResult StoredUsage() {
    std::string error;
    std::unique_ptr<UsageSink> sink = OpenSqliteUsageSink(DataDir(), &error);
    EXPECT_TRUE(sink) << error;
    if (!sink) return {};
    UsageQuery query;
    const int64_t now = std::time(nullptr);
    query.from = now - 24 * 3600;
    query.to = now + 24 * 3600;
    return RunToCompletion(sink->Query(query));
  }

  bhttp::response<bhttp::string_body> Admin(bhttp::verb method, const std::string& target,
                                            const std::string& body = "") {
    return Fetch(*app_->AdminEndpoint(), method, target, kAdminToken, body);
  }

  testing::TempDir dir_;
  std::unique_ptr<MockServer> mock_;
  std::thread mock_thread_;
  std::unique_ptr<GatewayApp> app_;
  std::thread serve_;
};

TEST_F(GatewayAppTest, ServesThenDrainsAndWritesTheUsageAtShutdown) {
  StartMock(0);
  WriteConfig("{threads: 2, shutdown_grace: 1m}");
  Launch();

  auto ready = Fetch(*app_->AdminEndpoint(), bhttp::verb::get, "/readyz", "");
  EXPECT_EQ(ready.result_int(), 200u) << ready.body();
  auto models = Admin(bhttp::verb::get, "/admin/v1/models");
  ASSERT_EQ(models.result_int(), 200u);
  json::value listed = json::parse(models.body()).at("data").at(0);
  EXPECT_EQ(listed.at("name"), "m");
  EXPECT_EQ(listed.at("backends").at(0).at("url"),
            json::value("http://127.0.0.1:" + std::to_string(mock_->Endpoint().port())));

  auto answer = Fetch(app_->DataEndpoint(), bhttp::verb::post, "/v1/chat/completions", kApiKey,
                      ChatBody(4, false));
  ASSERT_EQ(answer.result_int(), 200u) << answer.body();
  json::value usage = json::parse(answer.body()).at("usage");

  app_->Drain();
  EXPECT_EQ(WaitAndStop(), 0);

  app_.reset();  // closes the stores
  UsageResult stored = StoredUsage();
  ASSERT_TRUE(stored.ok) << stored.error;
  ASSERT_EQ(stored.rows.size(), 1u);
  EXPECT_EQ(stored.rows[0].key, "team-a");
  EXPECT_EQ(stored.rows[0].model, "m");
  EXPECT_EQ(stored.rows[0].counts.requests, 1);
  EXPECT_EQ(stored.rows[0].counts.prompt_tokens, usage.at("prompt_tokens").as_int64());
  EXPECT_EQ(stored.rows[0].counts.completion_tokens, usage.at("completion_tokens").as_int64());
}

TEST_F(GatewayAppTest, ADrainWaitsForAStreamInFlightToEnd) {
  StartMock(20);  // 8 tokens: some 400 ms, against a grace of a minute
  WriteConfig("{threads: 1, shutdown_grace: 1m}");
  Launch();

  StreamClient stream(app_->DataEndpoint(), "/v1/chat/completions", ChatBody(8, true));
  ASSERT_EQ(stream.Status(), 200u);
  stream.ReadUntil(HasContent);
  app_->Drain();
  stream.ReadToEnd();
  EXPECT_EQ(WaitAndStop(), 0);

  ASSERT_TRUE(stream.Complete());
  std::string text;
  for (const auto& e : stream.Events()) {
    EXPECT_FALSE(e.as_object().contains("error")) << e;
    text += ContentOf(e);
  }
  EXPECT_EQ(text, "w1 w2 w3 w4 w5 w6 w7 w8");
  app_.reset();
  UsageResult stored = StoredUsage();
  ASSERT_EQ(stored.rows.size(), 1u);
  // mock-llm's usage: 2 words + 3 for the message; 8 words written.
  EXPECT_EQ(stored.rows[0].counts.prompt_tokens, 5);
  EXPECT_EQ(stored.rows[0].counts.completion_tokens, 8);
}

TEST_F(GatewayAppTest, AStreamStillRunningAtTheEndOfTheGraceIsCutAndRecorded) {
  StartMock(1);  // 64 tokens: a minute, against a grace of 100 ms
  WriteConfig("{threads: 1, shutdown_grace: 100ms}");
  Launch();

  StreamClient stream(app_->DataEndpoint(), "/v1/chat/completions", ChatBody(64, true));
  ASSERT_EQ(stream.Status(), 200u);
  stream.ReadUntil(HasContent);
  app_->Drain();
  stream.ReadToEnd();
  EXPECT_EQ(WaitAndStop(), 0);

  ASSERT_TRUE(stream.Complete()) << "a cut stream ends properly";
  std::vector<json::value> events = stream.Events();
  ASSERT_FALSE(events.empty());
  const json::value& last = events.back();
  ASSERT_TRUE(last.as_object().contains("error")) << last;
  EXPECT_EQ(last.at("error").at("type"), "api_error");
  EXPECT_EQ(last.at("error").at("code"), "model_unavailable");
  // Settled and recorded for what was relayed, counted as the gateway counts: the prompt's
  // estimate, and each relayed event's text.
  ApproxTokenCounter counter;
  int64_t relayed = 0;
  for (const auto& e : events) relayed += counter.CountText(ContentOf(e));
  EXPECT_GT(relayed, 0);
  EXPECT_LT(relayed, 64);
  app_.reset();
  UsageResult stored = StoredUsage();
  ASSERT_EQ(stored.rows.size(), 1u);
  EXPECT_EQ(stored.rows[0].counts.requests, 1);
  EXPECT_EQ(stored.rows[0].counts.prompt_tokens, counter.CountText("hello there") +
                                                     counter.PerMessageOverhead() +
                                                     counter.PerRequestOverhead());
  EXPECT_EQ(stored.rows[0].counts.completion_tokens, relayed);
}

TEST_F(GatewayAppTest, SigtermDrainsAndStops) {
  WriteConfig("{threads: 1, shutdown_grace: 1m}");
  Launch(/*handle_signals=*/true);
  ASSERT_EQ(std::raise(SIGTERM), 0);
  EXPECT_EQ(WaitAndStop(), 0);
}

TEST_F(GatewayAppTest, AReloadRefusesAConfigKeyNamedLikeAnApiKey) {
  StartMock(0);
  WriteConfig("{threads: 1}");
  Launch();
  auto made = Admin(bhttp::verb::post, "/admin/v1/keys", R"({"name": "made"})");
  ASSERT_EQ(made.result_int(), 201u) << made.body();

  WriteConfig("{threads: 1}", "  - {name: made, key: sk-other}\n");
  auto refused = Admin(bhttp::verb::post, "/admin/v1/reload");
  EXPECT_EQ(refused.result_int(), 422u);
  EXPECT_NE(refused.body().find("api_keys: 'made' is the name of a key made through the admin "
                                "API; rename one of them"),
            std::string::npos)
      << refused.body();

  // A good one is applied at once, but for what only a restart applies.
  WriteConfig("{threads: 2}", "", "[m2]");
  auto reloaded = Admin(bhttp::verb::post, "/admin/v1/reload");
  ASSERT_EQ(reloaded.result_int(), 200u) << reloaded.body();
  EXPECT_EQ(json::parse(reloaded.body()).at("restart_required"),
            json::parse(R"(["server.threads"])"));
  EXPECT_EQ(json::parse(reloaded.body()).at("changes").at("models").at("changed"),
            json::parse(R"([{"name": "m", "fields": ["aliases"]}])"));
  auto via_alias =
      Fetch(app_->DataEndpoint(), bhttp::verb::post, "/v1/chat/completions", kApiKey,
            R"({"model": "m2", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1})");
  EXPECT_EQ(via_alias.result_int(), 200u) << via_alias.body();
}

TEST_F(GatewayAppTest, OpenNamesWhatCannotStart) {
  std::ofstream(ConfigPath()) << "listen: 127.0.0.1:0\nmodels:\n  - name: m\n    backends: [x]\n";
  GatewayApp::Opened bad_config = GatewayApp::Open({ConfigPath()});
  EXPECT_FALSE(bad_config.app);
  ASSERT_FALSE(bad_config.errors.empty());
  EXPECT_TRUE(bad_config.errors[0].starts_with("models[0].backends[0]")) << bad_config.errors[0];

  WriteConfig("{threads: 1}");
  std::ofstream(DataDir()) << "a file where data_dir should be";
  GatewayApp::Opened bad_store = GatewayApp::Open({ConfigPath()});
  EXPECT_FALSE(bad_store.app);
  ASSERT_EQ(bad_store.errors.size(), 1u);
  EXPECT_TRUE(bad_store.errors[0].starts_with("store.data_dir: cannot open " + DataDir()))
      << bad_store.errors[0];
}

}  // namespace
}  // namespace trl
