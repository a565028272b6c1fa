// Views of the texts of a request or an answer, kept to count their tokens.
#pragma once

#include <boost/container/small_vector.hpp>
#include <string_view>

namespace trl {

// A request or a streamed event has a few texts (one per message or choice): inline, so that
// keeping them costs no allocation per request or per event relayed.
using TextViews = boost::container::small_vector<std::string_view, 8>;

// `raw` without the JSON whitespace after it: simdjson's raw tokens and container texts run up
// to the next token.
inline std::string_view TrimTrailingJsonSpace(std::string_view raw) {
  while (!raw.empty() &&
         (raw.back() == ' ' || raw.back() == '\n' || raw.back() == '\r' || raw.back() == '\t')) {
    raw.remove_suffix(1);
  }
  return raw;
}

}  // namespace trl
