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

TEST(BackendHealth, SlowFailuresEjectOnlyInARow) {
  using Failure = BackendHealth::Failure;
  BackendHealth h;
  BackendHealth::TimePoint t{std::chrono::seconds(100)};
  for (int i = 1; i < BackendHealth::kSlowEjectAfter; ++i) {
    h.OnFailure(t, Failure::kSlow);
    EXPECT_TRUE(h.Up()) << i;
  }
  h.OnSuccess();  // the run is broken: counting starts over
  for (int i = 1; i < BackendHealth::kSlowEjectAfter; ++i) h.OnFailure(t, Failure::kSlow);
  EXPECT_TRUE(h.Up());
  EXPECT_EQ(h.ConsecutiveFailures(), BackendHealth::kSlowEjectAfter - 1);
  h.OnFailure(t, Failure::kSlow);
  EXPECT_FALSE(h.Up());
  EXPECT_FALSE(h.Available(t + 999ms));
  EXPECT_TRUE(h.Available(t + 1000ms));
  // Half-open: one slow failure is enough to go back out, with the backoff doubled.
  h.OnFailure(t + 1000ms, Failure::kSlow);
  EXPECT_FALSE(h.Up());
  EXPECT_EQ(h.CurrentBackoff(), 2s);
}

TEST(BackendHealth, HardFailureEjectsAtOnceEvenAfterSlowOnes) {
  BackendHealth h;
  BackendHealth::TimePoint t{std::chrono::seconds(100)};
  h.OnFailure(t, BackendHealth::Failure::kSlow);
  EXPECT_TRUE(h.Up());
  h.OnFailure(t, BackendHealth::Failure::kHard);
  EXPECT_FALSE(h.Up());
  EXPECT_EQ(h.CurrentBackoff(), 1s);
}

}  // namespace
}  // namespace trl
