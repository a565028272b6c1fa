#include "models/backend_health.h"

#include <gtest/gtest.h>

namespace trl {
namespace {

using namespace std::chrono_literals;

TEST(BackendHealth, StartsUp) {
  BackendHealth h;
  EXPECT_TRUE(h.Up());
  EXPECT_TRUE(h.Available({}));
}

TEST(BackendHealth, FailureEjectsUntilBackoffThenHalfOpen) {
  BackendHealth h;
  BackendHealth::TimePoint t0{std::chrono::seconds(100)};
  h.OnFailure(t0);
  EXPECT_FALSE(h.Up());
  EXPECT_FALSE(h.Available(t0 + 999ms));
  EXPECT_TRUE(h.Available(t0 + 1000ms));
}

TEST(BackendHealth, BackoffDoublesUpToMaxAndResetsOnSuccess) {
  BackendHealth h;
  BackendHealth::TimePoint t{std::chrono::seconds(100)};
  std::chrono::milliseconds expected[] = {1s, 2s, 4s, 8s, 16s, 30s, 30s};
  for (auto want : expected) {
    h.OnFailure(t);
    EXPECT_EQ(h.CurrentBackoff(), want);
    EXPECT_FALSE(h.Available(t + want - 1ms));
    EXPECT_TRUE(h.Available(t + want));
    t += want;
  }
  EXPECT_EQ(h.ConsecutiveFailures(), 7);
  h.OnSuccess();
  EXPECT_TRUE(h.Up());
  EXPECT_EQ(h.ConsecutiveFailures(), 0);
  h.OnFailure(t);
  EXPECT_EQ(h.CurrentBackoff(), 1s);
}

}  // namespace
}  // namespace trl
