#include "common/journal.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "fakes/temp_dir.h"

namespace trl {
namespace {

class JournalTest : public ::testing::Test {
 protected:
  std::unique_ptr<Journal> Open(std::string_view header = "h",
                                FsyncPolicy policy = FsyncPolicy::kAlways) {
    std::string error;
    auto journal = Journal::Open(dir_, "test", policy, header, &error);
    EXPECT_TRUE(journal) << error;
    return journal;
  }

  struct Segment {
    std::string header;
    std::vector<std::string> records;
  };
  Segment ReadSegment(const Journal& journal, uint64_t number) {
    Segment segment;
    std::string error;
    EXPECT_TRUE(journal.Read(
        number, [&](std::string_view h) { segment.header = h; },
        [&](std::string_view r) { segment.records.emplace_back(r); }, &error))
        << error;
    return segment;
  }
  std::string PathOf(uint64_t number) {
    return dir_ + "/test-" + std::to_string(number) + ".journal";
  }

  testing::TempDir temp_;
  const std::string& dir_ = temp_.path();
};

TEST_F(JournalTest, CommittedRecordsAreReadBackByTheNextRunInOrder) {
  {
    auto journal = Open("first");
    EXPECT_EQ(journal->Current(), 1u);
    EXPECT_TRUE(journal->Leftover().empty());
    journal->Append("one");
    journal->Append("");
    journal->Append(std::string(70000, 'x'));
    std::string error;
    ASSERT_TRUE(journal->Commit(&error)) << error;
    journal->Append("never committed");
  }
  auto journal = Open("second");
  EXPECT_EQ(journal->Current(), 2u);
  ASSERT_EQ(journal->Leftover(), std::vector<uint64_t>{1});
  Segment segment = ReadSegment(*journal, 1);
  EXPECT_EQ(segment.header, "first");
  ASSERT_EQ(segment.records.size(), 3u);
  EXPECT_EQ(segment.records[0], "one");
  EXPECT_EQ(segment.records[1], "");
  EXPECT_EQ(segment.records[2], std::string(70000, 'x'));
}

TEST_F(JournalTest, ATornOrCorruptRecordEndsItsSegment) {
  {
    auto journal = Open();
    for (const char* r : {"alpha", "beta", "gamma"}) journal->Append(r);
    std::string error;
    ASSERT_TRUE(journal->Commit(&error)) << error;
  }
  const uint64_t size = std::filesystem::file_size(PathOf(1));
  // A crash in the middle of the last record's bytes.
  std::filesystem::resize_file(PathOf(1), size - 2);
  auto journal = Open();
  EXPECT_EQ(ReadSegment(*journal, 1).records, (std::vector<std::string>{"alpha", "beta"}));

  // One flipped byte in "beta": its checksum fails, and nothing after it is trusted.
  {
    std::fstream file(PathOf(1), std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(9 + 8 + 5 + 8 + 1));
    file.put('X');
  }
  EXPECT_EQ(ReadSegment(*journal, 1).records, (std::vector<std::string>{"alpha"}));
}

TEST_F(JournalTest, RotateStartsTheNextSegmentAndDropThroughDeletesTheOldOnes) {
  auto journal = Open("a");
  journal->Append("in 1");
  std::string error;
  ASSERT_EQ(journal->Rotate("b", &error), 1u) << error;
  journal->Append("in 2");
  ASSERT_EQ(journal->Rotate("c", &error), 2u) << error;
  journal->Append("in 3");
  ASSERT_TRUE(journal->Commit(&error)) << error;
  EXPECT_EQ(journal->Current(), 3u);
  EXPECT_EQ(ReadSegment(*journal, 1).records, std::vector<std::string>{"in 1"});
  EXPECT_EQ(ReadSegment(*journal, 2).header, "b");

  journal->DropThrough(2);
  EXPECT_FALSE(std::filesystem::exists(PathOf(1)));
  EXPECT_FALSE(std::filesystem::exists(PathOf(2)));
  // Never the segment being written, whatever the number given.
  journal->DropThrough(10);
  EXPECT_EQ(ReadSegment(*journal, 3).records, std::vector<std::string>{"in 3"});
}

TEST_F(JournalTest, OtherFilesInTheDirectoryAreLeftAlone) {
  std::ofstream(dir_ + "/test-x.journal") << "?";
  std::ofstream(dir_ + "/other-4.journal") << "?";
  std::ofstream(dir_ + "/test-7.journal.tmp") << "?";
  auto journal = Open();
  EXPECT_TRUE(journal->Leftover().empty());
  EXPECT_EQ(journal->Current(), 1u);
  journal->DropThrough(100);
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/other-4.journal"));
}

TEST_F(JournalTest, ACommitThatCannotWriteKeepsTheBytesForTheNext) {
  auto journal = Open("h", FsyncPolicy::kNo);
  // A full disk, as far as this process can tell: files may not grow past their size now.
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  std::signal(SIGXFSZ, SIG_IGN);
  rlimit tight = saved;
  tight.rlim_cur = journal->CurrentSize() + 5;  // room for part of the record only
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &tight), 0);
  journal->Append("kept");
  std::string error;
  EXPECT_FALSE(journal->Commit(&error));
  EXPECT_NE(error.find("cannot write"), std::string::npos) << error;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &saved), 0);
  ASSERT_TRUE(journal->Commit(&error)) << error;
  EXPECT_EQ(ReadSegment(*journal, 1).records, std::vector<std::string>{"kept"});
}

TEST(RecordTest, FieldsRoundTripAndAShortRecordFails) {
  std::string bytes;
  RecordWriter(bytes).Int(-5).Text("name").Int(INT64_MAX).Text("");
  RecordReader reader(bytes);
  EXPECT_EQ(reader.Int(), -5);
  EXPECT_EQ(reader.Text(), "name");
  EXPECT_EQ(reader.Int(), INT64_MAX);
  EXPECT_EQ(reader.Text(), "");
  EXPECT_TRUE(reader.AtEnd());
  EXPECT_FALSE(reader.Failed());

  RecordReader truncated(std::string_view(bytes).substr(0, 12));
  truncated.Int();
  EXPECT_EQ(truncated.Text(), "");
  EXPECT_TRUE(truncated.Failed());

  std::string lying;
  RecordWriter(lying).Int(1000);  // a length longer than what follows
  RecordReader liar(lying);
  EXPECT_EQ(liar.Text(), "");
  EXPECT_TRUE(liar.Failed());
}

}  // namespace
}  // namespace trl
