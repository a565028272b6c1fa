#include "app/startup_log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace trl {
namespace {

using ::testing::ElementsAre;

std::shared_ptr<const Config> Load(const std::string& yaml) {
  LoadResult r = LoadConfigText(yaml, [](const std::string&) { return std::nullopt; });
  EXPECT_THAT(r.errors, ::testing::IsEmpty());
  return r.config;
}

TEST(StartupLines, EmbeddedStore) {
  auto c = Load(R"(
store: {backend: memory, data_dir: /var/lib/trl}
admin: {listen: 127.0.0.1:8081, token: a-secret-admin-token-0123}
models:
  - name: m
    aliases: [mm, m2]
    backends: [http://10.0.0.5:8000, http://10.0.0.6:8000]
  - name: n
    backends: [http://10.0.0.7:8000]
tenants: [{name: t}]
api_keys:
  - {name: a, key: sk-secret-key-0123456789, tenant: t}
)");
  ASSERT_NE(c, nullptr);
  EXPECT_THAT(
      StartupLines({"1.4.0", "/etc/trl.yaml", c.get(), 3, "0.0.0.0:8080", "127.0.0.1:8081"}),
      ElementsAre("token-rate-limiter 1.4.0 started with config /etc/trl.yaml; listening on "
                  "0.0.0.0:8080 (data plane), 127.0.0.1:8081 (admin)",
                  "store: memory, data_dir /var/lib/trl",
                  "models: m (aliases mm, m2) -> http://10.0.0.5:8000, http://10.0.0.6:8000; n -> "
                  "http://10.0.0.7:8000",
                  "keys: 1 in the config, 3 made through the admin API; tenants: 1"));
}

TEST(StartupLines, RedisWithoutItsPassword) {
  auto c = Load(R"(
store:
  backend: redis
  data_dir: ./d
  journal: off
  redis: {url: "redis://:hunter2-password@10.0.0.9:6379/0"}
models:
  - name: m
    backends: [http://10.0.0.5:8000]
)");
  ASSERT_NE(c, nullptr);
  const auto lines = StartupLines({"1.4.0", "c.yaml", c.get(), std::nullopt, "[::]:8080", ""});
  EXPECT_THAT(lines,
              ElementsAre("token-rate-limiter 1.4.0 started with config c.yaml; listening on "
                          "[::]:8080 (data plane), no admin listener",
                          "store: redis redis://:***@10.0.0.9:6379/0, journal off",
                          "models: m -> http://10.0.0.5:8000",
                          "keys: 0 in the config, those made through the admin API loaded at the "
                          "first key sync; tenants: 0"));
  for (const auto& line : lines) EXPECT_THAT(line, ::testing::Not(::testing::HasSubstr("hunter2")));
}

}  // namespace
}  // namespace trl
