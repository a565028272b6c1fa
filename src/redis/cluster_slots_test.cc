#include "redis/cluster_slots.h"

#include <gtest/gtest.h>

#include "redis/resp.h"

namespace trl::redis {
namespace {

ReplyPtr Parse(const std::string& wire) {
  ReplyReader reader;
  EXPECT_TRUE(reader.Feed(wire.data(), wire.size()));
  bool ok = true;
  ReplyPtr r = reader.Next(&ok);
  EXPECT_TRUE(ok);
  return r;
}

TEST(KeySlotTest, KnownSlots) {
  // Values from the Redis Cluster specification and CLUSTER KEYSLOT.
  EXPECT_EQ(KeySlot("123456789"), 0x31C3 % 16384);
  EXPECT_EQ(KeySlot("foo"), 12182);
  EXPECT_EQ(KeySlot("bar"), 5061);
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("{user1000}.followers"));
  EXPECT_EQ(KeySlot("trl:{acme}:k:a|tokens"), KeySlot("acme"));
  EXPECT_EQ(KeySlot("foo{}{bar}"), KeySlot("foo{}{bar}"));  // empty tag: the whole key
  EXPECT_NE(KeySlot("foo{}{bar}"), KeySlot("bar"));
  EXPECT_EQ(KeySlot("foo{{bar}}zap"), KeySlot("{bar"));
}

TEST(ClusterSlotsTest, ParsesMasters) {
  ReplyPtr r = Parse(
      "*2\r\n"
      "*3\r\n:0\r\n:8191\r\n*3\r\n$9\r\n127.0.0.1\r\n:7000\r\n$2\r\nid\r\n"
      "*4\r\n:8192\r\n:16383\r\n*2\r\n$0\r\n\r\n:7001\r\n*2\r\n$9\r\n127.0.0.1\r\n:7002\r\n");
  auto ranges = ParseClusterSlots(*r, "10.0.0.9");
  ASSERT_TRUE(ranges);
  ASSERT_EQ(ranges->size(), 2u);
  EXPECT_EQ((*ranges)[0].first, 0);
  EXPECT_EQ((*ranges)[0].last, 8191);
  EXPECT_EQ((*ranges)[0].host, "127.0.0.1");
  EXPECT_EQ((*ranges)[0].port, 7000);
  EXPECT_EQ((*ranges)[1].host, "10.0.0.9");  // empty host: the node we asked
  EXPECT_EQ((*ranges)[1].port, 7001);
  EXPECT_FALSE(ParseClusterSlots(*Parse(":1\r\n"), "h"));
}

TEST(ClusterSlotsTest, Redirects) {
  auto moved = ParseRedirect(*Parse("-MOVED 3999 127.0.0.1:6381\r\n"));
  ASSERT_TRUE(moved);
  EXPECT_FALSE(moved->ask);
  EXPECT_EQ(moved->slot, 3999);
  EXPECT_EQ(moved->host, "127.0.0.1");
  EXPECT_EQ(moved->port, 6381);
  auto ask = ParseRedirect(*Parse("-ASK 1 ::1:7000\r\n"));
  ASSERT_TRUE(ask);
  EXPECT_TRUE(ask->ask);
  EXPECT_EQ(ask->host, "::1");
  EXPECT_FALSE(ParseRedirect(*Parse("-TRYAGAIN Multiple keys request during rehashing\r\n")));
  EXPECT_FALSE(ParseRedirect(*Parse("-MOVED 99999 h:1\r\n")));
  EXPECT_FALSE(ParseRedirect(*Parse("+OK\r\n")));
}

}  // namespace
}  // namespace trl::redis
