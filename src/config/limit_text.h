// Limits as text, the way the config writes them: a LimitKind's name ("tokens", "requests",
// "concurrent") and a period ("1m"). One vocabulary for the config parser, the key records, the
// embedded store's file and the Redis keys.
//
// Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"

namespace trl {

// "tokens", "requests", "concurrent" or "spend": the key of a limit in the config.
std::string_view LimitKindName(LimitKind kind);
// "tokens", "requests", "concurrency" or "spend": the `limit` label of
// trl_ratelimit_rejections_total.
std::string_view LimitKindLabel(LimitKind kind);
// The inverse of LimitKindName; nullopt for any other text.
std::optional<LimitKind> ParseLimitKind(std::string_view name);

// A period as written in the config: "1m", "1d", "90s", "250ms" (the largest unit that divides
// it exactly). Not FormatDuration, which writes reset headers ("6m0s").
std::string FormatPeriod(std::chrono::milliseconds period);

}  // namespace trl
