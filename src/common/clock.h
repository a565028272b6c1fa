// Time is injected: everything that reads the time takes a Clock&, so tests run on a fake clock.
#pragma once

#include <chrono>
#include <cstdint>

namespace trl {

// Thread-safe. Wall-clock time in microseconds since the Unix epoch (calendar windows need the
// epoch), and a monotonic reading for measuring durations.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowMicros() const = 0;
  virtual std::chrono::steady_clock::time_point Steady() const = 0;
  int64_t NowMillis() const { return NowMicros() / 1000; }
};

class SystemClock final : public Clock {
 public:
  int64_t NowMicros() const override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  std::chrono::steady_clock::time_point Steady() const override {
    return std::chrono::steady_clock::now();
  }
  static SystemClock& Instance() {
    static SystemClock clock;
    return clock;
  }
};

}  // namespace trl
