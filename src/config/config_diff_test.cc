#include "config/config_diff.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace trl {
namespace {

std::shared_ptr<const Config> LoadYaml(const std::string& yaml) {
  LoadResult r = LoadConfigText(yaml, [](const std::string&) { return std::nullopt; });
  EXPECT_TRUE(r.config) << (r.errors.empty() ? "" : r.errors.front());
  return r.config;
}

constexpr char kRunning[] = R"(
admin: {listen: 127.0.0.1:0, token: admin-secret}
models:
  - name: m
    backends: [http://127.0.0.1:9]
  - name: old
    backends: [http://127.0.0.1:9]
tenants:
  - name: acme
    limits: [{tokens: 5000, per: 1m}]
api_keys:
  - name: team-a
    key: sk-team-a-secret-1234567890
    tenant: acme
  - name: gone
    key: sk-gone-secret-1234567890
default_limits: [{tokens: 100, per: 1m}]
)";

constexpr char kNext[] = R"(
admin: {listen: 127.0.0.1:0, token: admin-secret-2}
server: {threads: 3}
models:
  - name: m
    aliases: [m-alias]
    backends: [http://127.0.0.1:10]
  - name: new
    backends: [http://127.0.0.1:9]
tenants:
  - name: acme
    limits: [{tokens: 6000, per: 1m}]
  - name: beta
    limits: [{requests: 5, per: 1m}]
api_keys:
  - name: team-a
    key: sk-team-a-secret-rotated-123
    limits: [{requests: 10, per: 1h}]
  - name: team-b
    key: sk-team-b-secret-1234567890
default_limits: [{tokens: 200, per: 1m}]
)";

TEST(ConfigDiffTest, TheSameConfigChangesNothing) {
  auto running = LoadYaml(kRunning);
  ConfigDiff diff = DiffConfigs(*running, *LoadYaml(kRunning));
  EXPECT_TRUE(diff.Empty());
  EXPECT_EQ(ConfigDiffToText(diff), "no changes\n");
}

TEST(ConfigDiffTest, NamesWhatIsAddedRemovedAndChangedAndHowInJson) {
  ConfigDiff diff = DiffConfigs(*LoadYaml(kRunning), *LoadYaml(kNext));
  EXPECT_FALSE(diff.Empty());
  EXPECT_EQ(ConfigDiffToJson(diff), boost::json::parse(R"({
    "models": {"added": ["new"], "removed": ["old"],
               "changed": [{"name": "m", "fields": ["aliases", "backends"]}]},
    "api_keys": {"added": ["team-b"], "removed": ["gone"],
                 "changed": [{"name": "team-a", "fields": ["key", "tenant", "limits"]}]},
    "tenants": {"added": ["beta"], "removed": [],
                "changed": [{"name": "acme", "fields": ["limits"]}]},
    "default_limits": true,
    "settings": ["admin.token"],
    "restart_required": ["server.threads"]})"));
}

TEST(ConfigDiffTest, NeverShowsASecretOrItsHash) {
  std::string json =
      boost::json::serialize(ConfigDiffToJson(DiffConfigs(*LoadYaml(kRunning), *LoadYaml(kNext))));
  for (const char* secret : {"sk-team-a", "sk-team-b", "sk-gone", "admin-secret-2"}) {
    EXPECT_EQ(json.find(secret), std::string::npos) << secret;
  }
  EXPECT_EQ(json.find("sha"), std::string::npos);
}

TEST(ConfigDiffTest, TextHasOneLinePerKindOfChange) {
  EXPECT_EQ(ConfigDiffToText(DiffConfigs(*LoadYaml(kRunning), *LoadYaml(kNext))),
            "models: added new; removed old; changed m (aliases, backends)\n"
            "api_keys: added team-b; removed gone; changed team-a (key, tenant, limits)\n"
            "tenants: added beta; changed acme (limits)\n"
            "default_limits: changed\n"
            "settings: admin.token\n"
            "restart required: server.threads\n");
}

TEST(ConfigDiffTest, PricesWeightsAndTheCurrencyAreChanges) {
  auto running = LoadYaml(R"(
models: [{name: m, backends: ["http://127.0.0.1:9"], prices: {input: 1}}]
)");
  auto next = LoadYaml(R"(
currency: EUR
models: [{name: m, backends: ["http://127.0.0.1:9"], prices: {input: 1, output: 2},
          cached_token_weight: 0.5}]
)");
  EXPECT_EQ(ConfigDiffToText(DiffConfigs(*running, *next)),
            "models: changed m (prices, cached_token_weight)\n"
            "settings: currency\n");
}

TEST(ConfigDiffTest, AKeyReturningToDefaultLimitsIsALimitsChange) {
  auto running = LoadYaml(R"(
models: [{name: m, backends: ["http://127.0.0.1:9"]}]
api_keys: [{name: k, key: sk-k-secret-1234567890, limits: [{tokens: 100, per: 1m}]}]
default_limits: [{tokens: 100, per: 1m}]
)");
  auto next = LoadYaml(R"(
models: [{name: m, backends: ["http://127.0.0.1:9"]}]
api_keys: [{name: k, key: sk-k-secret-1234567890}]
default_limits: [{tokens: 100, per: 1m}]
)");
  ConfigDiff diff = DiffConfigs(*running, *next);
  ASSERT_EQ(diff.api_keys.changed.size(), 1u);
  EXPECT_EQ(diff.api_keys.changed[0].fields, std::vector<std::string>{"limits"});
  EXPECT_FALSE(diff.default_limits);
}

}  // namespace
}  // namespace trl
