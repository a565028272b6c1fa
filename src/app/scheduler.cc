#include "app/scheduler.h"

#include <spdlog/spdlog.h>

#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>

namespace trl {

struct Scheduler::Entry {
  std::string name;
  std::chrono::milliseconds interval;
  Task task;
  std::unique_ptr<asio::steady_timer> timer;
};

Scheduler::Scheduler(MetricsRegistry& metrics, const Clock& clock)
    : clock_(clock),
      last_run_(metrics.AddGauge("trl_scheduled_task_last_run_timestamp_seconds",
                                 "Unix time at which the task's last run ended.", {"task"})),
      last_success_(metrics.AddGauge("trl_scheduled_task_last_success_timestamp_seconds",
                                     "Unix time at which the task's last successful run ended "
                                     "(0: none yet).",
                                     {"task"})),
      duration_(metrics.AddGauge("trl_scheduled_task_duration_seconds",
                                 "How long the task's last run took.", {"task"})),
      runs_(metrics.AddCounter("trl_scheduled_task_runs_total", "Runs of a scheduled task.",
                               {"task", "outcome"})) {}

Scheduler::~Scheduler() { Stop(); }

void Scheduler::Add(std::string name, std::chrono::milliseconds interval, Task task) {
  auto entry = std::make_unique<Entry>();
  entry->name = std::move(name);
  entry->interval = interval;
  entry->task = std::move(task);
  entry->timer = std::make_unique<asio::steady_timer>(io_);
  // The series exist from the start, at 0 until the first run.
  last_run_.With({entry->name});
  last_success_.With({entry->name});
  duration_.With({entry->name});
  runs_.With({entry->name, "ok"});
  runs_.With({entry->name, "error"});
  entries_.push_back(std::move(entry));
}

void Scheduler::Start() {
  for (auto& entry : entries_) asio::co_spawn(io_, Loop(*entry), asio::detached);
  work_.emplace(io_.get_executor());
  thread_ = std::thread([this] { io_.run(); });
}

asio::awaitable<bool> Scheduler::RunOnce(Entry& entry) {
  const auto start = std::chrono::steady_clock::now();
  bool ok = false;
  try {
    ok = co_await entry.task();
  } catch (const std::exception& e) {
    spdlog::error("scheduled task {} failed: {}", entry.name, e.what());
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  duration_.With({entry.name}).Set(seconds);
  const double now = static_cast<double>(clock_.NowMicros()) / 1e6;
  last_run_.With({entry.name}).Set(now);
  if (ok) last_success_.With({entry.name}).Set(now);
  runs_.With({entry.name, ok ? "ok" : "error"}).Add();
  co_return ok;
}

asio::awaitable<void> Scheduler::Loop(Entry& entry) {
  for (;;) {
    entry.timer->expires_after(entry.interval);
    boost::system::error_code ec;
    co_await entry.timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ec || stopping_) co_return;
    co_await RunOnce(entry);
    if (stopping_) co_return;
  }
}

void Scheduler::Stop() {
  if (!thread_.joinable()) return;
  // Timers are cancelled on the scheduler's thread, where they live; a task in the middle of a
  // run finishes it first, then its loop ends; the thread ends when nothing is left to run.
  asio::post(io_, [this] {
    stopping_ = true;
    for (auto& entry : entries_) entry->timer->cancel();
    work_.reset();
  });
  thread_.join();
}

}  // namespace trl
