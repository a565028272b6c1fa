// The health of one backend: up, or ejected until a retry time that backs off exponentially.
// A pure state machine (times are passed in), so it is tested without sockets or sleeps.
// Not thread-safe by itself: Backend guards it.
#pragma once

#include <chrono>
#include <cstdint>

namespace trl {

class BackendHealth {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  static constexpr std::chrono::milliseconds kFirstBackoff{1000};
  static constexpr std::chrono::milliseconds kMaxBackoff{30'000};

  // How sure a failure is that the backend is gone.
  enum class Failure : uint8_t {
    kHard,  // refused, reset, garbage: eject at once
    kSlow,  // a health probe that got no answer in time: a busy backend looks like this, so
            // only kSlowEjectAfter in a row eject it (one late probe under load must not take
            // the only replica of a model out of rotation)
  };
  static constexpr int kSlowEjectAfter = 3;

  // A request or probe failed: eject until now + backoff (doubling the backoff for the next
  // failure), unless it is a slow failure of an up backend below kSlowEjectAfter in a row.
  void OnFailure(TimePoint now, Failure kind = Failure::kHard);
  // A request or probe succeeded: back in service, backoff reset.
  void OnSuccess();
  // May traffic go there now? True while up; once ejected, true again from the retry time on
  // (half-open: the next outcome decides).
  bool Available(TimePoint now) const { return !ejected_ || now >= retry_at_; }
  bool Up() const { return !ejected_; }
  std::chrono::milliseconds CurrentBackoff() const { return backoff_; }
  int ConsecutiveFailures() const { return failures_; }

 private:
  bool ejected_ = false;
  int failures_ = 0;
  int slow_failures_ = 0;  // slow failures in a row while up
  TimePoint retry_at_{};
  std::chrono::milliseconds backoff_{kFirstBackoff};
};

}  // namespace trl
