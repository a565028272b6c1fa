// Counting a prompt with a model's own tokenizer on hostile text (tokenizer/tokenizer.h): any
// bytes, invalid UTF-8 included, through the whole pipeline of a byte-level tokenizer.json
// (added tokens, a regex split on PCRE2, BPE merges) and of a SentencePiece-style one
// (Prepend/Replace normalizer, byte fallback); and the BPE merge loop both ways (bpe.h).
//
// Tokens lose nothing and add nothing: a byte-level encoding's tokens spell the text (invalid
// UTF-8 as U+FFFD), a SentencePiece one's spell it with a leading space; Count is the number of
// ids; the scan and the heap merge alike.
#include <fmt/format.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_check.h"
#include "tokenizer/bpe.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace {

namespace json = boost::json;

constexpr std::string_view kSpace = "\xE2\x96\x81";  // ▁
constexpr std::string_view kSplit =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kMerges[][2] = {{"t", "h"},   {"th", "e"},      {" ", "t"}, {" t", "h"},
                                  {" th", "e"}, {"e", "r"},       {"1", "2"}, {"12", "3"},
                                  {" ", " "},   {"\xC3", "\xA9"}, {"<", "|"}};

std::string Write(const json::value& file, const char* name) {
  const auto path = std::filesystem::temp_directory_path() /
                    (std::string("trl_tokenizer_fuzz_") + std::to_string(getpid()) + name);
  std::ofstream(path) << json::serialize(file);
  return path.string();
}

// A byte-level file, and what each id spells.
struct ByteLevel {
  std::unique_ptr<trl::Tokenizer> tokenizer;
  std::vector<std::string> spelled;
};

ByteLevel MakeByteLevel() {
  ByteLevel b;
  json::object vocab;
  const auto add = [&](std::string bytes) {
    vocab[trl::tok::ToByteLevel(bytes)] = b.spelled.size();
    b.spelled.push_back(std::move(bytes));
  };
  for (unsigned c = 0; c < 256; ++c) add(std::string(1, static_cast<char>(c)));
  json::array merges;
  for (const auto& [l, r] : kMerges) {
    add(std::string(l) + r);
    merges.push_back(json::value(trl::tok::ToByteLevel(l) + " " + trl::tok::ToByteLevel(r)));
  }
  json::array added;
  for (const char* content : {"<|eot|>", "<s>"}) {
    added.push_back({{"id", b.spelled.size()}, {"content", content}});
    b.spelled.emplace_back(content);
  }
  const json::object file{
      {"added_tokens", added},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         json::array{
             {{"type", "Split"}, {"pattern", {{"Regex", kSplit}}}, {"behavior", "Isolated"}},
             {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}}},
      {"model", {{"type", "BPE"}, {"ignore_merges", true}, {"vocab", vocab}, {"merges", merges}}}};
  b.tokenizer = trl::LoadTokenizer(Write(file, "_byte_level.json"));
  return b;
}

// A SentencePiece-style file: ids 0-255 are <0xXX>, then these pieces.
const char* const kPieces[] = {"\u2581", "a", "b", "\u2581a", "ab", "<unk>"};

std::unique_ptr<trl::Tokenizer> MakeSentencePiece() {
  json::object vocab;
  for (unsigned c = 0; c < 256; ++c) vocab[fmt::format("<0x{:02X}>", c)] = c;
  for (size_t i = 0; i < std::size(kPieces); ++i) vocab[kPieces[i]] = 256 + i;
  const json::object file{
      {"normalizer",
       {{"type", "Sequence"},
        {"normalizers",
         json::array{{{"type", "Prepend"}, {"prepend", kSpace}},
                     {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpace}}}}}},
      {"pre_tokenizer", nullptr},
      {"model",
       {{"type", "BPE"},
        {"byte_fallback", true},
        {"unk_token", "<unk>"},
        {"vocab", vocab},
        {"merges", json::array{"\xE2\x96\x81 a", "a b"}}}}};
  return trl::LoadTokenizer(Write(file, "_sentencepiece.json"));
}

std::string ReplaceAll(std::string text, std::string_view from, std::string_view to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

void CheckByteLevel(const ByteLevel& b, std::string_view text, const std::string& valid) {
  std::vector<uint32_t> ids;
  b.tokenizer->Encode(text, ids);
  TRL_FUZZ_CHECK(b.tokenizer->Count(text) == ids.size());
  std::string spelled;
  for (const uint32_t id : ids) {
    TRL_FUZZ_CHECK(id < b.spelled.size());
    spelled += b.spelled[id];
  }
  TRL_FUZZ_CHECK(spelled == valid);
}

void CheckSentencePiece(const trl::Tokenizer& t, std::string_view text, const std::string& valid) {
  std::vector<uint32_t> ids;
  t.Encode(text, ids);
  TRL_FUZZ_CHECK(t.Count(text) == ids.size());
  std::string spelled;
  for (const uint32_t id : ids) {
    TRL_FUZZ_CHECK(id < 256 + std::size(kPieces) - 1);  // never <unk>: every byte has a token
    spelled += id < 256 ? std::string(1, static_cast<char>(id)) : kPieces[id - 256];
  }
  const std::string want = valid.empty() ? "" : " " + valid;
  TRL_FUZZ_CHECK(ReplaceAll(spelled, kSpace, " ") == ReplaceAll(want, kSpace, " "));
}

// The merge loop both ways, on the input's bytes as symbols of a model over "abc".
void CheckMerges(std::string_view text) {
  static const trl::tok::BpeModel kModel = [] {
    trl::tok::BpeModel m;
    for (unsigned c = 0; c < 256; ++c) m.AddToken(std::string(1, static_cast<char>(c)), c);
    m.AddToken("ab", 256);
    m.AddToken("bc", 257);
    m.AddToken("abc", 258);
    m.AddMerge('b', 'c', 0, 257);
    m.AddMerge('a', 'b', 1, 256);
    m.AddMerge('a', 257, 2, 258);
    m.AddMerge(256, 'c', 3, 258);
    m.Finish({});
    return m;
  }();
  std::vector<uint32_t> symbols;
  for (const char c : text.substr(0, 512))
    symbols.push_back("abc"[static_cast<unsigned char>(c) % 3]);
  std::vector<uint32_t> by_heap = symbols;
  kModel.MergeByScan(symbols);
  kModel.MergeByHeap(by_heap);
  TRL_FUZZ_CHECK(symbols == by_heap);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const ByteLevel kByteLevel = MakeByteLevel();
  static const std::unique_ptr<trl::Tokenizer> kSentencePiece = MakeSentencePiece();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::string valid = trl::tok::ReplaceInvalidUtf8(text);
  TRL_FUZZ_CHECK(trl::tok::IsValidUtf8(valid));
  TRL_FUZZ_CHECK((valid == text) == trl::tok::IsValidUtf8(text));
  CheckByteLevel(kByteLevel, text, valid);
  CheckSentencePiece(*kSentencePiece, text, valid);
  CheckMerges(text);
  return 0;
}
