#include "limits/wait_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace trl {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;

Admission Refusal(ScopeKind scope, int64_t retry_ms = 3'600'000) {
  Admission a;
  a.outcome = Admission::Outcome::kRefused;
  a.refused_scope = scope;
  a.refused_limit = scope == ScopeKind::kTenant ? "tenant 'acme' 100 tokens per 1m" : "key";
  a.retry_after_ms = retry_ms;
  return a;
}

Admission Admitted() {
  Admission a;
  a.outcome = Admission::Outcome::kAdmitted;
  return a;
}

QueueConfig Queue(milliseconds max_wait, uint32_t max_queued = 100) {
  return {max_wait, max_queued};
}

// Keys a, b and c of tenant acme, queueing on the tenant's queue; budget given out by hand.
class WaitQueueTest : public ::testing::Test {
 protected:
  QueueTicket Ticket(std::string_view key, QueueConfig tenant_queue = Queue(hours(1))) {
    return {key, "acme", {}, tenant_queue};
  }

  // Starts a wait for request `name` of `ticket`; its tries take one of `free_` slots, or are
  // refused by `refused_by`: the tenant's limit when none is free, the key's own always.
  void Spawn(std::string_view name, QueueTicket ticket, ScopeKind refused_by = ScopeKind::kTenant,
             int64_t retry_ms = 3'600'000) {
    // (Captures no std::string: GCC 12 copies a lambda's string capture inside a coroutine
    // byte for byte, pointing it into the frame it was copied from.)
    asio::co_spawn(
        io_,
        [this, name, ticket, refused_by, retry_ms]() -> asio::awaitable<void> {
          WaitResult result = co_await queue_.Wait(
              ticket, Refusal(refused_by, retry_ms),
              [this, name, refused_by]() -> asio::awaitable<Admission> {
                ++tries_;
                // A key's own limit never has room here; the tenant's slots are free_.
                if (refused_by == ScopeKind::kKey || free_ == 0) co_return Refusal(refused_by);
                --free_;
                order_.emplace_back(name);
                co_return Admitted();
              },
              [this, name](std::function<void()> gone) {
                gone_[std::string(name)] = std::move(gone);
              });
          results_[std::string(name)] = std::move(result);
        },
        asio::detached);
  }

  // Gives one slot, tells the queue, and runs what that wakes.
  void FreeOne(std::string_view key = "a") {
    ++free_;
    queue_.Kick(key, "acme");
    io_.poll();
  }

  asio::io_context io_;
  WaitQueue queue_;
  int free_ = 0;
  int tries_ = 0;
  std::vector<std::string> order_;
  std::map<std::string, WaitResult> results_;
  std::map<std::string, std::function<void()>> gone_;
};

TEST_F(WaitQueueTest, KeysOfATenantTakeTurnsAsBudgetComesBack) {
  Spawn("a1", Ticket("a"));
  Spawn("a2", Ticket("a"));
  Spawn("a3", Ticket("a"));
  Spawn("b1", Ticket("b"));
  Spawn("c1", Ticket("c"));
  io_.poll();
  EXPECT_EQ(queue_.Stats().waiting, 5u);
  EXPECT_EQ(tries_, 0);  // nothing tries before the refusal's retry time or a Kick
  for (int i = 0; i < 5; ++i) FreeOne();
  EXPECT_EQ(order_, (std::vector<std::string>{"a1", "b1", "c1", "a2", "a3"}));
  for (const auto& [name, result] : results_) {
    EXPECT_EQ(result.outcome, WaitOutcome::kTried) << name;
    EXPECT_EQ(result.admission.outcome, Admission::Outcome::kAdmitted) << name;
  }
  const WaitQueueStats stats = queue_.Stats();
  EXPECT_EQ(stats.waiting, 0u);
  EXPECT_EQ(stats.admitted, 5u);
}

