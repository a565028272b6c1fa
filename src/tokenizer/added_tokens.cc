#include "tokenizer/added_tokens.h"

#include <algorithm>

namespace trl::tok {

void AddedTokens::Add(std::string content, uint32_t id) {
  if (content.empty()) return;
  auto& bucket = by_first_byte_[static_cast<unsigned char>(content[0])];
  const auto at = std::find_if(bucket.begin(), bucket.end(),
                               [&](const Entry& e) { return e.content.size() < content.size(); });
  bucket.insert(at, Entry{std::move(content), id});
  ++count_;
}

const AddedTokens::Entry* AddedTokens::LongestAt(const std::vector<Entry>& bucket,
                                                 std::string_view rest) {
  for (const Entry& e : bucket) {
    if (rest.starts_with(e.content)) return &e;
  }
  return nullptr;
}

}  // namespace trl::tok
