// Views of the texts of a request or an answer, kept to count their tokens.
#pragma once

#include <string_view>

#include <boost/container/small_vector.hpp>

namespace trl {

// A request or a streamed event has a few texts (one per message or choice): inline, so that
// keeping them costs no allocation per request or per event relayed.
using TextViews = boost::container::small_vector<std::string_view, 8>;

}  // namespace trl
