#include "tokenizer/tiktoken_file.h"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "tokenizer/bpe.h"
#include "tokenizer/regex_split.h"

namespace trl::tok {

namespace {

// The split expressions of tiktoken's encodings (tiktoken_ext/openai_public.py), by rank count.
struct Encoding {
  size_t ranks;
  std::string_view name;
  std::string_view pattern;
};
constexpr std::string_view kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr Encoding kEncodings[] = {
    {50256, "r50k_base", kGpt2},
    {50280, "p50k_base", kGpt2},
    {100256, "cl100k_base",
     R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"},
    {199998, "o200k_base",
     R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)"},
};

class TiktokenTokenizer final : public Tokenizer {
 public:
  explicit TiktokenTokenizer(std::string_view pattern) : split_(pattern) {}

  BpeModel model;

 private:
  void EncodeUtf8(std::string_view text, std::vector<uint32_t>& ids) const override {
    split_.Split(text, [&](std::string_view piece) { model.Encode(piece, ids); });
  }

  RegexSplit split_;
};

std::optional<std::string> Base64Decode(std::string_view in) {
  if (in.empty() || in.size() % 4 != 0) return std::nullopt;
  std::string out(in.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  if (n < 0) return std::nullopt;
  size_t padding = 0;
  for (size_t i = in.size(); i > 0 && in[i - 1] == '='; --i) ++padding;
  out.resize(static_cast<size_t>(n) - padding);
  return out;
}

// The file's tokens, indexed by rank.
std::vector<std::string> ReadRanks(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument("cannot open it");
  std::vector<std::string> tokens;
  std::string line;
  for (size_t number = 1; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    const size_t space = line.find(' ');
    auto token = space == std::string::npos ? std::nullopt
                                            : Base64Decode(std::string_view(line).substr(0, space));
    size_t rank = 0;
    const std::string_view digits =
        std::string_view(line).substr(space == std::string::npos ? 0 : space + 1);
    const auto parsed = std::from_chars(digits.data(), digits.data() + digits.size(), rank);
    if (!token || parsed.ec != std::errc() || parsed.ptr != digits.data() + digits.size() ||
        rank > 10'000'000) {
      throw std::invalid_argument(fmt::format("line {} is not \"base64 rank\"", number));
    }
    if (rank >= tokens.size()) tokens.resize(rank + 1);
    tokens[rank] = std::move(*token);
  }
  return tokens;
}

}  // namespace

std::unique_ptr<Tokenizer> LoadTiktoken(const std::string& path) {
  try {
    const std::vector<std::string> tokens = ReadRanks(path);
    const Encoding* encoding = nullptr;
    for (const Encoding& e : kEncodings) {
      if (e.ranks == tokens.size()) encoding = &e;
    }
    if (encoding == nullptr) {
      throw std::invalid_argument(fmt::format(
          "{} ranks match no known encoding (r50k_base 50256, p50k_base 50280, cl100k_base "
          "100256, o200k_base 199998)",
          tokens.size()));
    }
    auto tokenizer = std::make_unique<TiktokenTokenizer>(encoding->pattern);
    BpeModel& model = tokenizer->model;
    for (size_t rank = 0; rank < tokens.size(); ++rank) {
      if (!tokens[rank].empty()) model.AddToken(tokens[rank], static_cast<uint32_t>(rank));
    }
    // Each way to cut a token in two known tokens merges into it, at its rank.
    for (size_t rank = 0; rank < tokens.size(); ++rank) {
      const std::string_view t = tokens[rank];
      for (size_t cut = 1; cut < t.size(); ++cut) {
        const auto left = model.Find(t.substr(0, cut));
        const auto right = left ? model.Find(t.substr(cut)) : std::nullopt;
        if (right)
          model.AddMerge(*left, *right, static_cast<uint32_t>(rank), static_cast<uint32_t>(rank));
      }
    }
    BpeModel::Options options;
    options.ignore_merges = true;
    if (const std::string missing = model.Finish(options); !missing.empty()) {
      throw std::invalid_argument(missing);
    }
    return tokenizer;
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(fmt::format("{}: {}", path, e.what()));
  }
}

}  // namespace trl::tok
