// AdminApi::Handle in-process, with hooks that stand in for the running gateway: the keys in an
// in-memory key store, the budgets in an embedded store on a fake clock, reload, readiness,
// models and usage answered by the test. Every answer is checked for its exact status, body
// fields and error code.
#include "admin/admin_api.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "common/crypto.h"
#include "fakes/fake_clock.h"
#include "fakes/fake_key_store.h"
#include "fakes/fake_response_writer.h"
#include "fakes/run_awaitable.h"
#include "limits/memory_store.h"

namespace trl {
namespace {

namespace bhttp = http::bhttp;
namespace json = boost::json;
using bhttp::verb;
using testing::HasSubstr;

constexpr char kToken[] = "admin-secret";
constexpr char kAuth[] = "Bearer admin-secret";

constexpr char kConfig[] = R"(
listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0, token: admin-secret}
models:
  - name: m
    aliases: [m-alias]
    backends: [http://127.0.0.1:9]
  - name: n
    backends: [http://127.0.0.1:9]
tenants:
  - name: acme
    limits: [{tokens: 5000, per: 1m}]
api_keys:
  - name: cfg-key
    key: sk-cfg
    limits: [{tokens: 1000, per: 1m}, {concurrent: 2}]
default_limits: [{tokens: 100, per: 1m}]
)";

std::shared_ptr<const Config> TestConfig() {
  LoadResult loaded = LoadConfigText(kConfig, [](const std::string&) { return std::nullopt; });
  EXPECT_TRUE(loaded.config) << (loaded.errors.empty() ? "" : loaded.errors.front());
  return loaded.config;
}

class AdminApiTest : public ::testing::Test {
 protected:
  AdminApiTest()
      : snapshot_(std::make_shared<GatewaySnapshot>(TestConfig())),
        keys_(store_),
        limiter_(budgets_, clock_),
        api_(metrics_, Hooks()) {}

  AdminHooks Hooks() {
    AdminHooks hooks;
    hooks.admin_token = [this] { return token_; };
    hooks.reload = [this](ReloadMode mode) {
      ++reloads_;
      modes_.push_back(mode);
      return reload_outcome_;
    };
    hooks.ready = [this]() -> asio::awaitable<bool> { co_return ready_; };
    hooks.warnings = [this] { return warnings_; };
    hooks.models_json = [this] {
      if (models_fail_) throw std::runtime_error("models failed");
      return std::string(R"({"data":[{"name":"m"}]})");
    };
    hooks.snapshot = [this] { return snapshot_; };
    hooks.keys = &keys_;
    hooks.limiter = &limiter_;
    hooks.clock = &clock_;
    hooks.usage = [this](const UsageQuery& query) -> asio::awaitable<UsageResult> {
      usage_queries_.push_back(query);
      co_return usage_result_;
    };
    return hooks;
  }

  // What the API answered a request.
  struct Answer {
    unsigned status;
    std::string body;
    std::string content_type;
    std::string allow;  // the Allow header (of a 405)
  };

  Answer Call(verb method, const std::string& target, std::string body = "",
              const std::string& authorization = kAuth) {
    http::Request request{method, target, 11};
    if (!authorization.empty()) request.set(bhttp::field::authorization, authorization);
    request.body() = std::move(body);
    FakeResponseWriter writer;
    RunAwaitable(api_.Handle(request, writer));
    EXPECT_EQ(writer.sends(), 1) << target;
    EXPECT_FALSE(writer.streamed()) << target;
    return {writer.status(), writer.body(), writer.Header("Content-Type"), writer.Header("Allow")};
  }

  static json::object Body(const Answer& response) {
    json::value v = json::parse(response.body);
    return v.as_object();
  }

  // An OpenAI-shaped error of that status and code; `param` null when empty.
  static void ExpectError(const Answer& response, unsigned status, std::string_view code,
                          std::string_view param = "") {
    EXPECT_EQ(response.status, status) << response.body;
    json::object error = Body(response).at("error").as_object();
    EXPECT_EQ(error.at("code").as_string(), code) << response.body;
    if (param.empty()) {
      EXPECT_TRUE(error.at("param").is_null()) << response.body;
    } else {
      EXPECT_EQ(error.at("param"), json::value(param)) << response.body;
    }
    EXPECT_FALSE(error.at("message").as_string().empty());
  }

  // What the key's limits read now: {limit as in the config + "remaining", ...} per limit.
  json::array Readings(std::string_view name) {
    Answer r = Call(verb::get, "/admin/v1/keys/" + std::string(name) + "/limits");
    EXPECT_EQ(r.status, 200u) << r.body;
    return Body(r).at("limits").as_array();
  }

  std::string token_ = kToken;
  int reloads_ = 0;
  std::vector<ReloadMode> modes_;
  ReloadOutcome reload_outcome_;
  bool ready_ = true;
  std::vector<std::string> warnings_;
  bool models_fail_ = false;
  std::vector<UsageQuery> usage_queries_;
  UsageResult usage_result_;

  std::shared_ptr<const GatewaySnapshot> snapshot_;
  FakeKeyStore store_;
  KeyDirectory keys_;
  MemoryStore budgets_;
  FakeClock clock_;
  Limiter limiter_;
  MetricsRegistry metrics_;
  AdminApi api_;
};

// Every /admin/v1 route, as (method, target, body).
struct Route {
  verb method;
  std::string target;
  std::string body;
};
const std::vector<Route> kAdminRoutes = {
    {verb::post, "/admin/v1/reload", ""},
    {verb::get, "/admin/v1/models", ""},
    {verb::get, "/admin/v1/keys", ""},
    {verb::post, "/admin/v1/keys", R"({"name": "made"})"},
    {verb::get, "/admin/v1/keys/cfg-key", ""},
    {verb::delete_, "/admin/v1/keys/made", ""},
    {verb::get, "/admin/v1/keys/cfg-key/limits", ""},
    {verb::put, "/admin/v1/keys/made/limits", R"({"limits": []})"},
    {verb::post, "/admin/v1/keys/cfg-key/reset", ""},
    {verb::patch, "/admin/v1/keys/made", R"({"tenant": null})"},
    {verb::post, "/admin/v1/keys/made/rotate", ""},
    {verb::get, "/admin/v1/usage", ""},
    {verb::get, "/admin/v1/no-such-route", ""},
};

TEST_F(AdminApiTest, EveryAdminRouteRefusesAMissingOrWrongToken) {
  KeyRecord made;
  made.key.name = "made";
  ASSERT_EQ(RunAwaitable(store_.Create(made)).status, KeyStore::WriteStatus::kOk);
  const int writes = store_.writes;
  for (const Route& route : kAdminRoutes) {
    for (std::string auth : {"", "Bearer wrong", "Bearer admin-secret2", "Bearer ", "admin-secret",
                             "Basic admin-secret"}) {
      SCOPED_TRACE(route.target + " with '" + auth + "'");
      ExpectError(Call(route.method, route.target, route.body, auth), 401, "invalid_admin_token");
    }
  }
  // Nothing behind the token ran.
  EXPECT_EQ(reloads_, 0);
  EXPECT_EQ(store_.writes, writes);
  EXPECT_TRUE(usage_queries_.empty());
}

TEST_F(AdminApiTest, AnEmptyAdminTokenRefusesEveryAdminRoute) {
  token_ = "";
  for (const Route& route : kAdminRoutes) {
    SCOPED_TRACE(route.target);
    ExpectError(Call(route.method, route.target, route.body, "Bearer "), 401,
                "invalid_admin_token");
  }
  EXPECT_EQ(reloads_, 0);
}

TEST_F(AdminApiTest, HealthReadinessAndMetricsNeedNoToken) {
  metrics_.AddCounter("trl_test_total", "A counter of the test.", {}).With({}).Add(3);

  Answer health = Call(verb::get, "/healthz", "", "");
  EXPECT_EQ(health.status, 200u);
  EXPECT_EQ(health.body, R"({"status":"ok"})");

  Answer ready = Call(verb::get, "/readyz", "", "");
  EXPECT_EQ(ready.status, 200u);
  EXPECT_EQ(ready.body, R"({"status":"ready","warnings":[]})");
  ready_ = false;
  warnings_ = {"keys: lost", "store: left behind"};
  Answer not_ready = Call(verb::get, "/readyz", "", "");
  EXPECT_EQ(not_ready.status, 503u);
  EXPECT_EQ(not_ready.body,
            R"({"status":"not ready","warnings":["keys: lost","store: left behind"]})");

  Answer metrics = Call(verb::get, "/metrics?x=1", "", "");
  EXPECT_EQ(metrics.status, 200u);
  EXPECT_EQ(metrics.content_type, "text/plain; version=0.0.4");
  EXPECT_NE(metrics.body.find("trl_test_total 3\n"), std::string::npos) << metrics.body;
}

TEST_F(AdminApiTest, UnknownPathsAre404) {
  ExpectError(Call(verb::get, "/nope", "", ""), 404, "not_found");
  ExpectError(Call(verb::get, "/admin/v1/nope"), 404, "not_found");
  ExpectError(Call(verb::post, "/admin/v1/keys/cfg-key/nope"), 404, "not_found");
  ExpectError(Call(verb::get, "/admin/v1/tenants/t/nope"), 404, "not_found");
}

// Every route answers a method it does not serve the same way (RFC 9110, 15.5.6): 405 with the
// methods it does serve in Allow. The unauthenticated ones too: a probe sent with the wrong
// method must not look healthy.
TEST_F(AdminApiTest, AWrongMethodIs405NamingTheAllowedOnes) {
  struct Case {
    verb method;
    std::string target;
    std::string allow;
  };
  const std::vector<Case> cases = {
      {verb::post, "/healthz", "GET"},
      {verb::delete_, "/readyz", "GET"},
      {verb::post, "/metrics", "GET"},
      {verb::get, "/admin/v1/reload", "POST"},
      {verb::post, "/admin/v1/models", "GET"},
      {verb::post, "/admin/v1/usage", "GET"},
      {verb::put, "/admin/v1/keys", "GET, POST"},
      {verb::put, "/admin/v1/keys/cfg-key", "GET, PATCH, DELETE"},
      {verb::post, "/admin/v1/keys/cfg-key/limits", "GET, PUT"},
      {verb::get, "/admin/v1/keys/cfg-key/reset", "POST"},
      {verb::get, "/admin/v1/keys/cfg-key/rotate", "POST"},
      {verb::post, "/admin/v1/tenants", "GET"},
      {verb::delete_, "/admin/v1/tenants/t", "GET"},
      {verb::get, "/admin/v1/tenants/t/reset", "POST"},
  };
  for (const Case& c : cases) {
    Answer answer = Call(c.method, c.target);
    ExpectError(answer, 405, "method_not_allowed");
    EXPECT_EQ(answer.allow, c.allow) << c.target;
  }
}

TEST_F(AdminApiTest, AnExceptionBecomesA500ForThatRequest) {
  models_fail_ = true;
  ExpectError(Call(verb::get, "/admin/v1/models"), 500, "internal_error");
  models_fail_ = false;
  Answer models = Call(verb::get, "/admin/v1/models");
  EXPECT_EQ(models.status, 200u);
  EXPECT_EQ(models.body, R"({"data":[{"name":"m"}]})");
  EXPECT_EQ(models.content_type, "application/json");
}

TEST_F(AdminApiTest, ReloadAnswersWhatTheReloadDid) {
  reload_outcome_ = {};
  reload_outcome_.changes.models.added = {"m2"};
  reload_outcome_.changes.restart_required = {"server.threads", "listen"};
  reload_outcome_.warnings = {"admin.token: an example value: set a secret of your own"};
  Answer ok = Call(verb::post, "/admin/v1/reload");
  EXPECT_EQ(ok.status, 200u);
  const json::value changes = json::parse(R"({
    "models": {"added": ["m2"], "removed": [], "changed": []},
    "api_keys": {"added": [], "removed": [], "changed": []},
    "tenants": {"added": [], "removed": [], "changed": []},
    "default_limits": false, "settings": []})");
  EXPECT_EQ(
      json::parse(ok.body),
      json::value({{"status", "reloaded"},
                   {"restart_required", {"server.threads", "listen"}},
                   {"changes", changes},
                   {"warnings", {"admin.token: an example value: set a secret of your own"}}}));
  EXPECT_EQ(modes_, std::vector<ReloadMode>{ReloadMode::kApply});

  Answer dry = Call(verb::post, "/admin/v1/reload?dry_run=true");
  EXPECT_EQ(dry.status, 200u);
  EXPECT_EQ(Body(dry).at("status"), "dry_run");
  EXPECT_EQ(Body(dry).at("changes"), changes);
  EXPECT_EQ(Call(verb::post, "/admin/v1/reload?dry_run=false").status, 200u);
  ExpectError(Call(verb::post, "/admin/v1/reload?dry_run=1"), 400, "invalid_request", "dry_run");
  EXPECT_EQ(modes_,
            (std::vector<ReloadMode>{ReloadMode::kApply, ReloadMode::kDryRun, ReloadMode::kApply}));

  reload_outcome_ = {{"models[0].backends[0]: not a URL"}, {}, {}};
  Answer refused = Call(verb::post, "/admin/v1/reload");
  ExpectError(refused, 422, "invalid_config");
  EXPECT_EQ(Body(refused).at("error").at("type"), "invalid_config");
  EXPECT_EQ(Body(refused).at("error").at("errors"),
            json::parse(R"(["models[0].backends[0]: not a URL"])"));
  EXPECT_NE(
      Body(refused).at("error").at("message").as_string().find("models[0].backends[0]: not a URL"),
      std::string::npos);
  EXPECT_EQ(reloads_, 4);
}

TEST_F(AdminApiTest, CreateShowListAndRevokeAKey) {
  clock_.Set(1'700'000'000'000'000);
  Answer created = Call(verb::post, "/admin/v1/keys", R"({"name": "made",
      "tenant": "acme", "models": ["m-alias", "m"], "limits": [{"tokens": 500, "per": "1m"}]})");
  ASSERT_EQ(created.status, 201u) << created.body;
  json::object view = Body(created);
  const std::string secret(view.at("key").as_string());
  EXPECT_TRUE(secret.starts_with("sk-")) << secret;
  view.erase("key");
  const json::value expected = json::parse(R"({"name": "made", "source": "api",
      "tenant": "acme", "models": ["m"], "limits": [{"tokens": 500, "per": "1m"}],
      "default_limits": false, "queue": null, "expires_at": null, "expired": false,
      "created": "2023-11-14T22:13:20Z", "updated": "2023-11-14T22:13:20Z",
      "previous_key_expires_at": null})");
  EXPECT_EQ(json::value(view), expected);
  // Stored by its hash, never the secret; this instance sees it at once.
  ASSERT_NE(store_.Find("made"), nullptr);
  EXPECT_EQ(store_.Find("made")->key.key_sha256, Sha256Of(secret));
  EXPECT_TRUE(keys_.Current()->FindByHash(Sha256Of(secret)));

