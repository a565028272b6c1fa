#include "mock/mock_gzip.h"

#include <gtest/gtest.h>

#include <string>

#include "mock/gunzip_for_test.h"

namespace trl {
namespace {

TEST(MockGzipTest, WholeBodyIsOneGzipMember) {
  const std::string body(5000, 'a');
  MockGzip gzip;
  ASSERT_TRUE(gzip.Ok());
  std::string out;
  ASSERT_TRUE(gzip.Compress(body, out, MockGzip::Flush::kFinish));
  EXPECT_EQ(out.substr(0, 3), std::string("\x1f\x8b\x08", 3));  // gzip magic, deflate
  EXPECT_LT(out.size(), body.size() / 10);
  EXPECT_EQ(GunzipForTest(out), body);
  // Finished: nothing may follow the trailer.
  EXPECT_FALSE(gzip.Compress("more", out, MockGzip::Flush::kSync));
}

// Each sync-flushed piece decodes as soon as it arrives, before the member ends.
TEST(MockGzipTest, SyncFlushedEventsDecodeOneByOne) {
  MockGzip gzip;
  std::string sent;
  std::string expected;
  for (int i = 1; i <= 3; ++i) {
    const std::string event = "data: {\"n\":" + std::to_string(i) + "}\n\n";
    expected += event;
    std::string piece;
    ASSERT_TRUE(gzip.Compress(event, piece, MockGzip::Flush::kSync));
    EXPECT_TRUE(piece.ends_with(std::string("\x00\x00\xff\xff", 4))) << "a sync-flush marker";
    sent += piece;
    EXPECT_EQ(GunzipForTest(sent, true), expected);
    EXPECT_EQ(GunzipForTest(sent), std::nullopt) << "not finished yet";
  }
  std::string last;
  ASSERT_TRUE(gzip.Compress("data: [DONE]\n\n", last, MockGzip::Flush::kFinish));
  EXPECT_EQ(GunzipForTest(sent + last), expected + "data: [DONE]\n\n");
}

TEST(MockGzipTest, EmptyInput) {
  MockGzip gzip;
  std::string out;
  ASSERT_TRUE(gzip.Compress("", out, MockGzip::Flush::kFinish));
  EXPECT_EQ(GunzipForTest(out), "");
}

}  // namespace
}  // namespace trl
