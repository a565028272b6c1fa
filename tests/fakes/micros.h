// Times as the limiter's clock reads them (microseconds since the epoch), for tests.
#pragma once

#include <cstdint>

namespace trl::testing {

constexpr int64_t kSecond = 1'000'000;
constexpr int64_t kMinute = 60 * kSecond;
constexpr int64_t kDay = 86'400 * kSecond;
constexpr int64_t kT0 = 1'700'000'000 * kSecond;  // 2023-11-14T22:13:20Z

}  // namespace trl::testing