  Answer shown = Call(verb::get, "/admin/v1/keys/made");
  EXPECT_EQ(shown.status, 200u);
  EXPECT_EQ(json::parse(shown.body), expected);

  Answer list = Call(verb::get, "/admin/v1/keys");
  EXPECT_EQ(list.status, 200u);
  json::array data = Body(list).at("data").as_array();
  ASSERT_EQ(data.size(), 2u) << list.body;
  EXPECT_EQ(data[0], json::parse(R"({"name": "cfg-key", "source": "config", "tenant": null,
      "models": null, "limits": [{"tokens": 1000, "per": "1m"}, {"concurrent": 2}],
      "default_limits": false, "queue": null, "expires_at": null, "expired": false})"));
  EXPECT_EQ(data[1], expected);
  EXPECT_EQ(list.body.find(secret), std::string::npos);

  Answer revoked = Call(verb::delete_, "/admin/v1/keys/made");
  EXPECT_EQ(revoked.status, 200u);
  EXPECT_EQ(json::parse(revoked.body), json::parse(R"({"name": "made", "revoked": true})"));
  EXPECT_EQ(store_.Find("made"), nullptr);
  EXPECT_FALSE(keys_.Current()->FindByName("made"));
  ExpectError(Call(verb::delete_, "/admin/v1/keys/made"), 404, "key_not_found");
  ExpectError(Call(verb::get, "/admin/v1/keys/made"), 404, "key_not_found");
}

