// A clock that only moves when a test advances it. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>

#include "common/clock.h"

namespace trl {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start_micros = 1'700'000'000'000'000) : now_(start_micros) {}
  int64_t NowMicros() const override { return now_.load(); }
  std::chrono::steady_clock::time_point Steady() const override {
    return std::chrono::steady_clock::time_point(std::chrono::microseconds(now_.load()));
  }
  void Advance(std::chrono::microseconds d) { now_ += d.count(); }
  void Set(int64_t micros) { now_ = micros; }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace trl
