#include "config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <cstdlib>
#include <limits>
#include <map>

#include "common/crypto.h"
#include "fakes/limit_builders.h"
#include "fakes/temp_dir.h"

namespace trl {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAre;

using Env = std::map<std::string, std::string>;

LoadResult Load(const std::string& yaml, const Env& env = {}) {
  return LoadConfigText(yaml, [env](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  });
}

// Two models so that references (by name and by alias) can be tested.
constexpr const char* kModels = R"(
models:
  - name: m1
    aliases: [m1-alias]
    backends: [http://b1:8000]
  - name: m2
    backends: [http://b2:8000]
)";

std::string WithModels(const std::string& rest) { return std::string(kModels) + rest; }

// Loads `yaml`, expects it to fail, and returns every error.
std::vector<std::string> Errors(const std::string& yaml, const Env& env = {}) {
  LoadResult r = Load(yaml, env);
  EXPECT_EQ(r.config, nullptr);
  EXPECT_THAT(r.errors, Not(IsEmpty()));
  return r.errors;
}

std::shared_ptr<const Config> Ok(const std::string& yaml, const Env& env = {}) {
  LoadResult r = Load(yaml, env);
  EXPECT_THAT(r.errors, IsEmpty());
  return r.config;
}

using testing::Concurrent;
using testing::Requests;
using testing::Tokens;

// ----------------------------------------------------------------------------------------------
// A complete, valid file.
// ----------------------------------------------------------------------------------------------

TEST(ConfigLoad, FullConfigParsesIntoExactValues) {
  testing::TempDir dir;
  const std::string tokenizer = dir.Write("tokenizer.json", "{}");
  std::string yaml = R"(
listen: 127.0.0.1:9090
server:
  threads: 4
  max_body_bytes: 1048576
  max_header_bytes: 8192
  header_timeout: 5s
  idle_timeout: 2m
  shutdown_grace: 0s
admin:
  listen: "[::1]:8081"
  token: ${ADMIN_TOKEN}
store:
  backend: redis
  data_dir: /var/lib/trl
  redis:
    url: [redis://h1:7000, "rediss://:pw@h2:7001/0"]
    timeout: 250ms
  on_store_error: deny
  concurrency_lease_ttl: 2m
identity:
  source: header:X-Forwarded-User
models:
  - name: llama2-7b
    aliases: [meta-llama/Llama-2-7b-chat-hf, l7]
    backends: [http://vllm-7b:8000, "http://10.0.0.2/prefix/v0/", "http://[fd00::1]:9000"]
    tokenizer: )" + tokenizer +
                     R"(
    max_output_tokens: 2048
    media_tokens: {image: 576, video: 0, audio_second: 25}
    passthrough: [/v1/responses/*, /health]
    timeout: 1h
    request_timeout: 2h
  - name: llama2-13b
    backends: [http://vllm-13b:8000]
tenants:
  - name: acme
    limits: [{tokens: 1000000, per: 1m}]
  - name: empty
api_keys:
  - name: team-a
    key_sha256: 9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08
    tenant: acme
    models: [l7, llama2-13b]
    limits:
      - {tokens: 100000, per: 1m}
      - {requests: 600, per: 1m, reset: rolling}
      - {tokens: 2000000, per: 1d, reset: calendar}
      - {concurrent: 16}
      - {model: meta-llama/Llama-2-7b-chat-hf, tokens: 20000, per: 1m}
  - name: team.b_2
    key: ${TEAM_B_KEY}
    limits: []
  - name: team-c
    key: plain-c
default_limits: [{tokens: 10000, per: 1m}, {requests: 5, per: 1s}]
)";
  auto c = Ok(yaml, {{"ADMIN_TOKEN", "adm"}, {"TEAM_B_KEY", "sk-b"}});
  ASSERT_NE(c, nullptr);

  EXPECT_EQ(c->listen.host, "127.0.0.1");
  EXPECT_EQ(c->listen.port, 9090);
  EXPECT_EQ(c->server.threads, 4);
  EXPECT_EQ(c->server.max_body_bytes, 1048576u);
  EXPECT_EQ(c->server.max_header_bytes, 8192u);
  EXPECT_EQ(c->server.header_timeout, Millis(5000));
  EXPECT_EQ(c->server.idle_timeout, Millis(120'000));
  EXPECT_EQ(c->server.shutdown_grace, Millis(0));

  ASSERT_TRUE(c->admin.listen.has_value());
  EXPECT_EQ(c->admin.listen->host, "::1");
  EXPECT_EQ(c->admin.listen->port, 8081);
  EXPECT_EQ(c->admin.token, "adm");

  EXPECT_EQ(c->store.backend, StoreBackend::kRedis);
  EXPECT_EQ(c->store.data_dir, "/var/lib/trl");
  EXPECT_THAT(c->store.redis.urls, ElementsAre("redis://h1:7000", "rediss://:pw@h2:7001/0"));
  EXPECT_EQ(c->store.redis.timeout, Millis(250));
  EXPECT_EQ(c->store.on_store_error, OnStoreError::kDeny);
  EXPECT_EQ(c->store.concurrency_lease_ttl, Millis(120'000));

  EXPECT_EQ(c->identity.source, IdentityConfig::Source::kHeader);
  EXPECT_EQ(c->identity.header, "x-forwarded-user");

  ASSERT_EQ(c->models.size(), 2u);
  const ModelConfig& m = c->models[0];
  EXPECT_EQ(m.name, "llama2-7b");
  EXPECT_THAT(m.aliases, ElementsAre("meta-llama/Llama-2-7b-chat-hf", "l7"));
  ASSERT_EQ(m.backends.size(), 3u);
  EXPECT_EQ(m.backends[0].url, "http://vllm-7b:8000");
  EXPECT_EQ(m.backends[0].host, "vllm-7b");
  EXPECT_EQ(m.backends[0].port, 8000);
  EXPECT_EQ(m.backends[0].base_path, "");
  EXPECT_EQ(m.backends[1].host, "10.0.0.2");
  EXPECT_EQ(m.backends[1].port, 80);
  EXPECT_EQ(m.backends[1].base_path, "/prefix/v0");
  EXPECT_EQ(m.backends[2].host, "fd00::1");
  EXPECT_EQ(m.backends[2].port, 9000);
  EXPECT_EQ(m.tokenizer, tokenizer);
  EXPECT_EQ(m.max_output_tokens, 2048);
  EXPECT_EQ(m.media_tokens.image, 576);
  EXPECT_EQ(m.media_tokens.audio, 1024);  // not given: the default
  EXPECT_EQ(m.media_tokens.video, 0);
  EXPECT_EQ(m.media_tokens.file, 1024);
  EXPECT_EQ(m.media_tokens.audio_second, 25);
  EXPECT_THAT(m.passthrough, ElementsAre("/v1/responses/*", "/health"));
  EXPECT_EQ(m.timeout, Millis(3'600'000));
  EXPECT_EQ(m.request_timeout, Millis(7'200'000));
  const ModelConfig& m2 = c->models[1];
  EXPECT_EQ(m2.name, "llama2-13b");
  EXPECT_THAT(m2.aliases, IsEmpty());
  EXPECT_EQ(m2.tokenizer, "approx");
  EXPECT_EQ(m2.max_output_tokens, 1024);
  EXPECT_EQ(m2.media_tokens.image, 1024);
  EXPECT_EQ(m2.media_tokens.audio, 1024);
  EXPECT_EQ(m2.media_tokens.video, 4096);
  EXPECT_EQ(m2.media_tokens.file, 1024);
  EXPECT_EQ(m2.timeout, Millis(120'000));

  ASSERT_EQ(c->tenants.size(), 2u);
  EXPECT_EQ(c->tenants[0].name, "acme");
  EXPECT_THAT(c->tenants[0].limits, ElementsAre(Tokens(1'000'000, Millis(60'000))));
  EXPECT_EQ(c->tenants[1].name, "empty");
  EXPECT_THAT(c->tenants[1].limits, IsEmpty());

  ASSERT_EQ(c->api_keys.size(), 3u);
  const ApiKeyConfig& a = c->api_keys[0];
  EXPECT_EQ(a.name, "team-a");
  EXPECT_EQ(a.key_sha256, Sha256Of("test"));
  EXPECT_EQ(a.tenant, "acme");
  EXPECT_THAT(a.models, ElementsAre("llama2-7b", "llama2-13b"));
  EXPECT_TRUE(a.limits_set);
  EXPECT_THAT(a.limits,
              ElementsAre(Tokens(100'000, Millis(60'000)), Requests(600, Millis(60'000)),
                          Tokens(2'000'000, Millis(86'400'000), /*calendar=*/true), Concurrent(16),
                          Tokens(20'000, Millis(60'000), false, "llama2-7b")));
  const ApiKeyConfig& b = c->api_keys[1];
  EXPECT_EQ(b.name, "team.b_2");
  EXPECT_EQ(b.key_sha256, Sha256Of("sk-b"));
  EXPECT_EQ(b.tenant, "");
  EXPECT_THAT(b.models, IsEmpty());
  EXPECT_TRUE(b.limits_set);  // an explicit empty list: no limits at all
  EXPECT_THAT(b.limits, IsEmpty());
  EXPECT_FALSE(c->api_keys[2].limits_set);  // default_limits apply