TEST_F(AdminApiTest, AKeyWithoutLimitsHasTheDefaults) {
  Answer created = Call(verb::post, "/admin/v1/keys", R"({"name": "plain"})");
  ASSERT_EQ(created.status, 201u) << created.body;
  json::object view = Body(created);
  EXPECT_TRUE(view.at("tenant").is_null());
  EXPECT_TRUE(view.at("models").is_null());
  EXPECT_EQ(view.at("limits"), json::parse(R"([{"tokens": 100, "per": "1m"}])"));
  EXPECT_EQ(view.at("default_limits"), true);
}

TEST_F(AdminApiTest, CreateRefusesWhatItCannotMake) {
  ASSERT_EQ(Call(verb::post, "/admin/v1/keys", R"({"name": "made"})").status, 201u);
  const int writes = store_.writes;

  ExpectError(Call(verb::post, "/admin/v1/keys", R"({"name": "made"})"), 409, "key_exists");
  ExpectError(Call(verb::post, "/admin/v1/keys", R"({"name": "cfg-key"})"), 409, "key_exists");
  ExpectError(Call(verb::post, "/admin/v1/keys", "not json"), 400, "invalid_request");
  ExpectError(Call(verb::post, "/admin/v1/keys", "[1]"), 400, "invalid_request");
  ExpectError(Call(verb::post, "/admin/v1/keys", R"({"name": "x", "colour": "blue"})"), 400,
              "invalid_request", "colour");
  ExpectError(Call(verb::post, "/admin/v1/keys", R"({"tenant": "acme"})"), 400, "invalid_request",
              "name");
  ExpectError(Call(verb::post, "/admin/v1/keys", R"({"name": ".hidden"})"), 400, "invalid_request",
              "name");
  ExpectError(Call(verb::post, "/admin/v1/keys", R"({"name": "x", "tenant": "nobody"})"), 400,
              "invalid_request", "tenant");
  ExpectError(Call(verb::post, "/admin/v1/keys", R"({"name": "x", "models": ["gpt-9"]})"), 400,
              "invalid_request", "models");
  ExpectError(Call(verb::post, "/admin/v1/keys", R"({"name": "x", "models": []})"), 400,
              "invalid_request", "models");
  ExpectError(Call(verb::post, "/admin/v1/keys", R"({"name": "x", "limits": {"tokens": 1}})"), 400,
              "invalid_request", "limits");
  ExpectError(Call(verb::post, "/admin/v1/keys",
                   R"({"name": "x", "limits": [{"tokens": 1, "per": "fortnight"}]})"),
              400, "invalid_request", "limits");
  for (const char* queue :
       {R"("10s")", R"({"max_queued": 5})", R"({"max_wait": "1h"})",
        R"({"max_wait": "1s", "max_queued": 0})", R"({"max_wait": "1s", "x": 1})"}) {
    SCOPED_TRACE(queue);
    ExpectError(
        Call(verb::post, "/admin/v1/keys", std::string(R"({"name": "x", "queue": )") + queue + "}"),
        400, "invalid_request", "queue");
  }
  // The key that clashes with the store's reached it; none of the others did.
  EXPECT_EQ(store_.writes, writes + 1);
  EXPECT_EQ(store_.Find("x"), nullptr);
}

