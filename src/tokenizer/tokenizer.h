// Exact token counts with a model's own tokenizer (a model's `tokenizer` setting, config.h):
//  - a Hugging Face `tokenizer.json` with a BPE model: byte-level ones (GPT-2, Llama 3: a regex
//    `Split` and `ByteLevel`; Qwen 2's has an NFC normalizer, refused) and SentencePiece-style ones
//    (Llama 2, Mistral: `Prepend`/`Replace` normalizers or `Metaspace`, `byte_fallback`), with
//    their added and special tokens;
//  - a tiktoken rank file (`tiktoken:PATH`): cl100k_base, o200k_base, r50k_base, p50k_base.
// Anything else in a tokenizer.json is refused when it is loaded, never counted some other way.
//
// What a text encodes to is what the model server's tokenizer gives with add_special_tokens off:
// an added token (e.g. `<|eot_id|>`) written in the text is that token, nothing is added around
// the text. A tiktoken encoding counts ordinary text (encode_ordinary). Bytes that are not UTF-8
// are first decoded as a WHATWG decoder does (each maximal invalid subpart is U+FFFD).
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

namespace trl {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Appends the ids of `text` (any bytes) to `ids`. Thread-safe.
  void Encode(std::string_view text, std::vector<uint32_t>& ids) const;
  // The number of ids Encode appends. Thread-safe.
  size_t Count(std::string_view text) const;

 private:
  // Encode, once invalid UTF-8 is replaced: `text` is valid UTF-8.
  virtual void EncodeUtf8(std::string_view text, std::vector<uint32_t>& ids) const = 0;
};

// Loads `spec`: a tokenizer.json path, or "tiktoken:" and a rank file's path. Throws
// std::runtime_error whose message names the file and what is wrong with it.
std::unique_ptr<Tokenizer> LoadTokenizer(std::string_view spec);

}  // namespace trl
