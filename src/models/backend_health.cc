#include "models/backend_health.h"

#include <algorithm>

namespace trl {

void BackendHealth::OnFailure(TimePoint now, Failure kind) {
  ++failures_;
  if (!ejected_ && kind == Failure::kSlow && ++slow_failures_ < kSlowEjectAfter) return;
  slow_failures_ = 0;
  if (ejected_) {
    backoff_ = std::min(backoff_ * 2, kMaxBackoff);
  }
  ejected_ = true;
  retry_at_ = now + backoff_;
}

void BackendHealth::OnSuccess() {
  ejected_ = false;
  failures_ = 0;
  slow_failures_ = 0;
  backoff_ = kFirstBackoff;
}

}  // namespace trl
