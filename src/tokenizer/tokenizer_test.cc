#include "tokenizer/tokenizer.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>

#include "tokenizer/byte_level.h"

namespace trl {
namespace {

namespace json = boost::json;

// Single bytes in GPT-2's ByteLevel alphabet (byte_level.h), and merges: ' ' is "Ġ".
json::object ByteLevelFile() {
  json::object vocab;
  for (int b = 0; b < 256; ++b) vocab[tok::ToByteLevel(std::string(1, static_cast<char>(b)))] = b;
  vocab["he"] = 256;
  vocab["hel"] = 257;
  vocab["\xC4\xA0h"] = 258;  // " h"
  return json::object{
      {"version", "1.0"},
      {"added_tokens", json::array{json::object{{"id", 300},
                                                {"content", "<|end|>"},
                                                {"single_word", false},
                                                {"lstrip", false},
                                                {"rstrip", false},
                                                {"normalized", false},
                                                {"special", true}}}},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       json::object{
           {"type", "Sequence"},
           {"pretokenizers", json::array{json::object{{"type", "Split"},
                                                      {"pattern", {{"Regex", R"( ?\p{L}+|\s+|.)"}}},
                                                      {"behavior", "Isolated"},
                                                      {"invert", false}},
                                         json::object{{"type", "ByteLevel"},
                                                      {"add_prefix_space", false},
                                                      {"use_regex", false}}}}}},
      {"model", json::object{{"type", "BPE"},
                             {"dropout", nullptr},
                             {"vocab", vocab},
                             {"merges", json::array{"h e", json::array{"he", "l"}, "Ġ h"}}}}};
}

std::string Write(const json::value& file) {
  static int n = 0;
  const auto path =
      std::filesystem::temp_directory_path() /
      ("trl_tokenizer_test_" + std::to_string(getpid()) + "_" + std::to_string(n++) + ".json");
  std::ofstream(path) << json::serialize(file);
  return path.string();
}

std::vector<uint32_t> Ids(const Tokenizer& t, std::string_view text) {
  std::vector<uint32_t> ids;
  t.Encode(text, ids);
  EXPECT_EQ(t.Count(text), ids.size());
  return ids;
}

TEST(TokenizerTest, EncodesAByteLevelFileWithItsAddedTokens) {
  const auto t = LoadTokenizer(Write(ByteLevelFile()));
  EXPECT_EQ(Ids(*t, "hello"), (std::vector<uint32_t>{257, 'l', 'o'}));
  // " hel" is one piece: h+e (rank 0), he+l (rank 1); " h" (rank 2) never forms.
  EXPECT_EQ(Ids(*t, "a hel<|end|>he"), (std::vector<uint32_t>{'a', ' ', 257, 300, 256}));
  EXPECT_EQ(Ids(*t, " h"), (std::vector<uint32_t>{258}));
  EXPECT_EQ(Ids(*t, "<|end"), (std::vector<uint32_t>{'<', '|', 'e', 'n', 'd'}));
  // Invalid UTF-8 is U+FFFD's three bytes.
  EXPECT_EQ(Ids(*t, "\xFF"), (std::vector<uint32_t>{0xEF, 0xBF, 0xBD}));
}

TEST(TokenizerTest, EncodesASentencePieceStyleFile) {
  json::object vocab{{"<unk>", 0}, {"<s>", 1},           {"\xE2\x96\x81", 2},  {"h", 3},
                     {"i", 4},     {"\xE2\x96\x81h", 5}, {"\xE2\x96\x81hi", 6}};
  for (int b = 0; b < 256; ++b) vocab[fmt::format("<0x{:02X}>", b)] = 10 + b;
  json::object file = ByteLevelFile();
  file["normalizer"] = json::object{
      {"type", "Sequence"},
      {"normalizers", json::array{json::object{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}},
                                  json::object{{"type", "Replace"},
                                               {"pattern", {{"String", " "}}},
                                               {"content", "\xE2\x96\x81"}}}}};
  file["pre_tokenizer"] = nullptr;
  file["added_tokens"] = json::array{json::object{{"id", 1}, {"content", "<s>"}}};
  file["model"] = json::object{{"type", "BPE"},
                               {"byte_fallback", true},
                               {"unk_token", "<unk>"},
                               {"vocab", vocab},
                               {"merges", json::array{"\xE2\x96\x81 h", "\xE2\x96\x81h i"}}};
  const auto t = LoadTokenizer(Write(file));
  // "hi hi" is "▁hi▁hi"; after <s>, the text is prepended a "▁" again (legacy Llama 2).
  EXPECT_EQ(Ids(*t, "hi hi"), (std::vector<uint32_t>{6, 6}));
  EXPECT_EQ(Ids(*t, "<s>hi"), (std::vector<uint32_t>{1, 6}));
  EXPECT_EQ(Ids(*t, "ih!"), (std::vector<uint32_t>{2, 4, 3, 10 + '!'}));
}

void ExpectRefused(json::object file, const std::string& message) {
  const std::string path = Write(file);
  try {
    LoadTokenizer(path);
    ADD_FAILURE() << "loaded; expected: " << message;
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(e.what(), path + ": " + message);
  }
}

TEST(TokenizerTest, RefusesWhatItDoesNotSupport) {
  json::object f = ByteLevelFile();
  f["normalizer"] = json::object{{"type", "NFKC"}};
  ExpectRefused(f, "the normalizer NFKC is not supported");
  f = ByteLevelFile();
  f["model"].as_object()["type"] = "WordPiece";
  ExpectRefused(f, "the model WordPiece is not supported (only BPE)");
  f = ByteLevelFile();
  f["model"].as_object()["dropout"] = 0.1;
  ExpectRefused(f, "BPE dropout is not supported (it makes the count random)");
  f = ByteLevelFile();
  f["added_tokens"].as_array()[0].as_object()["lstrip"] = true;
  ExpectRefused(f, "the added token <|end|> has lstrip, which is not supported");
  f = ByteLevelFile();
  f["pre_tokenizer"] = json::object{{"type", "Digits"}};
  ExpectRefused(f, "the pre-tokenizer Digits is not supported");
  f = ByteLevelFile();
  f["model"].as_object()["merges"].as_array().push_back("x yz");
  ExpectRefused(f, "merges[3] (x yz) names a token outside the vocabulary");
}

TEST(TokenizerTest, NamesAFileItCannotRead) {
  EXPECT_THROW(LoadTokenizer("/nonexistent/tokenizer.json"), std::runtime_error);
  try {
    LoadTokenizer("tiktoken:/nonexistent/cl100k_base.tiktoken");
    ADD_FAILURE();
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "/nonexistent/cl100k_base.tiktoken: cannot open it");
  }
}

TEST(TokenizerTest, RefusesATiktokenFileOfNoKnownEncoding) {
  const auto path = std::filesystem::temp_directory_path() / "trl_tokenizer_test_small.tiktoken";
  std::ofstream(path) << "YQ== 0\nYg== 1\n";
  try {
    LoadTokenizer("tiktoken:" + path.string());
    ADD_FAILURE();
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()),
              path.string() +
                  ": 2 ranks match no known encoding (r50k_base 50256, p50k_base 50280, "
                  "cl100k_base 100256, o200k_base 199998)");
  }
}

}  // namespace
}  // namespace trl