TEST_F(WaitQueueTest, OneTryPerFreedSlotNotOnePerWaiter) {
  for (const char* name : {"a1", "a2", "b1", "b2"}) Spawn(name, Ticket(name[0] == 'a' ? "a" : "b"));
  io_.poll();
  FreeOne();
  // a1 is admitted; b1's turn follows at once and is refused; a2 and b2 never asked.
  EXPECT_EQ(order_, (std::vector<std::string>{"a1"}));
  EXPECT_EQ(tries_, 2);
}

TEST_F(WaitQueueTest, ALineRefusedByItsKeysOwnLimitStandsAside) {
  Spawn("a1", Ticket("a"), ScopeKind::kKey);
  Spawn("b1", Ticket("b"));
  io_.poll();
  FreeOne();
  // a1 held the turn, its key's own limit refused it: b1 had the slot.
  EXPECT_EQ(order_, (std::vector<std::string>{"b1"}));
  EXPECT_EQ(queue_.Stats().waiting, 1u);
  EXPECT_FALSE(results_.contains("a1"));
}

TEST_F(WaitQueueTest, ATurnParkedOnALineStandingAsideWaitsForNobodyElse) {
  Spawn("a1", Ticket("a"), ScopeKind::kKey);
  io_.poll();
  FreeOne();  // a1 tries, its key's own limit refuses it for an hour: the only line stands aside
  EXPECT_TRUE(order_.empty());
  // b1 comes later, refused by the tenant's limit for a millisecond: it tries then, admitted.
  Spawn("b1", Ticket("b", Queue(std::chrono::seconds(5))), ScopeKind::kTenant, 1);
  while (!results_.contains("b1")) io_.run_one();
  EXPECT_EQ(results_.at("b1").outcome, WaitOutcome::kTried);
  EXPECT_EQ(order_, (std::vector<std::string>{"b1"}));
  EXPECT_EQ(queue_.Stats().waiting, 1u);
}

TEST_F(WaitQueueTest, AWaitRunsOutWithTheLastRefusal) {
  Spawn("a1", Ticket("a", Queue(milliseconds(1))));
  Spawn("a2", Ticket("a", Queue(milliseconds(1))));
  io_.run();
  for (const char* name : {"a1", "a2"}) {
    const WaitResult& result = results_.at(name);
    EXPECT_EQ(result.outcome, WaitOutcome::kTimedOut) << name;
    EXPECT_EQ(result.admission.outcome, Admission::Outcome::kRefused);
    EXPECT_EQ(result.admission.refused_limit, "tenant 'acme' 100 tokens per 1m");
    EXPECT_GE(result.waited, milliseconds(1));
    // Retry-After counts from now, not from when the refusal was told.
    EXPECT_LT(result.admission.retry_after_ms, 3'600'000);
  }
  const WaitQueueStats stats = queue_.Stats();
  EXPECT_EQ(stats.waiting, 0u);
  EXPECT_EQ(stats.timed_out, 2u);
  EXPECT_EQ(tries_, 0);
}

TEST_F(WaitQueueTest, PastMaxQueuedARequestIsRefusedAtOnce) {
  const QueueTicket two_per_key{"a", "acme", Queue(hours(1), 2), {}};
  Spawn("a1", two_per_key);
  Spawn("a2", two_per_key);
  Spawn("a3", two_per_key);
  Spawn("b1", Ticket("b", Queue(hours(1), 3)));  // the tenant's queue holds 3
  Spawn("c1", Ticket("c", Queue(hours(1), 3)));
  io_.poll();
  EXPECT_EQ(results_.at("a3").outcome, WaitOutcome::kFull);
  EXPECT_EQ(results_.at("a3").admission.refused_limit, "tenant 'acme' 100 tokens per 1m");
  EXPECT_EQ(results_.at("c1").outcome, WaitOutcome::kFull);
  EXPECT_EQ(results_.size(), 2u);
  const WaitQueueStats stats = queue_.Stats();
  EXPECT_EQ(stats.waiting, 3u);
  EXPECT_EQ(stats.full, 2u);
}

