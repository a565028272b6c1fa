// RFC 3339 date-times in UTC, to and from Unix seconds.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace trl {

// RFC 3339 UTC of Unix seconds: "2026-11-28T13:00:00Z".
std::string FormatRfc3339(int64_t unix_seconds);
// Unix seconds of an RFC 3339 date-time: "2026-11-28T13:00:00Z", "...T14:00:00.250+01:00"
// ('T' and 'Z' in either case, an optional fraction of a second, 'Z' or a +hh:mm/-hh:mm offset;
// years 0000-9999, no leap second). A fraction is dropped, or with `round_up` counts as the next
// second (for exclusive ends). Nullopt for anything else, and for a time outside years
// 0000-9999 in UTC (an offset can move it there), which FormatRfc3339 could not write.
std::optional<int64_t> ParseRfc3339(std::string_view text, bool round_up = false);
// The start (00:00:00 UTC) of the day that holds `unix_seconds`.
int64_t DayStart(int64_t unix_seconds);

}  // namespace trl
