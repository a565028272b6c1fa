#include "limits/bucket.h"

#include <limits>

namespace trl {
namespace {

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

// Caps a 128-bit intermediate into int64 (waits this long are "never" in practice).
int64_t Saturate(__int128 value) {
  return value > static_cast<__int128>(kInt64Max) ? kInt64Max : static_cast<int64_t>(value);
}

void ClampToCapacity(const BucketParams& params, BucketLevel& state) {
  if (state.level >= params.capacity) {
    state.level = params.capacity;
    state.frac = 0;
  }
}

}  // namespace

BucketLevel FullLevel(const BucketParams& params, int64_t now_micros) {
  BucketLevel state;
  state.level = params.capacity;
  state.stamp = (params.calendar && params.period_micros > 0)
                    ? FloorDiv(now_micros, params.period_micros) * params.period_micros
                    : now_micros;
  return state;
}

void Refresh(const BucketParams& params, int64_t now_micros, BucketLevel& state) {
  if (params.period_micros <= 0) {
    ClampToCapacity(params, state);
    return;
  }
  if (params.calendar) {
    int64_t window = FloorDiv(now_micros, params.period_micros) * params.period_micros;
    if (window > state.stamp) {
      state.level = params.capacity;
      state.frac = 0;
      state.stamp = window;
    }
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
  state.level -= amount;
  ClampToCapacity(params, state);
}

int64_t MicrosUntil(const BucketParams& params, const BucketLevel& state, int64_t target,
                    int64_t now_micros) {
  if (state.level >= target) return 0;
  if (params.capacity <= 0 || params.period_micros <= 0) {
    return params.period_micros > 0 ? params.period_micros : 1'000'000;
  }
  if (params.calendar) {
    int64_t window_end = state.stamp + params.period_micros;
    return window_end > now_micros ? window_end - now_micros : 0;
  }
  // Units still missing, in 1/D: (target - level) * D - frac; they accrue at N per microsecond.
  __int128 missing = (static_cast<__int128>(target) - state.level) * params.period_micros -
                     state.frac;
  __int128 wait = (missing + params.capacity - 1) / params.capacity;
  return Saturate(wait);
}

}  // namespace trl
