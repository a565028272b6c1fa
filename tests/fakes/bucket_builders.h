// Short builders for one budget of a key as a Store sees it (period in microseconds):
//     Tokens("team-a", 100, 60'000'000), Requests("team-a", 10), Concurrent("team-a", 3).
// A BucketSpec holds string_views of its owner and model: pass strings that outlive it.
#pragma once

#include <cstdint>
#include <string_view>

#include "limits/store.h"

namespace trl::testing {

inline constexpr int64_t kBucketMinute = 60'000'000;  // microseconds

inline BucketSpec Tokens(std::string_view key, int64_t capacity,
                         int64_t period_micros = kBucketMinute, bool calendar = false,
                         std::string_view model = "") {
  return {{ScopeKind::kKey, key, model, LimitKind::kTokens, period_micros, calendar}, capacity};
}
inline BucketSpec Requests(std::string_view key, int64_t capacity,
                           int64_t period_micros = kBucketMinute) {
  return {{ScopeKind::kKey, key, "", LimitKind::kRequests, period_micros, false}, capacity};
}
inline BucketSpec Concurrent(std::string_view key, int64_t capacity) {
  return {{ScopeKind::kKey, key, "", LimitKind::kConcurrent, 0, false}, capacity};
}

}  // namespace trl::testing