TEST_F(AdminApiTest, AKeyOfTheApiMayWaitForBudget) {
  Answer created = Call(verb::post, "/admin/v1/keys",
                        R"({"name": "made", "queue": {"max_wait": "30s", "max_queued": 7}})");
  ASSERT_EQ(created.status, 201u) << created.body;
  EXPECT_EQ(Body(created).at("queue"), json::parse(R"({"max_wait": "30s", "max_queued": 7})"));
  ASSERT_NE(store_.Find("made"), nullptr);
  EXPECT_EQ(store_.Find("made")->key.queue, (QueueConfig{std::chrono::seconds(30), 7}));
  // Kept in the store as written, read back the same.
  const auto record = ParseKeyRecord(SerializeKeyRecord(*store_.Find("made")));
  ASSERT_TRUE(record);
  EXPECT_EQ(record->key.queue, (QueueConfig{std::chrono::seconds(30), 7}));

  Answer patched = Call(verb::patch, "/admin/v1/keys/made", R"({"queue": {"max_wait": "2m"}})");
  ASSERT_EQ(patched.status, 200u) << patched.body;
  EXPECT_EQ(Body(patched).at("queue"), json::parse(R"({"max_wait": "2m", "max_queued": 100})"));
  Answer removed = Call(verb::patch, "/admin/v1/keys/made", R"({"queue": null})");
  ASSERT_EQ(removed.status, 200u) << removed.body;
  EXPECT_TRUE(Body(removed).at("queue").is_null());
  EXPECT_FALSE(store_.Find("made")->key.queue.Enabled());
}

TEST_F(AdminApiTest, AKeyNameInThePathIsCheckedFirst) {
  for (verb method : {verb::get, verb::delete_}) {
    ExpectError(Call(method, "/admin/v1/keys/.hidden"), 400, "invalid_request", "name");
  }
  ExpectError(Call(verb::get, "/admin/v1/keys/a%20b/limits"), 400, "invalid_request", "name");
  EXPECT_EQ(store_.writes, 0);
}