  EXPECT_THAT(c->default_limits,
              ElementsAre(Tokens(10'000, Millis(60'000)), Requests(5, Millis(1000))));
}

TEST(ConfigLoad, MinimalConfigGetsDefaults) {
  auto c = Ok("models: [{name: m, backends: [http://b]}]");
  ASSERT_NE(c, nullptr);
  Config d;
  EXPECT_EQ(c->listen.host, "0.0.0.0");
  EXPECT_EQ(c->listen.port, 8080);
  EXPECT_EQ(c->server.threads, d.server.threads);
  EXPECT_EQ(c->server.max_body_bytes, d.server.max_body_bytes);
  EXPECT_EQ(c->server.max_header_bytes, d.server.max_header_bytes);
  EXPECT_EQ(c->server.header_timeout, d.server.header_timeout);
  EXPECT_FALSE(c->admin.listen.has_value());
  EXPECT_EQ(c->admin.token, "");
  EXPECT_EQ(c->store.backend, StoreBackend::kMemory);
  EXPECT_EQ(c->store.data_dir, "./data");
  EXPECT_EQ(c->store.on_store_error, OnStoreError::kAllow);
  EXPECT_EQ(c->store.concurrency_lease_ttl, Millis(60'000));
  EXPECT_EQ(c->models[0].timeout, Millis(120'000));
  EXPECT_EQ(c->models[0].request_timeout, Millis(600'000));
  EXPECT_EQ(c->identity.source, IdentityConfig::Source::kApiKey);
  ASSERT_EQ(c->models.size(), 1u);
  EXPECT_EQ(c->models[0].backends[0].port, 80);
  EXPECT_THAT(c->tenants, IsEmpty());
  EXPECT_THAT(c->api_keys, IsEmpty());
  EXPECT_THAT(c->default_limits, IsEmpty());
}

TEST(ConfigLoad, EmptySectionsAreAllowed) {
  auto c = Ok(WithModels("server:\nadmin:\nstore:\nidentity:\ntenants:\napi_keys:\n"));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->server.threads, 0);
}

// ----------------------------------------------------------------------------------------------
// Structure: unknown keys, duplicates, wrong types, YAML syntax.
// ----------------------------------------------------------------------------------------------

TEST(ConfigErrors, UnknownKeysNameTheirPath) {
  auto e = Errors(WithModels(R"(
server: {thread: 4}
store: {redis: {urll: redis://x}}
api_keys: [{name: k, key: s, limits: [{tokens: 1, per: 1s, burst: 2}]}]
listn: 1.2.3.4:5
)"));
  EXPECT_THAT(
      e, UnorderedElementsAre("server.thread: unknown key", "store.redis.urll: unknown key",
                              "api_keys[0].limits[0].burst: unknown key", "listn: unknown key"));
}

TEST(ConfigErrors, UnknownKeyInModel) {
  EXPECT_THAT(Errors("models: [{name: m, backends: [http://b], backend: x}]"),
              ElementsAre("models[0].backend: unknown key"));
}

TEST(ConfigErrors, PassthroughPathsArePaths) {
  EXPECT_THAT(
      Errors(
          "models: [{name: m, backends: [http://b], passthrough: [v1/x, /a*b, '/q?x=1', /ok/*]}]"),
      ElementsAre("models[0].passthrough[0]: \"v1/x\" is not a path: start with /, use letters, "
                  "digits and -._~/ only, and * only at the end",
                  "models[0].passthrough[1]: \"/a*b\" is not a path: start with /, use letters, "
                  "digits and -._~/ only, and * only at the end",
                  "models[0].passthrough[2]: \"/q?x=1\" is not a path: start with /, use letters, "
                  "digits and -._~/ only, and * only at the end"));
  EXPECT_TRUE(PassthroughMatches("/v1/responses/*", "/v1/responses/resp_1/cancel"));
  EXPECT_FALSE(PassthroughMatches("/v1/responses/*", "/v1/responses"));
  EXPECT_TRUE(PassthroughMatches("/health", "/health"));
  EXPECT_FALSE(PassthroughMatches("/health", "/healthz"));
}

TEST(ConfigErrors, DuplicateKey) {
  EXPECT_THAT(Errors(WithModels("server:\n  threads: 1\n  threads: 2\n")),
              Contains("server.threads: duplicate key"));
}

TEST(ConfigErrors, WrongTypes) {
  auto e = Errors(R"(
server: [1, 2]
models:
  - name: [x]
    backends: http://b
tenants: {name: t}
)");
  EXPECT_THAT(e, UnorderedElementsAre("server: not a map", "models[0].name: not a string",
                                      "models[0].backends: not a list", "tenants: not a list"));
}

TEST(ConfigErrors, RootMustBeAMap) {
  EXPECT_THAT(Errors("- a\n- b\n"), ElementsAre("config: not a map"));
  EXPECT_THAT(Errors(""), ElementsAre("config: empty document"));
}

TEST(ConfigErrors, YamlSyntaxErrorHasLineAndColumnAndDoesNotThrow) {
  LoadResult r;
  EXPECT_NO_THROW(r = Load("models:\n  - name: m\n    backends: [http://b\n"));
  EXPECT_EQ(r.config, nullptr);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_THAT(r.errors[0], HasSubstr("yaml: line "));
  EXPECT_THAT(r.errors[0], HasSubstr(", column "));

  EXPECT_NO_THROW(r = Load("a: b: c\n"));
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_THAT(r.errors[0], HasSubstr("yaml: line 1, column"));
}

// ----------------------------------------------------------------------------------------------
// listen / server / admin.
// ----------------------------------------------------------------------------------------------

TEST(ConfigErrors, ListenMustBeHostPort) {
  const char* msg = "not host:port (e.g. 0.0.0.0:8080 or [::1]:8080)";
  for (const char* bad : {"8080", ":8080", "host", "host:", "host:65536", "::1:8080", "[::1]",
                          "a b:80", "host:80x"}) {
    SCOPED_TRACE(bad);
    EXPECT_THAT(Errors(WithModels(std::string("listen: \"") + bad + "\"\n")),
                ElementsAre(std::string("listen: ") + msg));
  }
  EXPECT_THAT(Errors(WithModels("admin: {listen: nope}\n")),
              ElementsAre(std::string("admin.listen: ") + msg));
}

TEST(ConfigErrors, AdminListenMustNotTakeTheDataPlanesPort) {
  const std::string msg = " takes the port of listen (";
  for (const auto& [data, admin] :
       std::vector<std::pair<std::string, std::string>>{{"127.0.0.1:8080", "127.0.0.1:8080"},
                                                        {"0.0.0.0:8080", "127.0.0.1:8080"},
                                                        {"127.0.0.1:8080", "0.0.0.0:8080"},
                                                        {"'[::]:8080'", "127.0.0.1:8080"},
                                                        {"'[::1]:8080'", "'[::]:8080'"},
                                                        {"localhost:8080", "localhost:8080"}}) {
    SCOPED_TRACE(data + " " + admin);
    auto errors = Errors(WithModels("listen: " + data + "\nadmin: {listen: " + admin + "}\n"));
    ASSERT_THAT(errors, SizeIs(1));
    EXPECT_THAT(errors[0], HasSubstr("admin.listen: "));
    EXPECT_THAT(errors[0], HasSubstr(msg));
  }
  EXPECT_THAT(Errors(WithModels("listen: 0.0.0.0:8080\nadmin: {listen: 127.0.0.1:8080}\n")),
              ElementsAre("admin.listen: 127.0.0.1:8080 takes the port of listen (0.0.0.0:8080): "
                          "the admin API needs a port of its own"));
  // Other ports, port 0 (any free port), and addresses that do not cover each other are fine.
  for (const auto& [data, admin] :
       std::vector<std::pair<std::string, std::string>>{{"127.0.0.1:8080", "127.0.0.1:8081"},
                                                        {"127.0.0.1:0", "127.0.0.1:0"},
                                                        {"127.0.0.1:8080", "127.0.0.2:8080"},
                                                        {"0.0.0.0:8080", "'[::1]:8080'"}}) {
    SCOPED_TRACE(data + " " + admin);
    EXPECT_NE(Ok(WithModels("listen: " + data + "\nadmin: {listen: " + admin + "}\n")), nullptr);
  }
}

TEST(ConfigLoad, ListenAcceptsIpv6AndPortZero) {
  auto c = Ok(WithModels("listen: '[::]:0'\n"));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->listen.host, "::");
  EXPECT_EQ(c->listen.port, 0);
}

TEST(ConfigErrors, ServerThreadsRange) {
  for (const char* bad : {"-1", "257", "four", "1.5"}) {
    SCOPED_TRACE(bad);
    EXPECT_THAT(Errors(WithModels(std::string("server: {threads: ") + bad + "}\n")),
                ElementsAre("server.threads: must be an integer from 0 to 256"));
  }
  EXPECT_NE(Ok(WithModels("server: {threads: 256}\n")), nullptr);
}

TEST(ConfigLoad, ServerReusePortIsOptIn) {
  auto c = Ok(WithModels(""));
  ASSERT_NE(c, nullptr);
  EXPECT_FALSE(c->server.reuse_port);
  c = Ok(WithModels("server: {reuse_port: true}\n"));
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(c->server.reuse_port);
  EXPECT_THAT(Errors(WithModels("server: {reuse_port: yes}\n")),
              ElementsAre("server.reuse_port: must be true or false"));
}

TEST(ConfigErrors, ServerByteLimits) {
  EXPECT_THAT(Errors(WithModels("server: {max_body_bytes: 0}\n")),
              ElementsAre("server.max_body_bytes: must be a positive integer"));
  EXPECT_THAT(Errors(WithModels("server: {max_header_bytes: 1023}\n")),
              ElementsAre("server.max_header_bytes: must be an integer from 1024 to 4294967295"));
  EXPECT_NE(Ok(WithModels("server: {max_header_bytes: 1024}\n")), nullptr);
}

TEST(ConfigLoad, TrustedProxies) {
  auto c = Ok(WithModels("server: {trusted_proxies: [10.0.0.0/8, '127.0.0.1', 'fd00::/8']}\n"));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->server.trusted_proxies.size(), 3u);
  for (const char* in : {"10.0.0.1", "10.255.255.255", "127.0.0.1", "fd12::1"}) {
    EXPECT_TRUE(IsTrustedProxy(c->server, in)) << in;
  }
  for (const char* out : {"11.0.0.1", "127.0.0.2", "::1", "fe80::1", "", "not-an-ip"}) {
    EXPECT_FALSE(IsTrustedProxy(c->server, out)) << out;
  }
  EXPECT_FALSE(IsTrustedProxy(Ok(WithModels(""))->server, "127.0.0.1"));  // none by default
  EXPECT_THAT(Errors(WithModels("server: {trusted_proxies: [10.0.0.0/33, example.com]}\n")),
              ElementsAre("server.trusted_proxies[0]: not an address or range (e.g. 10.0.0.0/8, "
                          "fd00::/8, 127.0.0.1)",
                          "server.trusted_proxies[1]: not an address or range (e.g. 10.0.0.0/8, "
                          "fd00::/8, 127.0.0.1)"));
}

TEST(ConfigLoad, ServerMaxConnections) {
  auto c = Ok(WithModels(""));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->server.max_connections, 10'000u);
  c = Ok(WithModels("server: {max_connections: 500}\n"));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->server.max_connections, 500u);
  EXPECT_THAT(Errors(WithModels("server: {max_connections: 0}\n")),
              ElementsAre("server.max_connections: must be a positive integer <= 10000000"));
}

TEST(ConfigErrors, ServerDurations) {
  auto e =
      Errors(WithModels("server: {header_timeout: 10, idle_timeout: 0s, shutdown_grace: x}\n"));
  EXPECT_THAT(
      e, UnorderedElementsAre("server.header_timeout: not a duration (use 250ms, 2s, 1m, 1h, 1d)",
                              "server.idle_timeout: must be longer than 0",
                              "server.shutdown_grace: not a duration (use 250ms, 2s, 1m, 1h, 1d)"));
}

// ----------------------------------------------------------------------------------------------
// store / identity.
// ----------------------------------------------------------------------------------------------

TEST(ConfigErrors, StoreBackendAndOnStoreError) {
  EXPECT_THAT(Errors(WithModels("store: {backend: etcd, on_store_error: maybe}\n")),
              UnorderedElementsAre("store.backend: must be memory or redis",
                                   "store.on_store_error: must be allow or deny"));
}

TEST(ConfigErrors, RedisBackendRequiresUrl) {
  EXPECT_THAT(Errors(WithModels("store: {backend: redis}\n")),
              ElementsAre("store.redis.url: required when store.backend is redis"));
}

TEST(ConfigErrors, RedisUrls) {
  const std::string msg = "not a Redis URL (expected redis://host:port[/db] or rediss://...)";
  EXPECT_THAT(Errors(WithModels("store: {redis: {url: http://h:6379}}\n")),
              ElementsAre("store.redis.url: " + msg));
  EXPECT_THAT(Errors(WithModels("store: {redis: {url: [redis://a:1, 'redis://', redis://b/x]}}\n")),
              ElementsAre("store.redis.url[1]: " + msg, "store.redis.url[2]: " + msg));
  EXPECT_THAT(Errors(WithModels("store: {redis: {url: []}}\n")),
              ElementsAre("store.redis.url: at least one URL is required"));
  EXPECT_THAT(Errors(WithModels("store: {redis: {url: {a: b}}}\n")),
              ElementsAre("store.redis.url: must be a URL or a list of URLs"));
  EXPECT_THAT(Errors(WithModels("store: {redis: {url: redis://h, timeout: 50}}\n")),
              ElementsAre("store.redis.timeout: not a duration (use 250ms, 2s, 1m, 1h, 1d)"));
}

TEST(ConfigErrors, ConcurrencyLeaseTtl) {
  EXPECT_THAT(Errors(WithModels("store: {concurrency_lease_ttl: 0s}\n")),
              ElementsAre("store.concurrency_lease_ttl: must be longer than 0"));
  EXPECT_THAT(Errors(WithModels("store: {concurrency_lease_ttl: 30}\n")),
              ElementsAre("store.concurrency_lease_ttl: not a duration (use 250ms, 2s, 1m, 1h, "
                          "1d)"));
  EXPECT_THAT(Errors(WithModels("store: {concurrency_lease_ttl: -2s}\n")),
              ElementsAre("store.concurrency_lease_ttl: not a duration (use 250ms, 2s, 1m, 1h, "
                          "1d)"));
  auto c = Ok(WithModels("store: {concurrency_lease_ttl: 1500ms}\n"));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->store.concurrency_lease_ttl, Millis(1500));
}

TEST(ConfigLoad, KeySyncMaxStale) {
  auto c = Ok(WithModels(""));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->store.key_sync_max_stale, Millis(60'000));
  c = Ok(WithModels("store: {key_sync_max_stale: 10s}\n"));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->store.key_sync_max_stale, Millis(10'000));
  EXPECT_THAT(Errors(WithModels("store: {key_sync_max_stale: 0s}\n")),
              ElementsAre("store.key_sync_max_stale: must be longer than 0"));
}

TEST(ConfigLoad, JournalPolicy) {
  auto c = Ok(WithModels(""));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->store.journal, FsyncPolicy::kEverySecond);
  for (auto [text, policy] : {std::pair{"always", std::optional(FsyncPolicy::kAlways)},
                              std::pair{"no", std::optional(FsyncPolicy::kNo)},
                              std::pair{"off", std::optional<FsyncPolicy>()}}) {
    c = Ok(WithModels(std::string("store: {journal: ") + text + "}\n"));
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->store.journal, policy) << text;
  }
  EXPECT_THAT(Errors(WithModels("store: {journal: yes}\n")),
              ElementsAre("store.journal: must be always, everysec, no or off"));
}

TEST(ConfigLoad, RedisSingleUrl) {
  auto c = Ok(WithModels("store: {backend: redis, redis: {url: 'redis://127.0.0.1:6379/0'}}\n"));
  ASSERT_NE(c, nullptr);
  EXPECT_THAT(c->store.redis.urls, ElementsAre("redis://127.0.0.1:6379/0"));
  EXPECT_EQ(c->store.redis.timeout, Millis(50));
}

TEST(ConfigErrors, IdentitySource) {
  for (const char* bad : {"jwt", "header:", "header:a b", "Header:x"}) {
    SCOPED_TRACE(bad);
    EXPECT_THAT(Errors(WithModels(std::string("identity: {source: '") + bad + "'}\n")),
                ElementsAre("identity.source: must be api_key or header:<name>"));
  }
}

// ----------------------------------------------------------------------------------------------
// models.
// ----------------------------------------------------------------------------------------------

TEST(ConfigErrors, AtLeastOneModel) {
  EXPECT_THAT(Errors("listen: 0.0.0.0:1\n"), ElementsAre("models: at least one model is required"));
  EXPECT_THAT(Errors("models: []\n"), ElementsAre("models: at least one model is required"));
}

TEST(ConfigErrors, ModelNameRequiredAndUnique) {
  EXPECT_THAT(Errors("models: [{backends: [http://b]}]"), ElementsAre("models[0].name: required"));
  EXPECT_THAT(Errors("models: [{name: '', backends: [http://b]}]"),
              ElementsAre("models[0].name: must not be empty"));
  EXPECT_THAT(Errors("models: [{name: a, backends: [http://b]}, {name: a, backends: [http://b]}]"),
              ElementsAre("models[1].name: \"a\" is already a model name or alias"));
}

TEST(ConfigErrors, AliasesUniqueAcrossNamesAndAliases) {
  auto e = Errors(R"(
models:
  - name: a
    aliases: [x, a]
    backends: [http://b]
  - name: x
    aliases: [y, y]
    backends: [http://b]
)");
  EXPECT_THAT(e, ElementsAre("models[0].aliases[1]: \"a\" is already a model name or alias",
                             "models[1].name: \"x\" is already a model name or alias",
                             "models[1].aliases[1]: \"y\" is already a model name or alias"));
}

TEST(ConfigErrors, BackendsRequiredAndNonEmpty) {
  EXPECT_THAT(Errors("models: [{name: m}]"), ElementsAre("models[0].backends: required"));
  EXPECT_THAT(Errors("models: [{name: m, backends: []}]"),
              ElementsAre("models[0].backends: at least one backend is required"));
}

TEST(ConfigErrors, BackendNotAUrl) {
  for (const char* bad : {"vllm:8000", "ftp://h", "http://", "http://h:0", "http://h:99999",
                          "http://u@h", "http://h/p?q=1", "http://h:x", "http://::1:80"}) {
    SCOPED_TRACE(bad);
    std::string yaml = std::string("models:\n  - {name: a, backends: [http://ok]}\n") +
                       "  - {name: b, backends: [http://ok, '" + bad + "']}\n";
    EXPECT_THAT(Errors(yaml),
                ElementsAre("models[1].backends[1]: not a URL (expected http://host:port[/path])"));
  }
}

TEST(ConfigErrors, HttpsBackendNotSupported) {
  EXPECT_THAT(Errors("models: [{name: m, backends: ['https://h:443']}]"),
              ElementsAre("models[0].backends[0]: https backends are not supported yet"));
}

TEST(ConfigLoad, BackendUrlParts) {
  auto c = Ok("models: [{name: m, backends: ['http://h/', 'HTTP://h:81/a/b//']}]");
  ASSERT_NE(c, nullptr);
  const auto& b = c->models[0].backends;
  EXPECT_EQ(b[0].host, "h");
  EXPECT_EQ(b[0].port, 80);
  EXPECT_EQ(b[0].base_path, "");
  EXPECT_EQ(b[0].authority, "h:80");
  EXPECT_EQ(b[1].url, "HTTP://h:81/a/b//");
  EXPECT_EQ(b[1].authority, "h:81");
  EXPECT_EQ(b[1].port, 81);
  EXPECT_EQ(b[1].base_path, "/a/b");
}

TEST(ConfigErrors, TokenizerMustBeApproxOrAnExistingFile) {
  EXPECT_THAT(
      Errors("models: [{name: m, backends: [http://b], tokenizer: /nonexistent/tokenizer.json}]"),
      ElementsAre("models[0].tokenizer: no such file (expected approx, a tokenizer.json path or "
                  "tiktoken:PATH)"));
  EXPECT_THAT(Errors("models: [{name: m, backends: [http://b], tokenizer: 'tiktoken:/none'}]"),
              ElementsAre("models[0].tokenizer: no such file (expected approx, a tokenizer.json "
                          "path or tiktoken:PATH)"));
}

// A chat framing is one of the built-in ones, and frames what a tokenizer file counts.
TEST(ConfigErrors, ChatTemplateIsKnownAndNeedsATokenizerFile) {
  EXPECT_THAT(Errors("models: [{name: m, backends: [http://b], chat_template: mistral}]"),
              ElementsAre("models[0].chat_template: expected llama2, llama3 or chatml"));
  EXPECT_THAT(Errors("models: [{name: m, backends: [http://b], chat_template: llama3}]"),
              ElementsAre("models[0].chat_template: needs a tokenizer file (models[].tokenizer)"));
}

TEST(ConfigErrors, MaxOutputTokensAndTimeout) {
  auto e = Errors("models: [{name: m, backends: [http://b], max_output_tokens: 0, timeout: 2x}]");
  EXPECT_THAT(e, ElementsAre("models[0].max_output_tokens: must be a positive integer <= "
                             "1000000000000000",
                             "models[0].timeout: not a duration (use 250ms, 2s, 1m, 1h, 1d)"));
}

TEST(ConfigErrors, MediaTokens) {
  EXPECT_THAT(Errors("models: [{name: m, backends: [http://b], media_tokens: {image: -1, "
                     "audio: x, video: 1.5, pdf: 3}}]"),
              ElementsAre("models[0].media_tokens.pdf: unknown key",
                          "models[0].media_tokens.image: must be an integer from 0 to "
                          "1000000000000000",
                          "models[0].media_tokens.audio: must be an integer from 0 to "
                          "1000000000000000",
                          "models[0].media_tokens.video: must be an integer from 0 to "
                          "1000000000000000"));
  EXPECT_THAT(Errors("models: [{name: m, backends: [http://b], media_tokens: 5}]"),
              ElementsAre("models[0].media_tokens: not a map"));
}

// ----------------------------------------------------------------------------------------------
// tenants and api_keys.
// ----------------------------------------------------------------------------------------------

TEST(ConfigErrors, TenantNameRequiredAndUnique) {
  EXPECT_THAT(
      Errors(WithModels("tenants: [{name: t}, {name: t}, {limits: []}]\n")),
      ElementsAre("tenants[1].name: duplicate tenant name \"t\"", "tenants[2].name: required"));
}

TEST(ConfigErrors, KeyTenantMustExist) {
  EXPECT_THAT(Errors(WithModels("tenants: [{name: t}]\n"
                                "api_keys: [{name: k, key: s, tenant: nope}]\n")),
              ElementsAre("api_keys[0].tenant: unknown tenant \"nope\""));
}

TEST(ConfigErrors, KeyNameRequiredValidAndUnique) {
  const std::string msg = "must be 1-64 characters of A-Z a-z 0-9 _ - . (not starting with .)";
  for (std::string bad : {std::string("''"), std::string(".k"), std::string("a b"),
                          std::string("k/1"), std::string(65, 'a')}) {
    SCOPED_TRACE(bad);
    EXPECT_THAT(Errors(WithModels("api_keys: [{name: " + bad + ", key: s}]\n")),
                ElementsAre("api_keys[0].name: " + msg));
  }
  EXPECT_NE(Ok(WithModels("api_keys: [{name: " + std::string(64, 'a') + ", key: s}]\n")), nullptr);
  EXPECT_THAT(Errors(WithModels("api_keys: [{key: s}]\n")),
              ElementsAre("api_keys[0].name: required"));
  EXPECT_THAT(Errors(WithModels("api_keys: [{name: k, key: s1}, {name: k, key: s2}]\n")),
              ElementsAre("api_keys[1].name: duplicate key name \"k\""));
}

TEST(ConfigErrors, KeyNeedsExactlyOneOfKeyAndKeySha256) {
  const std::string hex(64, 'a');
  EXPECT_THAT(Errors(WithModels("api_keys: [{name: k}]\n")),
              ElementsAre("api_keys[0]: needs key or key_sha256"));
  EXPECT_THAT(Errors(WithModels("api_keys: [{name: k, key: s, key_sha256: " + hex + "}]\n")),
              ElementsAre("api_keys[0]: has both key and key_sha256; use one"));
  EXPECT_THAT(Errors(WithModels("api_keys: [{name: k, key: ''}]\n")),
              ElementsAre("api_keys[0].key: must not be empty"));
}

TEST(ConfigErrors, KeySha256MustBe64Hex) {
  for (std::string bad : {std::string(63, 'a'), std::string(65, 'a'), std::string(64, 'g')}) {
    EXPECT_THAT(Errors(WithModels("api_keys: [{name: k, key_sha256: " + bad + "}]\n")),
                ElementsAre("api_keys[0].key_sha256: not a SHA-256 (expected 64 hex digits)"));
  }
}

TEST(ConfigErrors, TwoKeysWithTheSameSecret) {
  EXPECT_THAT(Errors(WithModels("api_keys:\n  - {name: a, key: test}\n"
                                "  - {name: b, key_sha256: " +
                                ToHex(Sha256Of("test")) + "}\n")),
              ElementsAre("api_keys[1]: same key as api_keys[0]"));
}

TEST(ConfigErrors, KeyModelsMustExist) {
  EXPECT_THAT(Errors(WithModels("api_keys: [{name: k, key: s, models: [m1, gpt-4]}]\n")),
              ElementsAre("api_keys[0].models[1]: unknown model \"gpt-4\""));
  EXPECT_THAT(Errors(WithModels("api_keys: [{name: k, key: s, models: []}]\n")),
              ElementsAre("api_keys[0].models: empty; omit models to allow every model"));
}

TEST(ConfigLoad, KeyModelsAreCanonicalAndDeduplicated) {
  auto c = Ok(WithModels("api_keys: [{name: k, key: s, models: [m1-alias, m2, m1]}]\n"));
  ASSERT_NE(c, nullptr);
  EXPECT_THAT(c->api_keys[0].models, ElementsAre("m1", "m2"));
}

TEST(ConfigLoad, PlaintextKeyIsStoredOnlyAsItsSha256) {
  const std::string secret = "sk-very-secret-plaintext-0123456789";
  auto c =
      Ok(WithModels("admin: {token: adm}\napi_keys: [{name: k, key: ${K}}]\n"), {{"K", secret}});
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->api_keys[0].key_sha256, Sha256Of(secret));

  // Walk every string the Config holds.
  std::vector<std::string> strings = {c->listen.host, c->admin.token, c->store.data_dir,
                                      c->identity.header};
  if (c->admin.listen) strings.push_back(c->admin.listen->host);
  for (const auto& u : c->store.redis.urls) strings.push_back(u);
  auto add_limits = [&](const std::vector<LimitConfig>& ls) {
    for (const auto& l : ls) strings.push_back(l.model);
  };
  for (const auto& m : c->models) {
    strings.push_back(m.name);
    strings.push_back(m.tokenizer);
    for (const auto& a : m.aliases) strings.push_back(a);
    for (const auto& b : m.backends) {
      strings.insert(strings.end(), {b.url, b.host, b.base_path});
    }
  }
  for (const auto& t : c->tenants) {
    strings.push_back(t.name);
    add_limits(t.limits);
  }
  for (const auto& k : c->api_keys) {
    strings.push_back(k.name);
    strings.push_back(k.tenant);
    for (const auto& m : k.models) strings.push_back(m);
    add_limits(k.limits);
    std::string raw(k.key_sha256.begin(), k.key_sha256.end());
    strings.push_back(raw);
  }
  add_limits(c->default_limits);
  for (const auto& s : strings) EXPECT_THAT(s, Not(HasSubstr(secret)));
}

// ----------------------------------------------------------------------------------------------
// limits.
// ----------------------------------------------------------------------------------------------

// Runs `limit` as the third limit of the first key, as in the error-message examples.
std::vector<std::string> LimitErrors(const std::string& limit) {
  return Errors(
      WithModels("api_keys:\n  - name: k\n    key: s\n    limits:\n"
                 "      - {tokens: 1, per: 1s}\n      - {requests: 1, per: 1s}\n"
                 "      - " +
                 limit + "\n"));
}

TEST(ConfigErrors, LimitPerMustBeADuration) {
  for (const char* bad : {"1x", "60", "1.5s", "-1s", "1 m", "m"}) {
    SCOPED_TRACE(bad);
    EXPECT_THAT(
        LimitErrors(std::string("{tokens: 5, per: '") + bad + "'}"),
        ElementsAre("api_keys[0].limits[2].per: not a duration (use 250ms, 2s, 1m, 1h, 1d)"));
  }
  EXPECT_THAT(LimitErrors("{tokens: 5, per: 0s}"),
              ElementsAre("api_keys[0].limits[2].per: must be longer than 0"));
}

TEST(ConfigErrors, DurationsAreAtMost100Years) {
  // 1e11 days fits in int64 milliseconds but not in the limiter's microseconds.
  for (const char* bad : {"36501d", "100000000000d", "900000000h"}) {
    SCOPED_TRACE(bad);
    EXPECT_THAT(LimitErrors(std::string("{tokens: 5, per: ") + bad + "}"),
                ElementsAre("api_keys[0].limits[2].per: must be at most 36500d"));
  }
  EXPECT_THAT(Errors(WithModels("server: {idle_timeout: 100000000000d}\n")),
              ElementsAre("server.idle_timeout: must be at most 36500d"));
  EXPECT_NE(Ok(WithModels("default_limits: [{tokens: 5, per: 36500d}]\n")), nullptr);
}

TEST(ConfigErrors, LimitNeedsExactlyOneKind) {
  EXPECT_THAT(LimitErrors("{per: 1m}"),
              ElementsAre("api_keys[0].limits[2]: needs one of tokens, requests, concurrent or "
                          "spend"));
  EXPECT_THAT(LimitErrors("{tokens: 1, requests: 2, per: 1m}"),
              ElementsAre("api_keys[0].limits[2]: has both tokens and requests; write one limit "
                          "per entry"));
  EXPECT_THAT(LimitErrors("{requests: 1, concurrent: 2}"),
              ElementsAre("api_keys[0].limits[2]: has both requests and concurrent; write one "
                          "limit per entry"));
  EXPECT_THAT(LimitErrors("5"), ElementsAre("api_keys[0].limits[2]: not a map"));
  EXPECT_THAT(LimitErrors("~"), ElementsAre("api_keys[0].limits[2]: not a map"));
}

TEST(ConfigSpend, SpendLimitsPricesAndCurrencyAreExactDecimals) {
  auto c = Ok(WithModels(
      "currency: EUR\n"
      "default_limits: [{spend: 50.00, per: 30d}, {spend: '0.000000001', per: 1d, reset: "
      "calendar, model: m2}]\n"));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->currency, "EUR");
  ASSERT_EQ(c->default_limits.size(), 2u);
  EXPECT_EQ(c->default_limits[0].kind, LimitKind::kSpend);
  EXPECT_EQ(c->default_limits[0].amount, 50'000'000'000);  // nanos
  EXPECT_EQ(c->default_limits[0].per, std::chrono::hours(24 * 30));
  EXPECT_EQ(c->default_limits[1].amount, 1);
  EXPECT_TRUE(c->default_limits[1].calendar);
  EXPECT_EQ(c->default_limits[1].model, "m2");
  EXPECT_EQ(Ok(WithModels(""))->currency, "USD") << "the default";

  auto priced =
      Ok("models:\n  - name: m\n    backends: [http://b:1]\n"
         "    prices: {input: 0.50, output: 1.5, cached_input: 0.075}\n"
         "    cached_token_weight: 0.25\n"
         "  - name: n\n    backends: [http://b:1]\n    prices: {input: 2}\n");
  ASSERT_NE(priced, nullptr);
  EXPECT_EQ(priced->models[0].prices, (TokenPrices{500'000, 75'000, 1'500'000}));
  EXPECT_EQ(priced->models[0].cached_token_weight, 250'000);
  // cached_input defaults to input (no discount unless written); a model without prices is free.
  EXPECT_EQ(priced->models[1].prices, (TokenPrices{2'000'000, 2'000'000, 0}));
  EXPECT_EQ(priced->models[1].cached_token_weight, 1'000'000);
  EXPECT_TRUE(Ok(WithModels(""))->models[0].prices.Free());
}

TEST(ConfigQueue, KeysAndTenantsMayWaitForBudget) {
  auto c = Ok(WithModels(
      "tenants: [{name: t, queue: {max_wait: 10s, max_queued: 50}}]\n"
      "api_keys:\n"
      "  - {name: a, key: sk-aaaaaaaaaaaaaaaaaaaa, tenant: t, queue: {max_wait: 250ms}}\n"
      "  - {name: b, key: sk-bbbbbbbbbbbbbbbbbbbb}\n"));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->tenants[0].queue, (QueueConfig{std::chrono::seconds(10), 50}));
  EXPECT_EQ(c->api_keys[0].queue, (QueueConfig{std::chrono::milliseconds(250), 100}))
      << "max_queued defaults to 100";
  EXPECT_FALSE(c->api_keys[1].queue.Enabled()) << "no queue unless written";

  const auto errors = [](const std::string& queue) {
    return Errors(WithModels("tenants: [{name: t, queue: " + queue + "}]\n"));
  };
  EXPECT_THAT(errors("{max_queued: 5}"), ElementsAre("tenants[0].queue.max_wait: required"));
  EXPECT_THAT(errors("{max_wait: 11m}"),
              ElementsAre("tenants[0].queue.max_wait: must be at most 10m"));
  EXPECT_THAT(errors("{max_wait: 0s}"),
              ElementsAre("tenants[0].queue.max_wait: must be longer than 0"));
  EXPECT_THAT(errors("{max_wait: 1s, max_queued: 0}"),
              ElementsAre(HasSubstr("tenants[0].queue.max_queued:")));
  EXPECT_THAT(errors("{max_wait: 1s, max_queued: 100001}"),
              ElementsAre(HasSubstr("tenants[0].queue.max_queued:")));
  EXPECT_THAT(errors("{max_wait: 1s, priority: 2}"),
              ElementsAre(HasSubstr("tenants[0].queue.priority")));
}

TEST(ConfigUsers, ScopeUserMakesALimitPerEndUser) {
  auto c = Ok(WithModels(
      "identity: {user_header: X-End-User}\n"
      "tenants: [{name: t, limits: [{requests: 5, per: 1m, scope: user}]}]\n"
      "default_limits: [{tokens: 20000, per: 1m, scope: user}, {tokens: 90000, per: 1m}]\n"));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->identity.user_header, "x-end-user");
  EXPECT_TRUE(c->tenants[0].limits[0].per_user);
  EXPECT_TRUE(c->default_limits[0].per_user);
  EXPECT_FALSE(c->default_limits[1].per_user);
  EXPECT_EQ(Ok(WithModels(""))->identity.user_header, "") << "by default: the body's user";
  EXPECT_THAT(LimitErrors("{tokens: 5, per: 1m, scope: key}"),
              ElementsAre("api_keys[0].limits[2].scope: must be user (a budget per end user); "
                          "leave it out for one budget"));
  EXPECT_THAT(Errors(WithModels("identity: {user_header: 'x user'}\n")),
              ElementsAre("identity.user_header: not a header name"));
}

TEST(ConfigSpend, BadAmountsAreRefusedByName) {
  const std::string spend_help =
      "api_keys[0].limits[2].spend: must be an amount of money above 0, at most 9000000, with up "
      "to 9 decimal places";
  for (const char* bad : {"0", "-1", "0.0000000001", "9000000.1", "abc", "1e400", "[1]", "~"}) {
    SCOPED_TRACE(bad);
    EXPECT_THAT(LimitErrors(std::string("{spend: ") + bad + ", per: 1d}"), ElementsAre(spend_help));
  }
  EXPECT_THAT(LimitErrors("{spend: 5}"),
              ElementsAre("api_keys[0].limits[2].per: required with spend"));
  EXPECT_THAT(LimitErrors("{spend: 5, tokens: 5, per: 1d}"),
              ElementsAre("api_keys[0].limits[2]: has both tokens and spend; write one limit per "
                          "entry"));
  const std::string model = "models:\n  - name: m\n    backends: [http://b:1]\n";
  EXPECT_THAT(Errors(model + "    prices: {input: -1, output: 0.0000001, cached: 1}\n"),
              ElementsAre("models[0].prices.cached: unknown key",
                          "models[0].prices.input: must be a price per million tokens from 0 to "
                          "1000000 with up to 6 decimal places",
                          "models[0].prices.output: must be a price per million tokens from 0 to "
                          "1000000 with up to 6 decimal places"));
  EXPECT_THAT(Errors(model + "    cached_token_weight: 1.5\n"),
              ElementsAre("models[0].cached_token_weight: must be a fraction from 0 to 1 with up "
                          "to 6 decimal places"));
  EXPECT_THAT(Errors(WithModels("currency: usd\n")),
              ElementsAre("currency: expected a three-letter ISO 4217 code, e.g. USD or EUR"));
}

TEST(ConfigErrors, LimitPerRequiredForTokensAndRequests) {
  EXPECT_THAT(LimitErrors("{tokens: 5}"),
              ElementsAre("api_keys[0].limits[2].per: required with tokens"));
  EXPECT_THAT(LimitErrors("{requests: 5}"),
              ElementsAre("api_keys[0].limits[2].per: required with requests"));
}

TEST(ConfigErrors, ConcurrentTakesNoPerOrReset) {
  EXPECT_THAT(LimitErrors("{concurrent: 5, per: 1m, reset: calendar}"),
              ElementsAre("api_keys[0].limits[2].per: not allowed with concurrent",
                          "api_keys[0].limits[2].reset: not allowed with concurrent"));
}

TEST(ConfigErrors, LimitReset) {
  EXPECT_THAT(LimitErrors("{tokens: 5, per: 1d, reset: midnight}"),
              ElementsAre("api_keys[0].limits[2].reset: must be rolling or calendar"));
}

TEST(ConfigErrors, LimitAmountRange) {
  const std::string msg = "must be a positive integer <= 1000000000000000";
  EXPECT_THAT(LimitErrors("{tokens: 0, per: 1m}"),
              ElementsAre("api_keys[0].limits[2].tokens: " + msg));
  EXPECT_THAT(LimitErrors("{requests: -3, per: 1m}"),
              ElementsAre("api_keys[0].limits[2].requests: " + msg));
  EXPECT_THAT(LimitErrors("{concurrent: 1000000000000001}"),
              ElementsAre("api_keys[0].limits[2].concurrent: " + msg));
  EXPECT_THAT(LimitErrors("{tokens: 99999999999999999999999, per: 1m}"),
              ElementsAre("api_keys[0].limits[2].tokens: " + msg));
  EXPECT_THAT(LimitErrors("{tokens: 1e6, per: 1m}"),
              ElementsAre("api_keys[0].limits[2].tokens: " + msg));
}

TEST(ConfigErrors, LimitModelMustExist) {
  EXPECT_THAT(LimitErrors("{model: gpt-4, tokens: 5, per: 1m}"),
              ElementsAre("api_keys[0].limits[2].model: unknown model \"gpt-4\""));
  EXPECT_THAT(Errors(WithModels("default_limits: [{model: x, concurrent: 1}]\n"
                                "tenants: [{name: t, limits: [{model: y, concurrent: 1}]}]\n")),
              UnorderedElementsAre("default_limits[0].model: unknown model \"x\"",
                                   "tenants[0].limits[0].model: unknown model \"y\""));
}

TEST(ConfigLoad, LimitModelAliasIsCanonicalAndDuplicatesAreAllowed) {
  auto c =
      Ok(WithModels("default_limits:\n"
                    "  - {model: m1-alias, tokens: 5, per: 1m, reset: calendar}\n"
                    "  - {model: m1-alias, tokens: 5, per: 1m, reset: calendar}\n"
                    "  - {tokens: 1000000000000000, per: 1h}\n"));
  ASSERT_NE(c, nullptr);
  EXPECT_THAT(c->default_limits, ElementsAre(Tokens(5, Millis(60'000), true, "m1"),
                                             Tokens(5, Millis(60'000), true, "m1"),
                                             Tokens(1'000'000'000'000'000, Millis(3'600'000))));
}

TEST(ConfigErrors, LimitsMustBeAList) {
  EXPECT_THAT(Errors(WithModels("default_limits: {tokens: 5, per: 1m}\n")),
              ElementsAre("default_limits: not a list"));
}

// ----------------------------------------------------------------------------------------------
// Every error at once.
// ----------------------------------------------------------------------------------------------

TEST(ConfigErrors, AllErrorsAreReportedTogether) {
  auto e = Errors(R"(
listen: nowhere
server: {threads: 1000, thread: 1}
store: {backend: redis}
models:
  - name: a
    backends: [http://ok:1]
  - name: b
    backends: [http://ok:1, not-a-url]
api_keys:
  - name: k
    key: s
    limits: [{tokens: 5, per: 1m}, {requests: 5, per: 1m}, {tokens: 1, per: soon}]
    tenant: ghost
)");
  EXPECT_THAT(e,
              UnorderedElementsAre(
                  "listen: not host:port (e.g. 0.0.0.0:8080 or [::1]:8080)",
                  "server.threads: must be an integer from 0 to 256", "server.thread: unknown key",
                  "store.redis.url: required when store.backend is redis",
                  "models[1].backends[1]: not a URL (expected http://host:port[/path])",
                  "api_keys[0].limits[2].per: not a duration (use 250ms, 2s, 1m, 1h, 1d)",
                  "api_keys[0].tenant: unknown tenant \"ghost\""));
}

// ----------------------------------------------------------------------------------------------
// Environment substitution.
// ----------------------------------------------------------------------------------------------

TEST(ConfigEnv, SubstitutesVariablesAndDefaults) {
  auto c = Ok(WithModels("listen: ${HOST}:${PORT:-9000}\n"
                         "admin: {token: \"${TOKEN:-fallback}\", listen: '${ADMIN:-127.0.0.1:1}'}\n"
                         "store:\n  data_dir: ${DIR:-}/x$$y$HOME\n"),
              {{"HOST", "10.1.2.3"}, {"ADMIN", ""}});
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->listen.host, "10.1.2.3");
  EXPECT_EQ(c->listen.port, 9000);
  EXPECT_EQ(c->admin.token, "fallback");
  EXPECT_EQ(c->admin.listen->port, 1);  // an empty value takes the default, as in the shell
  EXPECT_EQ(c->store.data_dir, "/x$$y$HOME");
}

TEST(ConfigEnv, SetButEmptyWithoutDefaultIsEmpty) {
  auto c = Ok(WithModels("admin: {token: \"${TOKEN}\"}\n"), {{"TOKEN", ""}});
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->admin.token, "");
}

TEST(ConfigEnv, MissingVariableIsAnErrorNamingOnlyTheVariable) {
  auto e = Errors(WithModels("admin: {token: \"${ADMIN_TOKEN}\", listen: '${A}:${A}'}\n"
                             "api_keys: [{name: k, key: \"${PRESENT}\"}]\n"),
                  {{"PRESENT", "s3cr3t-value"}});
  EXPECT_THAT(e, Contains("${ADMIN_TOKEN}: environment variable not set"));
  EXPECT_THAT(e, Contains("${A}: environment variable not set"));
  EXPECT_EQ(std::count(e.begin(), e.end(), "${A}: environment variable not set"), 1);
  for (const auto& msg : e) EXPECT_THAT(msg, Not(HasSubstr("s3cr3t-value")));
}

TEST(ConfigEnv, CommentsAndKeysAreNotSubstituted) {
  EXPECT_NE(Ok(WithModels("# admin: {token: ${NOT_SET}}\n   # ${ALSO_NOT_SET}\n"
                          "admin: {token: t}  # was ${OLD_TOKEN}\n")),
            nullptr);
  EXPECT_THAT(Errors(WithModels("${NOT_SET}: 1\n")), ElementsAre("${NOT_SET}: unknown key"));
}

TEST(ConfigEnv, AValueIsTakenAsItIsNotParsedAsYaml) {
  // A value is substituted into the parsed document: quotes, " #", ": " and newlines in a secret
  // neither cut it short nor add keys.
  const std::string token = "a'b\" #c: d\n  listen: 0.0.0.0:1";
  const std::string key = "k\n  - name: injected\n    key: other";
  auto c = Ok(WithModels("admin:\n  token: ${TOKEN}\n"
                         "api_keys:\n  - name: k\n    key: \"${KEY}\"\n"),
              {{"TOKEN", token}, {"KEY", key}});
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->admin.token, token);
  EXPECT_FALSE(c->admin.listen.has_value());
  ASSERT_EQ(c->api_keys.size(), 1u);
  EXPECT_EQ(c->api_keys[0].key_sha256, Sha256Of(key));
}

TEST(ConfigEnv, MalformedReference) {
  const std::string msg = ": malformed ${...} reference (expected ${VAR} or ${VAR:-default})";
  EXPECT_THAT(Errors("x: ${1X}\n"), Contains("line 1" + msg));
  EXPECT_THAT(Errors("models: []\nx: ${UNCLOSED\n"), Contains("line 2" + msg));
  EXPECT_THAT(Errors("x: '${A:-${B}}'\n"), Contains("line 1" + msg));
}

// ----------------------------------------------------------------------------------------------
// Files.
// ----------------------------------------------------------------------------------------------

TEST(ConfigFile, LoadsFromDiskUsingTheProcessEnvironment) {
  ::setenv("TRL_CONFIG_TEST_PORT", "7777", 1);
  testing::TempDir dir;
  LoadResult r = LoadConfigFile(
      dir.Write("config.yaml", std::string(kModels) + "listen: 0.0.0.0:${TRL_CONFIG_TEST_PORT}\n"));
  ::unsetenv("TRL_CONFIG_TEST_PORT");
  ASSERT_THAT(r.errors, IsEmpty());
  EXPECT_EQ(r.config->listen.port, 7777);
}

TEST(ConfigFile, MissingFileIsAnError) {
  LoadResult r = LoadConfigFile("/nonexistent/trl.yaml");
  EXPECT_EQ(r.config, nullptr);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_THAT(r.errors[0], HasSubstr("/nonexistent/trl.yaml: cannot read"));
}

// ----------------------------------------------------------------------------------------------
// Durations.
// ----------------------------------------------------------------------------------------------

TEST(Duration, ParseTable) {
  const std::vector<std::pair<std::string, std::optional<Millis>>> cases = {
      {"250ms", Millis(250)},
      {"0ms", Millis(0)},
      {"0s", Millis(0)},
      {"2s", Millis(2000)},
      {"1m", Millis(60'000)},
      {"90m", Millis(5'400'000)},
      {"1h", Millis(3'600'000)},
      {"1d", Millis(86'400'000)},
      {"007s", Millis(7000)},
      {"", std::nullopt},
      {"5", std::nullopt},
      {"s", std::nullopt},
      {"1.5s", std::nullopt},
      {"-1s", std::nullopt},
      {"+1s", std::nullopt},
      {" 1s", std::nullopt},
      {"1s ", std::nullopt},
      {"1 s", std::nullopt},
      {"1S", std::nullopt},
      {"1sec", std::nullopt},
      {"1h30m", std::nullopt},
      {"1w", std::nullopt},
      {"1us", std::nullopt},
      {"9999999999999d", std::nullopt},
      {"999999999999d", std::nullopt},  // overflows int64 milliseconds
      {"106751991167d", Millis(int64_t{106751991167} * 86'400'000)},
      {"9223372036854775807ms", Millis(std::numeric_limits<int64_t>::max())},
      {"9223372036854775808ms", std::nullopt},
  };
  for (const auto& [text, want] : cases) {
    EXPECT_EQ(ParseDuration(text), want) << text;
  }
}

TEST(Duration, FormatTable) {
  const std::vector<std::pair<int64_t, std::string>> cases = {
      {0, "0s"},
      {1, "1ms"},
      {250, "250ms"},
      {999, "999ms"},
      {1000, "1s"},
      {1500, "1.5s"},
      {1250, "1.25s"},
      {1001, "1.001s"},
      {1050, "1.05s"},
      {1105, "1.105s"},
      {59'999, "59.999s"},
      {60'000, "1m0s"},
      {61'000, "1m1s"},
      {360'000, "6m0s"},
      {3'600'000, "1h0m0s"},
      {3'723'000, "1h2m3s"},
      {3'723'400, "1h2m3.4s"},
      {86'400'000, "24h0m0s"},
      {-250, "-250ms"},
      {-1500, "-1.5s"},
  };
  for (const auto& [ms, want] : cases) {
    EXPECT_EQ(FormatDuration(Millis(ms)), want) << ms;
  }
}

TEST(Usage, DefaultsAndValues) {
  auto c = Ok(WithModels(""));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->usage.retention, Millis(90LL * 24 * 3600 * 1000));
  EXPECT_EQ(c->usage.flush_interval, Millis(1000));
  c = Ok(WithModels("usage: {retention: 30d, flush_interval: 250ms}\n"));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->usage.retention, Millis(30LL * 24 * 3600 * 1000));
  EXPECT_EQ(c->usage.flush_interval, Millis(250));
}

TEST(ConfigErrors, UsageRanges) {
  EXPECT_THAT(Errors(WithModels("usage: {retention: 10m}\n")),
              ElementsAre("usage.retention: must be at least 1h (usage is kept per hour)"));
  EXPECT_THAT(Errors(WithModels("usage: {flush_interval: 2m}\n")),
              ElementsAre("usage.flush_interval: must be between 10ms and 1m"));
  EXPECT_THAT(Errors(WithModels("usage: {keep: 1d}\n")), ElementsAre(HasSubstr("usage.keep")));
}

TEST(Config, MetricsKeyLabel) {
  auto c = Ok(WithModels(""));
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(c->metrics.key_label);
  c = Ok(WithModels("metrics: {key_label: false}\n"));
  ASSERT_NE(c, nullptr);
  EXPECT_FALSE(c->metrics.key_label);
  EXPECT_THAT(Errors(WithModels("metrics: {key_label: no}\n")),
              ElementsAre("metrics.key_label: must be true or false"));
  EXPECT_THAT(Errors(WithModels("metrics: {keys: false}\n")),
              ElementsAre(HasSubstr("metrics.keys")));
}

TEST(Config, AccessLog) {
  auto c = Ok(WithModels(""));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->access_log.output, "stderr");
  EXPECT_EQ(c->access_log.level, AccessLogConfig::Level::kInfo);
  c = Ok(WithModels("access_log: {output: /var/log/trl/access.log, level: warn}\n"));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->access_log.output, "/var/log/trl/access.log");
  EXPECT_EQ(c->access_log.level, AccessLogConfig::Level::kWarn);
  c = Ok(WithModels("access_log: {output: off}\n"));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->access_log.output, "");
  EXPECT_THAT(Errors(WithModels("access_log: {level: debug}\n")),
              ElementsAre("access_log.level: must be info, warn or error"));
  EXPECT_THAT(Errors(WithModels("access_log: {output: ''}\n")),
              ElementsAre(HasSubstr("access_log.output")));
  EXPECT_THAT(Errors(WithModels("access_log: {format: text}\n")),
              ElementsAre(HasSubstr("access_log.format")));
}

TEST(Config, RestartOnlyChangesNamesWhatAReloadCannotApply) {
  auto running = Ok(WithModels("server: {threads: 2}\n"));
  ASSERT_NE(running, nullptr);
  // Limits, keys and models apply on reload: nothing to restart for.
  auto next = Ok(WithModels("server: {threads: 2}\ndefault_limits: [{tokens: 5, per: 1m}]\n"));
  ASSERT_NE(next, nullptr);
  EXPECT_THAT(RestartOnlyChanges(*running, *next), IsEmpty());
  next =
      Ok(WithModels("server: {threads: 4, idle_timeout: 5s, reuse_port: true}\n"
                    "usage: {flush_interval: 2s}\n"
                    "metrics: {key_label: false}\nadmin: {listen: 127.0.0.1:9}\n"));
  ASSERT_NE(next, nullptr);
  EXPECT_THAT(RestartOnlyChanges(*running, *next),
              ElementsAre("server.threads", "server.idle_timeout", "server.reuse_port",
                          "admin.listen", "usage.flush_interval", "metrics.key_label"));
}

// ----------------------------------------------------------------------------------------------
// ConfigWarnings: accepted, but probably wrong.
// ----------------------------------------------------------------------------------------------

std::vector<std::string> Warnings(const std::string& yaml) {
  auto c = Ok(yaml);
  return c ? ConfigWarnings(*c) : std::vector<std::string>{"(did not load)"};
}

constexpr const char* kGoodAdmin = "admin: {listen: 127.0.0.1:0, token: 0123456789abcdef0123}\n";

TEST(ConfigWarnings, NoneForAGoodConfig) {
  EXPECT_THAT(Warnings(WithModels(std::string(kGoodAdmin) +
                                  "api_keys:\n"
                                  "  - {name: a, key: sk-0123456789abcdef0123}\n"
                                  "  - {name: b, key_sha256: " +
                                  std::string(64, 'a') + "}\n")),
              IsEmpty());
  EXPECT_THAT(Warnings(WithModels("")), IsEmpty()) << "no admin listener: no token needed";
}

TEST(ConfigWarnings, AdminTokenMissingExampleOrShort) {
  EXPECT_THAT(Warnings(WithModels("admin: {listen: 127.0.0.1:0}\n")),
              ElementsAre("admin.token: not set: every /admin/v1 route answers 401"));
  for (const char* token :
       {"change-me", "CHANGEME", "demo-admin-token", "admin", "my-example-token-long-enough"}) {
    SCOPED_TRACE(token);
    EXPECT_THAT(
        Warnings(WithModels(std::string("admin: {listen: 127.0.0.1:0, token: ") + token + "}\n")),
        ElementsAre("admin.token: an example value: set a secret of your own"));
  }
  EXPECT_THAT(Warnings(WithModels("admin: {listen: 127.0.0.1:0, token: abc123xyz}\n")),
              ElementsAre("admin.token: shorter than 20 characters: easy to guess"));
}

TEST(ConfigWarnings, ShortKeySecretNamedWithoutItsText) {
  auto w =
      Warnings(WithModels(std::string(kGoodAdmin) + "api_keys:\n"
                                                    "  - {name: a, key: sk-0123456789abcdef0123}\n"
                                                    "  - {name: b, key: sk-short}\n"));
  EXPECT_THAT(w, ElementsAre("api_keys[1].key: 8 characters; use 20 or more (e.g. openssl rand "
                             "-hex 24)"));
  EXPECT_THAT(w[0], Not(HasSubstr("sk-short")));
}

TEST(ConfigWarnings, MaxOutputTokensAboveATokenLimitThatApplies) {
  const std::string yaml = std::string(kGoodAdmin) + R"(
models:
  - name: m1
    max_output_tokens: 2000
    backends: [http://b1:8000]
  - name: m2
    max_output_tokens: 100
    backends: [http://b2:8000]
default_limits: [{tokens: 1500, per: 1m}]
tenants:
  - name: t
    limits: [{tokens: 50, per: 1m, model: m2}, {requests: 1, per: 1m}]
api_keys:
  - name: a
    key_sha256: )" + std::string(64, 'a') +
                           R"(
    models: [m2]
    limits: [{tokens: 10, per: 1d}]
  - name: b
    key_sha256: )" + std::string(64, 'b') +
                           R"(
    limits: [{tokens: 5000, per: 1m}, {tokens: 1000, per: 1h, model: m1}]
)";
  EXPECT_THAT(
      Warnings(yaml),
      ElementsAre("models[0].max_output_tokens: 2000 is more than the 1500 tokens of "
                  "default_limits[0]: a request to m1 without max_tokens would be refused (400); "
                  "lower it or raise the limit",
                  "models[0].max_output_tokens: 2000 is more than the 1000 tokens of "
                  "api_keys[1].limits[1]: a request to m1 without max_tokens would be refused "
                  "(400); lower it or raise the limit",
                  "models[1].max_output_tokens: 100 is more than the 50 tokens of "
                  "tenants[0].limits[0]: a request to m2 without max_tokens would be refused "
                  "(400); lower it or raise the limit",
                  "models[1].max_output_tokens: 100 is more than the 10 tokens of "
                  "api_keys[0].limits[0]: a request to m2 without max_tokens would be refused "
                  "(400); lower it or raise the limit"));
}

TEST(ConfigWarnings, BackendUrlEndingInV1) {
  const std::string yaml = std::string(kGoodAdmin) + R"(
models:
  - name: m
    backends: [http://b1:8000/v1, http://b2:8000/v1/, http://b3:8000/prefix, http://b4:8000/v10]
)";
  const std::string tail =
      ": ends in /v1, which the gateway adds itself (requests would go to "
      ".../v1/v1/chat/completions, health checks to .../v1/health): leave it out";
  EXPECT_THAT(Warnings(yaml),
              ElementsAre("models[0].backends[0]" + tail, "models[0].backends[1]" + tail));
}

TEST(LimitsJson, AliasesResolved) {
  auto c = Ok(WithModels(""));
  ASSERT_NE(c, nullptr);
  LimitsParse r = ParseLimitsJson(
      boost::json::parse(
          R"([{"tokens": 500, "per": "1m"}, {"requests": 5, "per": "1h", "reset": "calendar"},
          {"concurrent": 2}, {"model": "m1-alias", "tokens": 10, "per": "1s"}])"),
      "limits", c.get());
  EXPECT_THAT(r.errors, IsEmpty());
  LimitConfig calendar_requests{LimitKind::kRequests, 5, Millis(3'600'000), true, ""};
  EXPECT_THAT(r.limits, ElementsAre(Tokens(500, Millis(60'000)), calendar_requests, Concurrent(2),
                                    Tokens(10, Millis(1000), false, "m1")));
}

TEST(LimitsJson, ErrorsNamedByPath) {
  auto c = Ok(WithModels(""));
  ASSERT_NE(c, nullptr);
  LimitsParse r = ParseLimitsJson(
      boost::json::parse(
          R"([{"tokens": -1, "per": "1m"}, {"model": "nope", "requests": 1, "per": "1s"}])"),
      "limits", c.get());
  EXPECT_THAT(r.limits, IsEmpty());
  EXPECT_THAT(r.errors, ElementsAre(HasSubstr("limits[0].tokens"),
                                    "limits[1].model: unknown model \"nope\""));
  EXPECT_THAT(ParseLimitsJson(boost::json::parse(R"({"tokens": 1})"), "limits", c.get()).errors,
              ElementsAre("limits: not a list"));
  // Without a config, model names are taken as written (keys saved earlier).
  EXPECT_THAT(
      ParseLimitsJson(boost::json::parse(R"([{"model": "gone", "tokens": 1, "per": "1s"}])"),
                      "limits", nullptr)
          .limits,
      ElementsAre(Tokens(1, Millis(1000), false, "gone")));
}

// JSON's scalars read as the config reads YAML's: numbers by their text (a fraction, an exponent
// or a string where an integer belongs is refused), null as an empty value, strings as written.
TEST(LimitsJson, ScalarsReadAsTheConfigReadsThem) {
  auto parse = [](const char* json) {
    return ParseLimitsJson(boost::json::parse(json), "limits", nullptr);
  };
  EXPECT_THAT(parse(R"([{"tokens": 1.5, "per": "1m"}])").errors,
              ElementsAre(HasSubstr("limits[0].tokens: must be a positive integer")));
  EXPECT_THAT(parse(R"([{"tokens": 1e3, "per": "1m"}])").errors, SizeIs(1));
  EXPECT_THAT(parse(R"([{"tokens": 10, "per": null}])").errors, SizeIs(1));
  EXPECT_THAT(parse(R"([{"tokens": 10, "per": 60}])").errors, SizeIs(1));
  EXPECT_THAT(parse(R"([{"tokens": 10, "per": "1m", "reset": true}])").errors,
              ElementsAre("limits[0].reset: must be rolling or calendar"));
  EXPECT_THAT(parse(R"([null])").errors, ElementsAre("limits[0]: not a map"));
  EXPECT_THAT(parse(R"(null)").limits, IsEmpty());
  EXPECT_THAT(parse(R"([{"tokens": "10", "per": "1m"}])").limits,
              ElementsAre(Tokens(10, Millis(60'000))));
}

TEST(KeyNames, Valid) {
  EXPECT_TRUE(IsValidKeyName("team-a"));
  EXPECT_TRUE(IsValidKeyName("a.b_c-9"));
  EXPECT_TRUE(IsValidKeyName(std::string(64, 'x')));
  EXPECT_FALSE(IsValidKeyName(std::string(65, 'x')));
  EXPECT_FALSE(IsValidKeyName(""));
  EXPECT_FALSE(IsValidKeyName(".hidden"));
  EXPECT_FALSE(IsValidKeyName("../x"));
  EXPECT_FALSE(IsValidKeyName("a/b"));
  EXPECT_FALSE(IsValidKeyName("%2e%2e"));
}

}  // namespace
}  // namespace trl
