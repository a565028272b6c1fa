// Arithmetic on token counts that a hostile request can inflate (a million media parts, n times
// many prompts times a cap): clamped to a bound instead of overflowing.
#pragma once

#include <cstdint>

namespace trl {

// a * b for non-negative a and b, clamped to `limit`.
inline int64_t ClampedMul(int64_t a, int64_t b, int64_t limit) {
  int64_t product;
  if (__builtin_mul_overflow(a, b, &product) || product > limit) return limit;
  return product;
}

// a + b for non-negative a and b, clamped to `limit`.
inline int64_t ClampedAdd(int64_t a, int64_t b, int64_t limit) {
  int64_t sum;
  if (__builtin_add_overflow(a, b, &sum) || sum > limit) return limit;
  return sum;
}

}  // namespace trl
