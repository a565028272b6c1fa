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

  // A request or probe failed to connect or got garbage: eject until now + backoff, and double
  // the backoff for the next failure.
  void OnFailure(TimePoint now);
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
  TimePoint retry_at_{};
  std::chrono::milliseconds backoff_{kFirstBackoff};
};

}  // namespace trl
