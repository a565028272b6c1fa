#include "common/host_port.h"

#include <gtest/gtest.h>

namespace trl {
namespace {

TEST(ParseHostPortTest, NamesAddressesAndBracketedIpv6) {
  auto a = ParseHostPort("127.0.0.1:8080");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 8080);
  auto b = ParseHostPort("[::1]:0");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->port, 0);
  auto c = ParseHostPort("vllm-7b.svc_1", uint16_t{80});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->host, "vllm-7b.svc_1");
  EXPECT_EQ(c->port, 80);
}

TEST(ParseHostPortTest, RefusesWhatIsAmbiguousOrMalformed) {
  EXPECT_FALSE(ParseHostPort("::1:8080"));  // unbracketed IPv6
  EXPECT_FALSE(ParseHostPort("host"));      // no port, no default
  EXPECT_FALSE(ParseHostPort(":80"));
  EXPECT_FALSE(ParseHostPort("h:65536"));
  EXPECT_FALSE(ParseHostPort("h:+80"));
  EXPECT_FALSE(ParseHostPort("h:123456"));
  EXPECT_FALSE(ParseHostPort("h:"));
  EXPECT_FALSE(ParseHostPort("h st:80"));
  EXPECT_FALSE(ParseHostPort("[]:80"));
  EXPECT_FALSE(ParseHostPort("[::1"));
  EXPECT_FALSE(ParseHostPort("[::1]x"));
  EXPECT_FALSE(ParseHostPort("[x]:80"));
}

TEST(SplitHostPortTest, ThePortIsAfterTheLastColon) {
  auto a = SplitHostPort("127.0.0.1:7001");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 7001);
  auto b = SplitHostPort("::1:7002");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->port, 7002);
  auto c = SplitHostPort("[::1]:0");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->port, 0);
  EXPECT_FALSE(SplitHostPort("nohost"));
  EXPECT_FALSE(SplitHostPort(":80"));
  EXPECT_FALSE(SplitHostPort("[]:80"));
  EXPECT_FALSE(SplitHostPort("h:99999"));
  EXPECT_FALSE(SplitHostPort("h:8x"));
}

TEST(SplitHostPortTest, BracketsOnlyEncloseTheWholeHost) {
  // "[[[[]]:2" once read as host "[[[]", which FormatHostPort wrote as "[[[]:2", read back as "[[".
  EXPECT_FALSE(SplitHostPort("[[[[]]:2"));
  EXPECT_FALSE(SplitHostPort("[h]]:1"));
  EXPECT_FALSE(SplitHostPort("h[:1"));
  auto bracketed = SplitHostPort("[redis.example]:6380");
  ASSERT_TRUE(bracketed);
  EXPECT_EQ(bracketed->host, "redis.example");
  EXPECT_EQ(bracketed->port, 6380);
}

TEST(FormatHostPortTest, BracketsIpv6) {
  EXPECT_EQ(FormatHostPort("redis.example", 6380), "redis.example:6380");
  EXPECT_EQ(FormatHostPort("::1", 7000), "[::1]:7000");
}

TEST(StartsWithNoCaseTest, Schemes) {
  EXPECT_TRUE(StartsWithNoCase("REDIS://h", "redis://"));
  EXPECT_TRUE(StartsWithNoCase("http://h", "http://"));
  EXPECT_FALSE(StartsWithNoCase("https://h", "http://"));
  EXPECT_FALSE(StartsWithNoCase("red", "redis://"));
}

}  // namespace
}  // namespace trl
