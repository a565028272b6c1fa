#include "common/redis_url.h"

#include <gtest/gtest.h>

namespace trl {
namespace {

TEST(RedisUrlTest, Defaults) {
  std::string error;
  auto url = ParseRedisUrl("redis://127.0.0.1", &error);
  ASSERT_TRUE(url) << error;
  EXPECT_FALSE(url->tls);
  EXPECT_EQ(url->host, "127.0.0.1");
  EXPECT_EQ(url->port, 6379);
  EXPECT_EQ(url->db, 0);
  EXPECT_EQ(url->user, "");
  EXPECT_EQ(url->password, "");
}

TEST(RedisUrlTest, EveryPart) {
  auto url = ParseRedisUrl("rediss://app:s%40cret%3A@redis.example:6380/3", nullptr);
  ASSERT_TRUE(url);
  EXPECT_TRUE(url->tls);
  EXPECT_EQ(url->user, "app");
  EXPECT_EQ(url->password, "s@cret:");
  EXPECT_EQ(url->host, "redis.example");
  EXPECT_EQ(url->port, 6380);
  EXPECT_EQ(url->db, 3);
  EXPECT_EQ(url->Address(), "redis.example:6380");
  EXPECT_EQ(url->Redacted(), "rediss://app:***@redis.example:6380/3");
}

TEST(RedisUrlTest, PasswordOnlyAndIpv6) {
  auto url = ParseRedisUrl("REDIS://:pw@[::1]:7000/", nullptr);
  ASSERT_TRUE(url);
  EXPECT_EQ(url->user, "");
  EXPECT_EQ(url->password, "pw");
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, 7000);
  EXPECT_EQ(url->Address(), "[::1]:7000");
  auto lone = ParseRedisUrl("redis://secret@h", nullptr);
  ASSERT_TRUE(lone);
  EXPECT_EQ(lone->user, "");
  EXPECT_EQ(lone->password, "secret");
}

TEST(RedisUrlTest, Errors) {
  std::string error;
  EXPECT_FALSE(ParseRedisUrl("http://h", &error));
  EXPECT_FALSE(ParseRedisUrl("redis://", &error));
  EXPECT_FALSE(ParseRedisUrl("redis://h:0", &error));
  EXPECT_FALSE(ParseRedisUrl("redis://h:99999", &error));
  EXPECT_FALSE(ParseRedisUrl("redis://h/x", &error));
  EXPECT_EQ(error, "the path must be a database number");
  EXPECT_FALSE(ParseRedisUrl("redis://u:%zz@h", &error));
  EXPECT_EQ(error.find("zz"), std::string::npos);  // never echoes the password
}

TEST(RedisUrlTest, HostsAndPortsAsTheConfigTakesThem) {
  std::string error;
  EXPECT_FALSE(ParseRedisUrl("redis://::1:7000", &error));  // IPv6 needs brackets
  EXPECT_EQ(error, "bad host");
  EXPECT_FALSE(ParseRedisUrl("redis://ho st:6379", &error));
  EXPECT_FALSE(ParseRedisUrl("redis://h:", &error));
  EXPECT_EQ(error, "bad port");
  EXPECT_FALSE(ParseRedisUrl("redis://[::1]:x", &error));
  EXPECT_EQ(error, "bad port");
  EXPECT_FALSE(ParseRedisUrl("redis://h/0/", &error));
  EXPECT_FALSE(ParseRedisUrl("redis://h/123456", &error));
  auto url = ParseRedisUrl("redis://u:p@h.example:65535/99999", &error);
  ASSERT_TRUE(url) << error;
  EXPECT_EQ(url->port, 65535);
  EXPECT_EQ(url->db, 99999);
}

}  // namespace
}  // namespace trl
