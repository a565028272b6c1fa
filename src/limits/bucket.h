// The arithmetic of one budget (a token bucket or a calendar window), as pure functions on a
// small value type. Every store implementation keeps a BucketLevel per budget and applies these
// rules; the Limiter uses them to turn a stored level into header values and retry times.
//
// Units: amounts are whole tokens or requests (int64); times are microseconds since the Unix
// epoch. Rolling buckets refill at capacity/period per microsecond and are exact: the part of a
// unit that has accrued but is not yet whole is kept in `frac` (numerator over period_micros),
// so no refill is ever lost or gained to rounding, however often the bucket is touched.
// Rounding, where it has to happen: levels are reported as whole units (floor, since `frac` is
// never counted), waits are rounded up (to the microsecond, then CeilMillis to the millisecond),
// so a client that waits the advertised time is admitted.
//
// Thread-safety: pure functions; callers serialize access to a BucketLevel.
#pragma once

#include <cstdint>

#include "config/config.h"

namespace trl {

// What a budget is, as far as arithmetic goes (the identity lives in store.h's BucketRef).
struct BucketParams {
  LimitKind kind = LimitKind::kTokens;
  int64_t capacity = 0;       // N
  int64_t period_micros = 0;  // D (0 for kConcurrent)
  bool calendar = false;      // fixed windows aligned to multiples of D since the epoch
};

// The stored state of a kTokens/kRequests budget.
struct BucketLevel {
  int64_t level = 0;  // whole units available; negative = debt (settlement charged more)
  int64_t frac = 0;   // rolling only: accrued fraction of a unit, numerator over period_micros,
                      // in [0, period_micros); always 0 when level >= capacity
  int64_t stamp = 0;  // rolling: time of the last refill; calendar: start of the current window

  bool operator==(const BucketLevel&) const = default;
};

// A budget as it is before anything is charged: full, stamped at `now` (calendar: at the start
// of the window that contains `now`).
BucketLevel FullLevel(const BucketParams& params, int64_t now_micros);

// Brings `state` up to `now`: refills a rolling bucket (never above capacity), starts a new
// calendar window full (forgiving debt: each window starts full), and clamps the level to the
// current capacity (a limit whose capacity was lowered keeps its bucket). A `now` earlier than
// the stamp (another thread read the clock a moment before us, or the clock stepped back)
// changes nothing but the clamp.
void Refresh(const BucketParams& params, int64_t now_micros, BucketLevel& state);

// Charges `amount` (negative refunds). The level may go negative (debt); a refund never lifts it
// above capacity.
void Spend(const BucketParams& params, int64_t amount, BucketLevel& state);

// Microseconds from `now` until a bucket already Refresh()ed to `now` holds at least `target`
// whole units (0 if it already does). Rolling: rounded up to the microsecond. Calendar: the time
// to the next window start. `target` must be <= capacity; a capacity of 0 never refills and
// answers one period (or one second if the period is 0).
int64_t MicrosUntil(const BucketParams& params, const BucketLevel& state, int64_t target,
                    int64_t now_micros);

// Whole milliseconds, rounded up.
inline int64_t CeilMillis(int64_t micros) {
  return micros <= 0 ? 0 : (micros / 1000) + (micros % 1000 != 0 ? 1 : 0);
}

// floor(a / b) for b > 0, also for negative a.
inline int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

}  // namespace trl