TEST_F(WaitQueueTest, AClientThatLeavesIsOutAtOnceAndItsTurnPassesOn) {
  Spawn("a1", Ticket("a"));
  Spawn("b1", Ticket("b"));
  io_.poll();
  gone_.at("a1")();  // a1 held the turn
  io_.poll();
  EXPECT_EQ(results_.at("a1").outcome, WaitOutcome::kLeft);
  EXPECT_EQ(queue_.Stats().waiting, 1u);
  FreeOne("b");
  EXPECT_EQ(order_, (std::vector<std::string>{"b1"}));
  EXPECT_EQ(queue_.Stats().left, 1u);
}

TEST_F(WaitQueueTest, WhileTheTenantIsShortNewRequestsQueueBehindItsWaiters) {
  Admission refusal;
  EXPECT_FALSE(queue_.ShouldQueueFirst(Ticket("b"), &refusal));  // nothing waits
  Spawn("a1", Ticket("a"));
  io_.poll();
  ASSERT_TRUE(queue_.ShouldQueueFirst(Ticket("b"), &refusal));
  EXPECT_EQ(refusal.refused_limit, "tenant 'acme' 100 tokens per 1m");
  EXPECT_FALSE(queue_.ShouldQueueFirst({"z", "other", {}, Queue(hours(1))}, &refusal));
  EXPECT_FALSE(queue_.ShouldQueueFirst({"b", "acme", {}, {}}, &refusal));  // no queue
  FreeOne();
  EXPECT_FALSE(queue_.ShouldQueueFirst(Ticket("b"), &refusal));  // the group is gone
}

TEST_F(WaitQueueTest, AKeysOwnRefusalDoesNotHoldBackOtherKeys) {
  Spawn("a1", Ticket("a"), ScopeKind::kKey);
  io_.poll();
  Admission refusal;
  EXPECT_FALSE(queue_.ShouldQueueFirst(Ticket("b"), &refusal));
}

// Waiters on two threads, their tries racing for the slots: each slot admits exactly one.
TEST(WaitQueueThreads, EverySlotAdmitsExactlyOneWaiter) {
  constexpr int kWaiters = 40;
  WaitQueue queue;
  std::atomic<int> free{kWaiters};
  std::atomic<int> admitted{0}, done{0};
  std::mutex mu;
  std::condition_variable all_done;
  asio::io_context io[2];
  for (int i = 0; i < kWaiters; ++i) {
    const QueueTicket ticket{i % 3 == 0 ? "a" : "b", "acme", {}, Queue(hours(1))};
    asio::co_spawn(
        io[i % 2],
        [&, ticket]() -> asio::awaitable<void> {
          co_await queue.Wait(
              ticket, Refusal(ScopeKind::kTenant, 1),
              [&]() -> asio::awaitable<Admission> {
                int n = free.load();
                while (n > 0 && !free.compare_exchange_weak(n, n - 1)) {
                }
                if (n == 0) co_return Refusal(ScopeKind::kTenant, 1);
                admitted.fetch_add(1);
                co_return Admitted();
              },
              [](const std::function<void()>&) {});
          const std::lock_guard lock(mu);
          if (done.fetch_add(1) + 1 == kWaiters) all_done.notify_one();
        },
        asio::detached);
  }
  std::thread threads[2] = {std::thread([&] { io[0].run(); }), std::thread([&] { io[1].run(); })};
  {
    std::unique_lock lock(mu);
    all_done.wait(lock, [&] { return done.load() == kWaiters; });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(admitted.load(), kWaiters);
  EXPECT_EQ(free.load(), 0);
  const WaitQueueStats stats = queue.Stats();
  EXPECT_EQ(stats.waiting, 0u);
  EXPECT_EQ(stats.admitted, static_cast<uint64_t>(kWaiters));
}

}  // namespace
}  // namespace trl
