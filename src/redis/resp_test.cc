#include "redis/resp.h"

#include <gtest/gtest.h>

namespace trl::redis {
namespace {

TEST(RespTest, FormatsWithHiredis) {
  std::string_view args[] = {"SET", "k", std::string_view("a\0b", 3)};
  EXPECT_EQ(FormatCommand(args), std::string("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\na\0b\r\n", 29));
}

TEST(RespTest, ReadsRepliesSplitAnywhere) {
  const std::string wire =
      "+OK\r\n:-42\r\n$-1\r\n*2\r\n$3\r\nabc\r\n:7\r\n-NOSCRIPT No matching\r\n";
  ReplyReader reader;
  std::vector<ReplyPtr> replies;
  for (char c : wire) {  // one byte at a time
    ASSERT_TRUE(reader.Feed(&c, 1));
    for (;;) {
      bool ok = true;
      ReplyPtr r = reader.Next(&ok);
      ASSERT_TRUE(ok);
      if (!r) break;
      replies.push_back(std::move(r));
    }
  }
  ASSERT_EQ(replies.size(), 5u);
  EXPECT_EQ(replies[0]->type, REDIS_REPLY_STATUS);
  EXPECT_EQ(ReplyText(*replies[0]), "OK");
  EXPECT_EQ(replies[1]->integer, -42);
  EXPECT_EQ(replies[2]->type, REDIS_REPLY_NIL);
  ASSERT_EQ(replies[3]->elements, 2u);
  EXPECT_EQ(ReplyText(*replies[3]->element[0]), "abc");
  EXPECT_TRUE(IsErrorWithPrefix(replies[4].get(), "NOSCRIPT"));
  EXPECT_FALSE(IsErrorWithPrefix(replies[4].get(), "NOSCRIPT No matching x"));
  EXPECT_FALSE(IsErrorWithPrefix(replies[0].get(), "OK"));
}

TEST(RespTest, ProtocolErrorIsReported) {
  ReplyReader reader;
  ASSERT_TRUE(reader.Feed("?bad\r\n", 6));
  bool ok = true;
  EXPECT_EQ(reader.Next(&ok), nullptr);
  EXPECT_FALSE(ok);
  EXPECT_FALSE(reader.Error().empty());
}

TEST(RespTest, AnArrayLargerThanAnyReplyIsAProtocolErrorBeforeItIsAllocated) {
  // hiredis allocates an array's element pointers from its header alone: 4.8 GB for this one.
  ReplyReader reader;
  const std::string header = "*600000000\r\n";
  ASSERT_TRUE(reader.Feed(header.data(), header.size()));
  bool ok = true;
  EXPECT_EQ(reader.Next(&ok), nullptr);
  EXPECT_FALSE(ok);
  EXPECT_EQ(reader.Error(), "an array reply of 600000000 elements (more than 4194304)");
}

TEST(RespTest, ArraysUpToTheBoundAreRead) {
  ReplyReader reader;
  std::string wire = "*2\r\n*4194304\r\n";
  ASSERT_TRUE(reader.Feed(wire.data(), wire.size()));
  bool ok = true;
  EXPECT_EQ(reader.Next(&ok), nullptr);
  EXPECT_TRUE(ok);  // more bytes needed, nothing refused
}

}  // namespace
}  // namespace trl::redis
