#include "tokenizer/tokenizer.h"

#include <string>

#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/tiktoken_file.h"
#include "tokenizer/utf8.h"

namespace trl {

void Tokenizer::Encode(std::string_view text, std::vector<uint32_t>& ids) const {
  if (tok::IsValidUtf8(text)) {
    EncodeUtf8(text, ids);
  } else {
    EncodeUtf8(tok::ReplaceInvalidUtf8(text), ids);
  }
}

size_t Tokenizer::Count(std::string_view text) const {
  thread_local std::vector<uint32_t> ids;
  ids.clear();
  Encode(text, ids);
  return ids.size();
}

std::unique_ptr<Tokenizer> LoadTokenizer(std::string_view spec) {
  constexpr std::string_view kTiktoken = "tiktoken:";
  if (spec.starts_with(kTiktoken))
    return tok::LoadTiktoken(std::string(spec.substr(kTiktoken.size())));
  return tok::LoadHuggingFace(std::string(spec));
}

}  // namespace trl
