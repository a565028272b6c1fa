// Scheduled work, off the I/O threads (usage flush, budget flush, retention clean-up, key sync):
// every task runs on the scheduler's own thread, `interval` after its previous run ended (so a
// slow run never overlaps itself), and its last run is visible in metrics:
//   trl_scheduled_task_last_run_timestamp_seconds{task}  (Unix time the last run ended)
//   trl_scheduled_task_last_success_timestamp_seconds{task}  (the same, successful runs only)
//   trl_scheduled_task_duration_seconds{task}            (how long the last run took)
//   trl_scheduled_task_runs_total{task,outcome=ok|error}
// Other work that must not overlap with the tasks (an admin usage query after a flush) runs on
// the same thread through Run().
//
// Threading: Add before Start; Run from any thread's coroutine; Stop from the thread that
// called Start.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "metrics/metrics.h"

namespace trl {

namespace asio = boost::asio;

class Scheduler {
 public:
  // Returns true when the run succeeded; it logs its own failures.
  using Task = std::function<asio::awaitable<bool>()>;

  Scheduler(MetricsRegistry& metrics, const Clock& clock);
  ~Scheduler();

  void Add(std::string name, std::chrono::milliseconds interval, Task task);
  void Start();
  // Runs `work` on the scheduler's thread and resumes the caller on its own executor.
  // `work` is taken by reference (the caller's local, moved from here): a by-value
  // std::function built in the caller's co_await expression is a temporary GCC 12 mishandles.
  template <typename T>
  asio::awaitable<T> Run(std::function<asio::awaitable<T>()>&& work) {
    T result = co_await asio::co_spawn(io_, std::move(work), asio::use_awaitable);
    co_return result;
  }
  // Cancels the timers, lets a running task finish, joins the thread.
  void Stop();

 private:
  struct Entry;
  asio::awaitable<void> Loop(Entry& entry);
  asio::awaitable<bool> RunOnce(Entry& entry);

  const Clock& clock_;
  Family<Gauge>& last_run_;
  Family<Gauge>& last_success_;
  Family<Gauge>& duration_;
  Family<Counter>& runs_;
  asio::io_context io_{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  bool stopping_ = false;  // scheduler thread only
  std::vector<std::unique_ptr<Entry>> entries_;
  std::thread thread_;
};

}  // namespace trl
