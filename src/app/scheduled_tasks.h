// The gateway's scheduled tasks (docs/architecture/system-design.md, "Scheduled tasks"), added
// to its Scheduler before it starts:
//   usage_flush      every usage.flush_interval: pending usage rows to the sink
//   key_sync         every 250 ms: reloads the API-made keys when another instance changed them
//   budget_flush     every second, embedded store only: changed budgets to data_dir/limits.db
//   budget_evict     every minute, embedded store only: drops budgets that have refilled (and
//                    concurrency limits with no slot held) from memory and limits.db
//   usage_retention  hourly, embedded store only: drops usage rows older than usage.retention
//   journal          every 5 ms unless store.journal is off: budget changes (embedded) and usage
//                    rows since the last run, committed to data_dir/journal
// Each logs its own failures.
#pragma once

#include "app/scheduler.h"
#include "app/usage_flush.h"
#include "common/clock.h"
#include "config/config.h"
#include "keys/key_directory.h"
#include "limits/memory_store.h"

namespace trl {

// What the tasks act on; all of it must outlive the scheduler's thread.
struct ScheduledWork {
  const Config& config;  // the config the process started with (intervals, retention)
  const Clock& clock;
  UsageFlush& usage;
  KeyDirectory& keys;
  MemoryStore* budgets = nullptr;  // the embedded store; null with Redis
};

void AddScheduledTasks(Scheduler& scheduler, const ScheduledWork& work);

}  // namespace trl
