// Test-only helpers shared by the usage sink tests: a fixed hour to write at, a retention that
// keeps it, and synchronous Write/Query. (Redis servers and clients: tests/fakes/redis_server.h.)
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fakes/run_awaitable.h"
#include "usage/usage.h"

namespace trl::usage_testing {

inline constexpr int64_t kH0 = 1'795'867'200;  // 2026-11-28T12:00:00Z
// Long enough that rows written for 2026 do not expire while the tests run.
inline constexpr Millis kRetention = std::chrono::hours(24 * 365 * 20);

// Sets *error (when given) on failure; the caller decides whether failure is expected.
inline bool WriteRows(UsageSink& sink, const std::vector<UsageRow>& rows,
                      std::string* error = nullptr) {
  std::string ignored;
  return RunAwaitable(sink.Write(rows, error ? error : &ignored));
}

inline UsageResult QueryRange(UsageSink& sink, int64_t from, int64_t to,
                              UsageGranularity granularity = UsageGranularity::kHour) {
  UsageQuery q;
  q.from = from;
  q.to = to;
  q.granularity = granularity;
  return RunAwaitable(sink.Query(q));
}

// The hour kH0 with each end user's rows apart (group_by key, tenant, model and user); with
// `user`, that user's rows only ("" = the rows without one).
inline UsageResult QueryUsers(UsageSink& sink, std::optional<std::string> user = std::nullopt) {
  UsageQuery q;
  q.from = kH0;
  q.to = kH0 + kSecondsPerHour;
  q.group_by.user = true;
  q.user = std::move(user);
  return RunAwaitable(sink.Query(q));
}

}  // namespace trl::usage_testing
