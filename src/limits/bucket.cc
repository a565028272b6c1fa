#include "limits/bucket.h"

#include <algorithm>
#include <limits>

namespace trl {
namespace {

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

// Caps a 128-bit intermediate into int64 (waits this long are "never" in practice).
int64_t Saturate(__int128 value) {
  return value > static_cast<__int128>(kInt64Max) ? kInt64Max : static_cast<int64_t>(value);
}

// Into int64 from both sides.
int64_t Clamp64(__int128 value) {
  if (value > static_cast<__int128>(kInt64Max)) return kInt64Max;
  if (value < -static_cast<__int128>(kInt64Max)) return -kInt64Max;
  return static_cast<int64_t>(value);
}

void ClampToCapacity(const BucketParams& params, BucketLevel& state) {
  if (state.level >= params.capacity) {
    state.level = params.capacity;
    state.frac = 0;
  }
}

// A changed limit value keeps the amount used: the level moves with the capacity.
void Rescale(const BucketParams& params, BucketLevel& state) {
  if (state.capacity == params.capacity) return;
  state.level = Clamp64(static_cast<__int128>(state.level) + params.capacity - state.capacity);
  state.capacity = params.capacity;
  if (params.calendar)
    state.frac = std::clamp<int64_t>(state.frac, 0, std::max<int64_t>(params.capacity, 0));
}

// Turns a calendar bucket over to the window that contains `now`, carrying its debt.
void NextWindow(const BucketParams& params, int64_t now_micros, BucketLevel& state) {
  const int64_t window = FloorDiv(now_micros, params.period_micros) * params.period_micros;
  if (window <= state.stamp) return;
  const __int128 windows =
      (static_cast<__int128>(window) - state.stamp + params.period_micros - 1) /
      params.period_micros;
  const __int128 start = std::min<__int128>(state.level, 0) + windows * params.capacity;
  state.level = start >= params.capacity ? params.capacity : Clamp64(start);
  state.frac = params.capacity - state.level;
  state.stamp = window;
}

}  // namespace

BucketLevel FullLevel(const BucketParams& params, int64_t now_micros) {
  BucketLevel state;
  state.level = params.capacity;
  state.capacity = params.capacity;
  state.stamp = (params.calendar && params.period_micros > 0)
                    ? FloorDiv(now_micros, params.period_micros) * params.period_micros
                    : now_micros;
  return state;
}

void Refresh(const BucketParams& params, int64_t now_micros, BucketLevel& state) {
  Rescale(params, state);
  if (params.period_micros <= 0) {
    ClampToCapacity(params, state);
    return;
  }
  if (params.calendar) {
    NextWindow(params, now_micros, state);
    ClampToCapacity(params, state);
    return;
  }
  if (now_micros > state.stamp) {
    if (state.level < params.capacity) {
      // frac + N*dt in units of 1/D: 128 bits, since N*dt overflows int64 for large N or dt.
      __int128 total = static_cast<__int128>(state.frac) +
                       static_cast<__int128>(params.capacity) * (now_micros - state.stamp);
      __int128 whole = total / params.period_micros;
      if (whole >= static_cast<__int128>(params.capacity) - state.level) {
        state.level = params.capacity;
        state.frac = 0;
      } else {
        state.level += static_cast<int64_t>(whole);
        state.frac = static_cast<int64_t>(total % params.period_micros);
      }
    }
    state.stamp = now_micros;
  }
  ClampToCapacity(params, state);
}

void Spend(const BucketParams& params, int64_t amount, BucketLevel& state) {
  state.level = Clamp64(static_cast<__int128>(state.level) - amount);
  ClampToCapacity(params, state);
}

void SettleDelta(const BucketParams& params, int64_t delta, int64_t admitted_stamp,
                 BucketLevel& state) {
  if (delta >= 0 || !params.calendar || state.stamp == admitted_stamp) {
    Spend(params, delta, state);
    return;
  }
  const int64_t back = std::min(-delta, state.frac);
  state.frac -= back;
  Spend(params, -back, state);
}

int64_t MicrosUntil(const BucketParams& params, const BucketLevel& state, int64_t target,
                    int64_t now_micros) {
  if (state.level >= target) return 0;
  if (params.capacity <= 0 || params.period_micros <= 0) {
    return params.period_micros > 0 ? params.period_micros : 1'000'000;
  }
  if (params.calendar) {
    // Window k (1 = the next) starts with min(capacity, min(level, 0) + k * capacity).
    const __int128 missing = static_cast<__int128>(target) - std::min<int64_t>(state.level, 0);
    const __int128 windows =
        std::max<__int128>(1, (missing + params.capacity - 1) / params.capacity);
    const __int128 start = static_cast<__int128>(state.stamp) + windows * params.period_micros;
    return start > now_micros ? Saturate(start - now_micros) : 0;
  }
  // Units still missing, in 1/D: (target - level) * D - frac; they accrue at N per microsecond.
  __int128 missing =
      (static_cast<__int128>(target) - state.level) * params.period_micros - state.frac;
  __int128 wait = (missing + params.capacity - 1) / params.capacity;
  return Saturate(wait);
}

}  // namespace trl
