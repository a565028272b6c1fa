#include "app/scheduled_tasks.h"

#include <spdlog/spdlog.h>

#include <memory>

namespace trl {
namespace {

using namespace std::chrono_literals;

constexpr auto kBudgetFlushInterval = 1s;
// Another instance's key change (a revoke above all) takes effect here within this.
constexpr auto kKeySyncInterval = 250ms;
constexpr auto kRetentionInterval = 1h;
// The most a crash forgets of budgets and usage (store.journal), beside the scheduler's delays.
constexpr auto kJournalInterval = 5ms;
// Idle budgets leave memory (and limits.db) within this of having refilled.
constexpr auto kEvictInterval = 1min;

Scheduler::Task KeySync(KeyDirectory& keys) {
  // Logged when it starts failing and when it recovers, not four times a second.
  auto failing = std::make_shared<bool>(false);
  return [&keys, failing]() -> asio::awaitable<bool> {
    std::string error;
    bool ok = co_await keys.Sync(false, &error);
    if (!ok && !*failing) {
      spdlog::warn("key sync failed: {}; the keys loaded last stay in force", error);
    } else if (ok && *failing) {
      spdlog::info("key sync works again");
    }
    *failing = !ok;
    co_return ok;
  };
}

Scheduler::Task BudgetFlush(MemoryStore& budgets) {
  return [&budgets]() -> asio::awaitable<bool> {
    std::string error;
    bool ok = budgets.Flush(&error);
    if (!ok) spdlog::error("saving budgets failed: {}", error);
    co_return ok;
  };
}

Scheduler::Task BudgetEvict(MemoryStore& budgets, const Clock& clock) {
  return [&budgets, &clock]() -> asio::awaitable<bool> {
    std::string error;
    const size_t evicted = budgets.Evict(clock.NowMicros(), &error);
    if (!error.empty()) spdlog::error("dropping idle budgets from limits.db failed: {}", error);
    if (evicted > 0) spdlog::debug("{} idle budgets dropped", evicted);
    co_return error.empty();
  };
}

// Redis expires old usage itself; SQLite rows are dropped here.
Scheduler::Task UsageRetention(UsageSink& sink, const Clock& clock, Millis retention) {
  return [&sink, &clock, retention]() -> asio::awaitable<bool> {
    const int64_t now = clock.NowMicros() / 1'000'000;
    const int64_t before = now - retention.count() / 1000;
    int64_t removed = 0;
    std::string error;
    bool ok = co_await sink.DropBefore(before, &removed, &error);
    if (!ok) {
      spdlog::error("usage retention failed: {}", error);
    } else if (removed > 0) {
      spdlog::info("usage retention: {} rows older than {} dropped", removed,
                   FormatDuration(retention));
    }
    co_return ok;
  };
}

Scheduler::Task JournalCommit(UsageFlush& usage, MemoryStore* budgets) {
  auto failing = std::make_shared<bool>(false);
  return [&usage, budgets, failing]() -> asio::awaitable<bool> {
    std::string error;
    bool ok = (!budgets || budgets->CommitJournal(&error)) && usage.CommitJournal(&error);
    if (!ok && !*failing) spdlog::error("journal commit failed: {}", error);
    if (ok && *failing) spdlog::info("journal commits work again");
    *failing = !ok;
    co_return ok;
  };
}

}  // namespace

void AddScheduledTasks(Scheduler& scheduler, const ScheduledWork& work) {
  UsageFlush& usage = work.usage;
  scheduler.Add("usage_flush", work.config.usage.flush_interval,
                [&usage]() { return usage.Flush(); });
  scheduler.Add("key_sync", kKeySyncInterval, KeySync(work.keys));
  if (work.config.store.journal) {
    scheduler.Add("journal", kJournalInterval, JournalCommit(usage, work.budgets));
  }
  if (work.budgets) {
    scheduler.Add("budget_flush", kBudgetFlushInterval, BudgetFlush(*work.budgets));
    scheduler.Add("budget_evict", kEvictInterval, BudgetEvict(*work.budgets, work.clock));
    scheduler.Add("usage_retention", kRetentionInterval,
                  UsageRetention(usage.Sink(), work.clock, work.config.usage.retention));
  }
}

}  // namespace trl
