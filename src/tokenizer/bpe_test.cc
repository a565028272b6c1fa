#include "tokenizer/bpe.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <random>

namespace trl::tok {
namespace {

// A byte-level model over "abc": single bytes, then merges that make "ab", "bc", "abc", "cc".
BpeModel SmallModel(bool ignore_merges) {
  BpeModel m;
  for (unsigned b = 0; b < 256; ++b) m.AddToken(std::string(1, static_cast<char>(b)), b);
  m.AddToken("ab", 256);
  m.AddToken("bc", 257);
  m.AddToken("abc", 258);
  m.AddToken("cc", 259);
  m.AddToken("ca", 260);
  m.AddMerge('b', 'c', 0, 257);
  m.AddMerge('a', 'b', 1, 256);
  m.AddMerge('a', 257, 2, 258);
  m.AddMerge('c', 'c', 3, 259);
  m.AddMerge('c', 'a', 4, 260);
  BpeModel::Options options;
  options.ignore_merges = ignore_merges;
  EXPECT_EQ(m.Finish(options), "");
  return m;
}

std::vector<uint32_t> Encode(const BpeModel& m, std::string_view text) {
  std::vector<uint32_t> ids;
  m.Encode(text, ids);
  return ids;
}

TEST(BpeTest, MergesTheLowestRankFirstAndTheLeftmostOfEqualRanks) {
  const BpeModel m = SmallModel(false);
  EXPECT_EQ(Encode(m, "abc"), (std::vector<uint32_t>{258}));  // bc, then a+bc
  EXPECT_EQ(Encode(m, "abab"), (std::vector<uint32_t>{256, 256}));
  EXPECT_EQ(Encode(m, "ccc"), (std::vector<uint32_t>{259, 'c'}));  // the left pair first
  EXPECT_EQ(Encode(m, "cab"), (std::vector<uint32_t>{'c', 256}));  // ab (1) before ca (4)
  EXPECT_EQ(Encode(m, "xyz"), (std::vector<uint32_t>{'x', 'y', 'z'}));
  EXPECT_EQ(Encode(m, ""), std::vector<uint32_t>{});
}

TEST(BpeTest, IgnoreMergesTakesAWholeTokenAsItIs) {
  BpeModel m = SmallModel(false);
  m.AddToken("cab", 261);  // no merge makes it
  EXPECT_EQ(Encode(m, "cab"), (std::vector<uint32_t>{'c', 256}));
  BpeModel::Options options;
  options.ignore_merges = true;
  ASSERT_EQ(m.Finish(options), "");
  EXPECT_EQ(Encode(m, "cab"), (std::vector<uint32_t>{261}));
}

// The scan (short pieces) and the heap (long ones) are the same algorithm.
TEST(BpeTest, ScanAndHeapMergeAlike) {
  const BpeModel m = SmallModel(false);
  std::mt19937 random(7);
  for (int round = 0; round < 2000; ++round) {
    std::vector<uint32_t> symbols(random() % 60);
    for (auto& s : symbols) s = "abcx"[random() % 4];
    std::vector<uint32_t> by_scan = symbols;
    std::vector<uint32_t> by_heap = symbols;
    m.MergeByScan(by_scan);
    m.MergeByHeap(by_heap);
    ASSERT_EQ(by_scan, by_heap) << "round " << round;
  }
}

TEST(BpeTest, CharacterModelsFallBackToBytesOrTheUnknownToken) {
  BpeModel m;
  m.AddToken("<unk>", 0);
  m.AddToken("a", 1);
  m.AddToken("\xC3\xA9", 2);  // é
  BpeModel::Options options;
  options.symbols = BpeModel::Symbols::kCharacters;
  options.unk = 0;
  options.fuse_unk = true;
  ASSERT_EQ(m.Finish(options), "");
  EXPECT_EQ(Encode(m,
                   "a\xC3\xA9zz\xE4\xB8\xAD"
                   "a"),
            (std::vector<uint32_t>{1, 2, 0, 1}));
  for (unsigned b = 0; b < 256; ++b) m.AddToken(fmt::format("<0x{:02X}>", b), 10 + b);
  options.byte_fallback = true;
  ASSERT_EQ(m.Finish(options), "");
  EXPECT_EQ(Encode(m, "az"), (std::vector<uint32_t>{1, 10 + 'z'}));
  EXPECT_EQ(Encode(m, "\xE4\xB8\xAD"), (std::vector<uint32_t>{10 + 0xE4, 10 + 0xB8, 10 + 0xAD}));
}

TEST(BpeTest, AModelThatCannotEncodeEveryTextIsRefused) {
  BpeModel m;
  m.AddToken("a", 0);
  EXPECT_EQ(m.Finish({}), "the vocabulary has no token for the byte 0x00");
  BpeModel::Options options;
  options.symbols = BpeModel::Symbols::kCharacters;
  EXPECT_EQ(m.Finish(options),
            "a character outside the vocabulary has no token (no unk_token and no byte_fallback)");
}

}  // namespace
}  // namespace trl::tok