TEST_F(AdminApiTest, ConfigKeysAreReadOnly) {
  ExpectError(Call(verb::delete_, "/admin/v1/keys/cfg-key"), 409, "key_managed_by_config");
  ExpectError(Call(verb::put, "/admin/v1/keys/cfg-key/limits", R"({"limits": []})"), 409,
              "key_managed_by_config");
  EXPECT_EQ(store_.writes, 0);
  Answer shown = Call(verb::get, "/admin/v1/keys/cfg-key");
  EXPECT_EQ(shown.status, 200u);
  EXPECT_EQ(Body(shown).at("source"), "config");
}

TEST_F(AdminApiTest, ReplaceLimits) {
  ASSERT_EQ(Call(verb::post, "/admin/v1/keys", R"({"name": "made"})").status, 201u);
  clock_.Advance(std::chrono::hours(1));
  Answer replaced = Call(verb::put, "/admin/v1/keys/made/limits",
                         R"({"limits": [{"requests": 5, "per": "1m"}]})");
  ASSERT_EQ(replaced.status, 200u) << replaced.body;
  json::object view = Body(replaced);
  EXPECT_EQ(view.at("limits"), json::parse(R"([{"requests": 5, "per": "1m"}])"));
  EXPECT_EQ(view.at("default_limits"), false);
  EXPECT_EQ(view.at("updated"), json::value(FormatRfc3339(clock_.NowMicros() / 1'000'000)));
  EXPECT_NE(view.at("created"), view.at("updated"));
  ASSERT_NE(store_.Find("made"), nullptr);
  EXPECT_EQ(store_.Find("made")->key.limits,
            (std::vector<LimitConfig>{{LimitKind::kRequests, 5, Millis(60'000), false, ""}}));
  EXPECT_EQ(keys_.Current()->FindByName("made")->key.limits, store_.Find("made")->key.limits);

  ExpectError(Call(verb::put, "/admin/v1/keys/made/limits", R"({"limits": [], "x": 1})"), 400,
              "invalid_request", "limits");
  ExpectError(Call(verb::put, "/admin/v1/keys/made/limits", R"({"limit": []})"), 400,
              "invalid_request", "limits");
  ExpectError(Call(verb::put, "/admin/v1/keys/made/limits", R"({"limits": [{"tokens": -1}]})"), 400,
              "invalid_request", "limits");
  // 1e11 days fits in int64 milliseconds, not in the limiter's microseconds.
  Answer huge = Call(verb::put, "/admin/v1/keys/made/limits",
                     R"({"limits": [{"tokens": 1, "per": "100000000000d"}]})");
  ExpectError(huge, 400, "invalid_request", "limits");
  EXPECT_THAT(std::string(Body(huge).at("error").at("message").as_string()),
              HasSubstr("per: must be at most 36500d"));
  EXPECT_EQ(store_.Find("made")->key.limits,
            (std::vector<LimitConfig>{{LimitKind::kRequests, 5, Millis(60'000), false, ""}}));
  ExpectError(Call(verb::put, "/admin/v1/keys/ghost/limits", R"({"limits": []})"), 404,
              "key_not_found");
}

TEST_F(AdminApiTest, PatchChangesTheFieldsItNamesAndNoOthers) {
  ASSERT_EQ(Call(verb::post, "/admin/v1/keys",
                 R"({"name": "made", "models": ["m"], "limits": [{"tokens": 7, "per": "1m"}]})")
                .status,
            201u);
  const Sha256 secret_hash = store_.Find("made")->key.key_sha256;
  clock_.Advance(std::chrono::hours(1));
  Answer patched = Call(verb::patch, "/admin/v1/keys/made",
                        R"({"tenant": "acme", "expires_at": "2030-01-01T00:00:00+01:00"})");
  ASSERT_EQ(patched.status, 200u) << patched.body;
  json::object view = Body(patched);
  EXPECT_EQ(view.at("tenant"), "acme");
  EXPECT_EQ(view.at("models"), json::parse(R"(["m"])"));
  EXPECT_EQ(view.at("limits"), json::parse(R"([{"tokens": 7, "per": "1m"}])"));
  EXPECT_EQ(view.at("expires_at"), "2029-12-31T23:00:00Z");
  EXPECT_EQ(view.at("expired"), false);
  EXPECT_EQ(view.at("updated"), json::value(FormatRfc3339(clock_.NowMicros() / 1'000'000)));
  const KeyRecord* stored = store_.Find("made");
  EXPECT_EQ(stored->key.key_sha256, secret_hash);
  EXPECT_EQ(stored->revision, 1);
  EXPECT_EQ(keys_.Current()->FindByName("made")->key.tenant, "acme");

  // null: no tenant, every model, the default limits, never expires.
  patched = Call(verb::patch, "/admin/v1/keys/made",
                 R"({"tenant": null, "models": null, "limits": null, "expires_at": null})");
  ASSERT_EQ(patched.status, 200u) << patched.body;
  view = Body(patched);
  EXPECT_TRUE(view.at("tenant").is_null());
  EXPECT_TRUE(view.at("models").is_null());
  EXPECT_EQ(view.at("limits"), json::parse(R"([{"tokens": 100, "per": "1m"}])"));
  EXPECT_EQ(view.at("default_limits"), true);
  EXPECT_TRUE(view.at("expires_at").is_null());
  EXPECT_FALSE(store_.Find("made")->key.limits_set);
  EXPECT_EQ(store_.Find("made")->revision, 2);

  // An expiry in the past is allowed: it stops the key without removing it.
  view =
      Body(Call(verb::patch, "/admin/v1/keys/made", R"({"expires_at": "2020-01-01T00:00:00Z"})"));
  EXPECT_EQ(view.at("expired"), true);
}

TEST_F(AdminApiTest, PatchRefusesWhatItCannotChange) {
  ASSERT_EQ(Call(verb::post, "/admin/v1/keys", R"({"name": "made"})").status, 201u);
  const int writes = store_.writes;
  ExpectError(Call(verb::patch, "/admin/v1/keys/made", "{}"), 400, "invalid_request");
  ExpectError(Call(verb::patch, "/admin/v1/keys/made", "[]"), 400, "invalid_request");
  ExpectError(Call(verb::patch, "/admin/v1/keys/made", R"({"name": "other"})"), 400,
              "invalid_request", "name");
  ExpectError(Call(verb::patch, "/admin/v1/keys/made", R"({"key": "sk-mine"})"), 400,
              "invalid_request", "key");
  ExpectError(Call(verb::patch, "/admin/v1/keys/made", R"({"tenant": "nobody"})"), 400,
              "invalid_request", "tenant");
  ExpectError(Call(verb::patch, "/admin/v1/keys/made", R"({"models": []})"), 400, "invalid_request",
              "models");
  ExpectError(Call(verb::patch, "/admin/v1/keys/made", R"({"limits": [{"tokens": 0}]})"), 400,
              "invalid_request", "limits");
  for (const char* bad :
       {R"("2030-02-30T00:00:00Z")", R"("tomorrow")", "1893456000", R"("1969-12-31T23:59:59Z")"}) {
    ExpectError(
        Call(verb::patch, "/admin/v1/keys/made", std::string(R"({"expires_at": )") + bad + "}"),
        400, "invalid_request", "expires_at");
  }
  // The first invalid field refuses the whole change.
  ExpectError(Call(verb::patch, "/admin/v1/keys/made", R"({"tenant": "acme", "models": ["x"]})"),
              400, "invalid_request", "models");
  EXPECT_EQ(store_.writes, writes);
  EXPECT_EQ(store_.Find("made")->key.tenant, "");
  ExpectError(Call(verb::patch, "/admin/v1/keys/ghost", R"({"tenant": "acme"})"), 404,
              "key_not_found");
  ExpectError(Call(verb::patch, "/admin/v1/keys/cfg-key", R"({"tenant": "acme"})"), 409,
              "key_managed_by_config");
}

TEST_F(AdminApiTest, RotateGivesANewSecretAndKeepsTheOldOneForItsGracePeriod) {
  Answer created = Call(verb::post, "/admin/v1/keys", R"({"name": "made", "tenant": "acme"})");
  ASSERT_EQ(created.status, 201u);
  const std::string first(Body(created).at("key").as_string());
  clock_.Advance(std::chrono::seconds(10));
  Answer rotated = Call(verb::post, "/admin/v1/keys/made/rotate", R"({"grace_period": "1h"})");
  ASSERT_EQ(rotated.status, 200u) << rotated.body;
  json::object view = Body(rotated);
  const std::string second(view.at("key").as_string());
  EXPECT_TRUE(second.starts_with("sk-"));
  EXPECT_NE(second, first);
  EXPECT_EQ(view.at("name"), "made");
  EXPECT_EQ(view.at("tenant"), "acme");
  EXPECT_EQ(view.at("previous_key_expires_at"), "2023-11-14T23:13:30Z");
  const KeyRecord* stored = store_.Find("made");
  EXPECT_EQ(stored->key.key_sha256, Sha256Of(second));
  EXPECT_EQ(stored->previous_sha256, Sha256Of(first));
  EXPECT_EQ(stored->previous_until, 1'700'003'610);
  auto current = keys_.Current();
  EXPECT_EQ(current->FindByHash(Sha256Of(first)), current->FindByName("made"));
  EXPECT_EQ(current->FindByHash(Sha256Of(second)), current->FindByName("made"));
  EXPECT_EQ(Call(verb::get, "/admin/v1/keys/made").body.find(second), std::string::npos);

  // Again, with no grace period (no body): the first and second secrets stop at once.
  rotated = Call(verb::post, "/admin/v1/keys/made/rotate");
  ASSERT_EQ(rotated.status, 200u) << rotated.body;
  const std::string third(Body(rotated).at("key").as_string());
  EXPECT_TRUE(Body(rotated).at("previous_key_expires_at").is_null());
  current = keys_.Current();
  EXPECT_FALSE(current->FindByHash(Sha256Of(first)));
  EXPECT_FALSE(current->FindByHash(Sha256Of(second)));
  EXPECT_TRUE(current->FindByHash(Sha256Of(third)));
  EXPECT_EQ(store_.Find("made")->revision, 2);

  const int writes = store_.writes;
  for (const char* bad : {R"({"grace_period": "31d"})", R"({"grace_period": 60})",
                          R"({"grace_period": "soon"})", R"({"grace": "1h"})", "nope"}) {
    Answer refused = Call(verb::post, "/admin/v1/keys/made/rotate", bad);
    EXPECT_EQ(refused.status, 400u) << bad;
  }
  ExpectError(Call(verb::post, "/admin/v1/keys/cfg-key/rotate"), 409, "key_managed_by_config");
  ExpectError(Call(verb::post, "/admin/v1/keys/ghost/rotate"), 404, "key_not_found");
  EXPECT_EQ(store_.writes, writes);
}

// A change is written over the record it was made from. When the store's record changed
// meanwhile (another instance rotated the key, and this one has not synced yet), the change is
// made again on the stored record: the rotation is kept, not undone.
TEST_F(AdminApiTest, AChangeMadeFromAnOldCopyIsMadeAgainOnTheStoredRecord) {
  ASSERT_EQ(Call(verb::post, "/admin/v1/keys", R"({"name": "made"})").status, 201u);
  KeyRecord elsewhere = *store_.Find("made");
  elsewhere.key.key_sha256 = Sha256Of("sk-rotated-elsewhere");
  elsewhere.revision = 1;
  ASSERT_EQ(RunAwaitable(store_.Replace(elsewhere, *store_.Find("made"))).status,
            KeyStore::WriteStatus::kOk);
  ASSERT_NE(keys_.Current()->FindByName("made")->key.key_sha256, elsewhere.key.key_sha256);

  Answer patched = Call(verb::patch, "/admin/v1/keys/made", R"({"tenant": "acme"})");
  ASSERT_EQ(patched.status, 200u) << patched.body;
  const KeyRecord* stored = store_.Find("made");
  EXPECT_EQ(stored->key.key_sha256, Sha256Of("sk-rotated-elsewhere"));
  EXPECT_EQ(stored->key.tenant, "acme");
  EXPECT_EQ(stored->revision, 2);
  EXPECT_EQ(keys_.Current()->FindByName("made")->key.key_sha256, stored->key.key_sha256);
}

TEST_F(AdminApiTest, CreateTakesAnExpiry) {
  Answer created = Call(verb::post, "/admin/v1/keys",
                        R"({"name": "temp", "expires_at": "2023-11-15T00:00:00Z"})");
  ASSERT_EQ(created.status, 201u) << created.body;
  EXPECT_EQ(Body(created).at("expires_at"), "2023-11-15T00:00:00Z");
  EXPECT_EQ(store_.Find("temp")->key.expires_at, 1'700'006'400);
  clock_.Advance(std::chrono::hours(2));
  EXPECT_EQ(Body(Call(verb::get, "/admin/v1/keys/temp")).at("expired"), true);
  ExpectError(Call(verb::post, "/admin/v1/keys", R"({"name": "x", "expires_at": "soon"})"), 400,
              "invalid_request", "expires_at");
}

TEST_F(AdminApiTest, LimitsReadTheBudgetsAndResetRefillsThem) {
  const ApiKeyConfig& key = *snapshot_->auth.ConfigKey("cfg-key");
  RequestScope scope;
  scope.key = key.name;
  scope.model = "m";
  scope.key_limits = key.limits;
  scope.request_id = "r1";
  scope.deadline = std::chrono::seconds(60);
  Admission admitted = RunAwaitable(limiter_.Admit(scope, {300}));
  ASSERT_EQ(admitted.outcome, Admission::Outcome::kAdmitted);

  json::array before = Readings("cfg-key");
  ASSERT_EQ(before.size(), 2u);
  EXPECT_EQ(before[0].at("tokens"), 1000);
  EXPECT_EQ(before[0].at("remaining"), 700);
  EXPECT_EQ(before[0].at("level"), 700);
  EXPECT_GT(before[0].at("resets_in_ms").as_int64(), 0);
  EXPECT_EQ(before[1].at("concurrent"), 2);
  EXPECT_EQ(before[1].at("in_use"), 1);
  EXPECT_EQ(before[1].at("remaining"), 1);
  EXPECT_FALSE(before[1].as_object().contains("reset"));

  Answer reset = Call(verb::post, "/admin/v1/keys/cfg-key/reset");
  EXPECT_EQ(reset.status, 200u);
  EXPECT_EQ(json::parse(reset.body), json::parse(R"({"name": "cfg-key", "reset": true})"));

  json::array after = Readings("cfg-key");
  EXPECT_EQ(after[0].at("remaining"), 1000);
  EXPECT_EQ(after[0].at("resets_in_ms"), 0);
  EXPECT_EQ(after[1].at("in_use"), 1) << "slots in use stay";

  ExpectError(Call(verb::get, "/admin/v1/keys/ghost/limits"), 404, "key_not_found");
  ExpectError(Call(verb::post, "/admin/v1/keys/ghost/reset"), 404, "key_not_found");
}

TEST_F(AdminApiTest, AKeyStoreThatFailsIsA503) {
  ASSERT_EQ(Call(verb::post, "/admin/v1/keys", R"({"name": "made"})").status, 201u);
  store_.failing = true;
  ExpectError(Call(verb::post, "/admin/v1/keys", R"({"name": "other"})"), 503, "store_unavailable");
  ExpectError(Call(verb::delete_, "/admin/v1/keys/made"), 503, "store_unavailable");
  ExpectError(Call(verb::put, "/admin/v1/keys/made/limits", R"({"limits": []})"), 503,
              "store_unavailable");
  EXPECT_TRUE(keys_.Current()->FindByName("made")) << "the keys loaded last stay";
}

TEST_F(AdminApiTest, UsageRunsTheParsedQuery) {
  clock_.Set(1'700'000'000'000'000);  // 2023-11-14T22:13:20Z
  usage_result_.ok = true;
  UsageRow row{"cfg-key", "", "m", 1'699'920'000, {}};
  row.counts.requests = 2;
  row.counts.prompt_tokens = 30;
  row.counts.completion_tokens = 12;
  row.counts.rejected_tokens = 1;
  row.counts.cached_tokens = 10;
  row.counts.cost = 600'000;
  row.counts.rejected_spend = 2;
  usage_result_.rows = {row};
  usage_result_.total = row.counts;

  Answer r = Call(verb::get, "/admin/v1/usage?key=cfg-key&granularity=day");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  ASSERT_EQ(usage_queries_.size(), 1u);
  const UsageQuery& query = usage_queries_[0];
  EXPECT_EQ(query.key, "cfg-key");
  EXPECT_EQ(query.tenant, std::nullopt);
  EXPECT_EQ(query.granularity, UsageGranularity::kDay);
  EXPECT_EQ(query.from, 1'699'920'000) << "the start of today (UTC)";
  EXPECT_EQ(query.to, 1'700'000'000) << "now";
  json::object body = Body(r);
  ASSERT_EQ(body.at("data").as_array().size(), 1u);
  json::object got = body.at("data").at(0).as_object();
  EXPECT_EQ(got.at("key"), "cfg-key");
  EXPECT_EQ(got.at("model"), "m");
  EXPECT_EQ(got.at("start"), "2023-11-14T00:00:00Z");
  EXPECT_EQ(got.at("requests"), 2);
  EXPECT_EQ(got.at("cached_tokens"), 10);
  EXPECT_EQ(got.at("cost"), "0.0006");
  EXPECT_EQ(got.at("rejected"), 3);
  EXPECT_EQ(got.at("rejected_by").at("spend"), 2);
  EXPECT_EQ(body.at("total").at("completion_tokens"), 12);
  EXPECT_EQ(body.at("total").at("cost"), "0.0006");
  EXPECT_EQ(body.at("currency"), "USD") << "the config's (its default)";

  Answer csv = Call(verb::get, "/admin/v1/usage?format=csv");
  EXPECT_EQ(csv.status, 200u);
  EXPECT_EQ(csv.content_type, "text/csv; charset=utf-8");
  EXPECT_TRUE(csv.body.starts_with("key,tenant,model,start,")) << csv.body;
}

// user= filters by end user ("" = the rows without one); group_by=user puts each row's user in
// JSON and a user column in CSV. An unknown group_by is still a 400.
TEST_F(AdminApiTest, UsageFiltersAndGroupsByUser) {
  clock_.Set(1'700'000'000'000'000);
  usage_result_.ok = true;
  usage_result_.rows = {{"cfg-key", "", "m", 1'699'999'200, {1, 10, 2}, "alice"},
                        {"cfg-key", "", "m", 1'699'999'200, {2, 20, 4}, "bob"}};
  usage_result_.total = {3, 30, 6};

  Answer r = Call(verb::get, "/admin/v1/usage?group_by=key,user&user=alice");
  ASSERT_EQ(r.status, 200u) << r.body;
  ASSERT_EQ(usage_queries_.size(), 1u);
  EXPECT_EQ(usage_queries_[0].user, "alice");
  EXPECT_EQ(usage_queries_[0].group_by,
            (UsageQuery::GroupBy{.key = true, .tenant = false, .model = false, .user = true}));
  json::object body = Body(r);
  ASSERT_EQ(body.at("data").as_array().size(), 2u);
  EXPECT_EQ(body.at("data").at(0).at("user"), "alice");
  EXPECT_EQ(body.at("data").at(1).at("user"), "bob");
  EXPECT_EQ(body.at("data").at(1).at("prompt_tokens"), 20);
  EXPECT_FALSE(body.at("data").at(0).as_object().contains("tenant"));
  EXPECT_EQ(body.at("group_by"), (json::array{"key", "user"}));

  Answer csv = Call(verb::get, "/admin/v1/usage?format=csv&group_by=user&user=");
  ASSERT_EQ(csv.status, 200u) << csv.body;
  EXPECT_EQ(usage_queries_.back().user, "") << "user= is the rows without a user";
  EXPECT_TRUE(csv.body.starts_with("user,start,requests,")) << csv.body;
  EXPECT_NE(csv.body.find("\nbob,2023-11-14T22:00:00Z,2,20,4,"), std::string::npos) << csv.body;

  // Without group_by: no user in the rows, nor a user filter.
  Answer plain = Call(verb::get, "/admin/v1/usage");
  ASSERT_EQ(plain.status, 200u);
  EXPECT_EQ(usage_queries_.back().user, std::nullopt);
  EXPECT_FALSE(Body(plain).at("data").at(0).as_object().contains("user"));

  ExpectError(Call(verb::get, "/admin/v1/usage?group_by=user,hour"), 400, "invalid_request",
              "group_by");
}

TEST_F(AdminApiTest, UsageRefusesABadQueryAndSaysWhenTheStoreFails) {
  ExpectError(Call(verb::get, "/admin/v1/usage?granularity=week"), 400, "invalid_request",
              "granularity");
  ExpectError(Call(verb::get, "/admin/v1/usage?colour=blue"), 400, "invalid_request", "colour");
  EXPECT_TRUE(usage_queries_.empty());

  usage_result_ = {false, "connection refused", {}, {}};
  ExpectError(Call(verb::get, "/admin/v1/usage"), 503, "store_unavailable");
  EXPECT_EQ(usage_queries_.size(), 1u);
}

}  // namespace
}  // namespace trl
