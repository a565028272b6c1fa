// trl_budget_remaining and trl_budget_limit: for each token and request budget, what it had left
// when this instance last judged a request against it, refilled to the time of the scrape
// (bucket.h Refresh), and its capacity. Charges made through other instances show here once
// this instance judges a request against the same budget (take the minimum across instances).
//
// Labels: scope (key|tenant), name (the key's or tenant's), model ("" = every model), kind
// (tokens|requests), period ("1m", "1d"...), calendar (true|false). One series per budget
// judged since the start; keys' budgets are left out when the registry drops the `key` label
// (metrics.key_label: false), so the series stay as many as the tenants' budgets.
//
// Thread-safety: Observe from any number of threads at once (sharded locks, held for a map
// lookup and a copy, never across I/O); rendering from the scraper's thread.
#pragma once

#include <array>
#include <mutex>
#include <string>
#include <unordered_map>

#include "common/clock.h"
#include "limits/limiter.h"
#include "metrics/metrics.h"

namespace trl {

class BudgetGauges final : public BudgetObserver {
 public:
  // Registers the gauges' collector with `metrics`; `clock` must outlive this.
  BudgetGauges(MetricsRegistry& metrics, const Clock& clock);
  BudgetGauges(const BudgetGauges&) = delete;
  BudgetGauges& operator=(const BudgetGauges&) = delete;

  void Observe(const BucketSpec& budget, const BucketLevel& level) override;

 private:
  struct Entry {
    std::string labels;  // the series' label pairs, rendered once
    BucketParams params;
    BucketLevel level;
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, Entry> entries;  // by BudgetId
  };
  void Render(std::string& out) const;

  const Clock& clock_;
  const bool keep_keys_;
  std::array<Shard, 16> shards_;
};

}  // namespace trl
