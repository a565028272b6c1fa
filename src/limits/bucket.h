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
// A change of a limit's value keeps what was used: the level moves by the change of capacity
// (a daily quota lowered from 100000 to 100 after 43 tokens were used has 57 left, and one raised
// mid-day does not hand out a new day). A calendar window starts with the capacity minus any
// debt the windows before it left unpaid (a settlement that cost more than was reserved is
// never forgiven by the turn of a window).
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
  // Rolling: accrued fraction of a unit, numerator over period_micros, in [0, period_micros).
  // Calendar: the part of this window's budget that went to paying the debt of the windows
  // before it, in [0, capacity]: what a refund for an ended window may still give back.
  // Always 0 when level >= capacity.
  int64_t frac = 0;
  int64_t stamp = 0;     // rolling: time of the last refill; calendar: start of the current window
  int64_t capacity = 0;  // the capacity `level` was measured against (see Refresh)

  bool operator==(const BucketLevel&) const = default;
};

// A budget as it is before anything is charged: full, stamped at `now` (calendar: at the start
// of the window that contains `now`).
BucketLevel FullLevel(const BucketParams& params, int64_t now_micros);

// Brings `state` up to `now`: moves the level by a change of capacity (what was used stays
// used), refills a rolling bucket (never above capacity), and starts a new calendar window
// with the capacity minus the debt carried over (k windows later: min(capacity,
// min(level, 0) + k * capacity)). A `now` earlier than the stamp (another thread read the clock
// a moment before us, or the clock stepped back) changes nothing but the capacity.
void Refresh(const BucketParams& params, int64_t now_micros, BucketLevel& state);

// Charges `amount` (negative refunds). The level may go negative (debt); a refund never lifts it
// above capacity.
void Spend(const BucketParams& params, int64_t amount, BucketLevel& state);

// A settlement's correction of a bucket already Refresh()ed to now: `delta` = real cost -
// reservation, for a reservation charged in the calendar window starting at `admitted_stamp`
// (rolling buckets: ignored). An extra charge, and any refund to a rolling bucket or to the
// window it was charged in, is Spend(delta). A refund for a window that has ended gives back
// only what the current window paid towards that debt (`frac`): the new window would have
// started that much fuller had the refund come in time.
void SettleDelta(const BucketParams& params, int64_t delta, int64_t admitted_stamp,
                 BucketLevel& state);

// Microseconds from `now` until a bucket already Refresh()ed to `now` holds at least `target`
// whole units (0 if it already does). Rolling: rounded up to the microsecond. Calendar: the time
// to the start of the first window that holds `target` (later than the next one for a debt
// larger than a window's budget). `target` must be <= capacity; a capacity of 0 never refills and
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
