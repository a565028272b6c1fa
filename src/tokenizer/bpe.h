// Byte-pair encoding of one pre-tokenized piece: the model half of a tokenizer. Both kinds of
// vocabulary come down to this one algorithm:
//  - Hugging Face `tokenizer.json` BPE: the piece starts as single bytes (byte-level models,
//    GPT-2 / Llama 3 / Qwen) or single characters (SentencePiece-style models, Llama 2 / Mistral,
//    with `<0xXX>` byte tokens for characters outside the vocabulary); then the adjacent pair of
//    the lowest rank in `merges` is merged, the leftmost one first, until no pair has a rank;
//  - tiktoken rank files: the same with every split of each token into two tokens as a merge,
//    ranked by the merged token's rank (what tiktoken's byte_pair_merge does).
// With `ignore_merges` (Llama 3, and tiktoken always), a piece that is itself a token is that
// token, merges or not.
#pragma once

#include <array>
#include <boost/unordered/unordered_flat_map.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace trl::tok {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const;
};

class BpeModel {
 public:
  enum class Symbols {
    kBytes,       // the piece starts as single bytes, each a token of the vocabulary
    kCharacters,  // as single UTF-8 characters; one outside the vocabulary is byte_fallback's
                  // <0xXX> tokens, else the unknown token
  };
  struct Options {
    Symbols symbols = Symbols::kBytes;
    bool ignore_merges = false;
    bool byte_fallback = false;
    std::optional<uint32_t> unk;  // kCharacters: the id of unk_token, if any
    bool fuse_unk = false;        // consecutive unknown characters make one unknown token
  };

  // Adds a token of the vocabulary (its bytes). A repeated token keeps its first id.
  void AddToken(std::string_view bytes, uint32_t id);
  std::optional<uint32_t> Find(std::string_view bytes) const;
  // Ranks the merge of `left` and `right` into `merged`; a later merge of the same pair wins
  // (as in Hugging Face's tokenizers and transformers.js).
  void AddMerge(uint32_t left, uint32_t right, uint32_t rank, uint32_t merged);
  // Checks what Symbols need of the vocabulary; an empty string when the model can encode every
  // text, else what is missing.
  std::string Finish(const Options& options);

  // Appends the ids of `piece` (valid UTF-8 for kCharacters).
  void Encode(std::string_view piece, std::vector<uint32_t>& ids) const;

  size_t VocabularySize() const { return ids_.size(); }

  // The merge loop, both ways (tests prove them equal): a scan for the lowest-ranked pair, for
  // the short pieces most are, and a heap over a linked list for long ones.
  void MergeByScan(std::vector<uint32_t>& symbols) const;
  void MergeByHeap(std::vector<uint32_t>& symbols) const;

 private:
  struct Merge {
    uint32_t rank;
    uint32_t merged;
  };
  static uint64_t PairKey(uint32_t left, uint32_t right) { return (uint64_t{left} << 32) | right; }
  const Merge* FindMerge(uint32_t left, uint32_t right) const;
  void InitialSymbols(std::string_view piece, std::vector<uint32_t>& symbols) const;

  Options options_;
  boost::unordered_flat_map<std::string, uint32_t, StringHash, std::equal_to<>> ids_;
  boost::unordered_flat_map<uint64_t, Merge> merges_;
  std::array<uint32_t, 256> byte_ids_{};  // kBytes: each byte's token; kCharacters: <0xXX>
};

}  // namespace trl::tok
