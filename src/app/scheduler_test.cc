// The scheduler on its own thread: tasks run and are counted by outcome, Run hands work to that
// thread, Stop ends it. The tests wait on what the tasks report (futures), never on time.
#include "app/scheduler.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <stdexcept>

#include "fakes/fake_clock.h"
#include "fakes/metric_value.h"
#include "fakes/run_awaitable.h"

namespace trl {
namespace {

using namespace std::chrono_literals;

// A task that reports its `n`th run through a future, and counts every run.
struct CountingTask {
  explicit CountingTask(int n) : wanted(n) {}
  const int wanted;
  std::atomic<int> runs{0};
  std::promise<std::thread::id> reached;

  // Counts the run, then returns what `outcome` returns (or throws what it throws).
  Scheduler::Task Make(std::function<bool()> outcome) {
    return [this, outcome]() -> asio::awaitable<bool> {
      if (++runs == wanted) reached.set_value(std::this_thread::get_id());
      co_return outcome();
    };
  }
};

double Runs(const MetricsRegistry& metrics, const std::string& task, const std::string& outcome) {
  std::optional<double> v = MetricValue(
      metrics, "trl_scheduled_task_runs_total{task=\"" + task + "\",outcome=\"" + outcome + "\"}");
  EXPECT_TRUE(v) << task << " " << outcome;
  return v.value_or(-1);
}

TEST(SchedulerTest, RunsEveryTaskOnItsThreadAndCountsItsOutcome) {
  MetricsRegistry metrics;
  FakeClock clock(1'700'000'000'000'000);
  Scheduler scheduler(metrics, clock);
  CountingTask ok(3), failing(2), throwing(2);
  scheduler.Add("ok", 1ms, ok.Make([] { return true; }));
  scheduler.Add("failing", 1ms, failing.Make([] { return false; }));
  scheduler.Add("throwing", 1ms, throwing.Make([]() -> bool { throw std::runtime_error("x"); }));
  scheduler.Start();
  const std::thread::id thread = ok.reached.get_future().get();
  EXPECT_NE(thread, std::this_thread::get_id());
  EXPECT_EQ(failing.reached.get_future().get(), thread);
  EXPECT_EQ(throwing.reached.get_future().get(), thread);
  scheduler.Stop();

  // Every run counted once, by its outcome; an exception is a failed run.
  EXPECT_EQ(Runs(metrics, "ok", "ok"), ok.runs);
  EXPECT_EQ(Runs(metrics, "ok", "error"), 0);
  EXPECT_EQ(Runs(metrics, "failing", "ok"), 0);
  EXPECT_EQ(Runs(metrics, "failing", "error"), failing.runs);
  EXPECT_EQ(Runs(metrics, "throwing", "error"), throwing.runs);
  EXPECT_EQ(MetricValue(metrics, R"(trl_scheduled_task_last_run_timestamp_seconds{task="ok"})"),
            1'700'000'000.0);
  // A task that never succeeded has no last success; the last run counts any outcome.
  EXPECT_EQ(MetricValue(metrics, R"(trl_scheduled_task_last_success_timestamp_seconds{task="ok"})"),
            1'700'000'000.0);
  EXPECT_EQ(
      MetricValue(metrics, R"(trl_scheduled_task_last_success_timestamp_seconds{task="failing"})"),
      0.0);
  EXPECT_EQ(
      MetricValue(metrics, R"(trl_scheduled_task_last_run_timestamp_seconds{task="failing"})"),
      1'700'000'000.0);
}

TEST(SchedulerTest, RunHandsWorkToTheSchedulerThread) {
  MetricsRegistry metrics;
  FakeClock clock;
  Scheduler scheduler(metrics, clock);
  CountingTask task(1);
  scheduler.Add("task", 1ms, task.Make([] { return true; }));
  scheduler.Start();
  const std::thread::id scheduler_thread = task.reached.get_future().get();

  const std::thread::id caller_thread = std::this_thread::get_id();
  auto caller = [&]() -> asio::awaitable<std::thread::id> {
    std::function<asio::awaitable<std::thread::id>()> work =
        []() -> asio::awaitable<std::thread::id> { co_return std::this_thread::get_id(); };
    std::thread::id ran_on = co_await scheduler.Run<std::thread::id>(std::move(work));
    EXPECT_EQ(std::this_thread::get_id(), caller_thread) << "resumed on the caller's executor";
    co_return ran_on;
  };
  EXPECT_EQ(RunAwaitable(caller()), scheduler_thread);
  scheduler.Stop();
}

TEST(SchedulerTest, StopEndsTasksWaitingForTheirTurn) {
  MetricsRegistry metrics;
  FakeClock clock;
  Scheduler scheduler(metrics, clock);
  CountingTask hourly(1);
  scheduler.Add("hourly", 1h, hourly.Make([] { return true; }));
  // The series exist before the first run, at 0.
  EXPECT_EQ(Runs(metrics, "hourly", "ok"), 0);
  EXPECT_EQ(Runs(metrics, "hourly", "error"), 0);
  scheduler.Start();
  scheduler.Stop();  // returns although the task's next run is an hour away
  scheduler.Stop();  // and again: nothing left to stop
  EXPECT_EQ(hourly.runs, 0);
  EXPECT_EQ(Runs(metrics, "hourly", "ok"), 0);
}

TEST(SchedulerTest, StopBeforeStartDoesNothing) {
  MetricsRegistry metrics;
  FakeClock clock;
  Scheduler scheduler(metrics, clock);
  scheduler.Add("never", 1ms, []() -> asio::awaitable<bool> { co_return true; });
  scheduler.Stop();
  EXPECT_EQ(Runs(metrics, "never", "ok"), 0);
}

}  // namespace
}  // namespace trl
