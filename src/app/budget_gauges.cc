#include "app/budget_gauges.h"

#include <algorithm>
#include <functional>
#include <string_view>
#include <vector>

#include "common/money.h"
#include "config/limit_text.h"

namespace trl {
namespace {

// The budget's identity as bytes (no allocation once the thread's buffer has grown).
void BudgetId(const BucketRef& ref, std::string& id) {
  id.clear();
  id.push_back(static_cast<char>(ref.scope));
  id.push_back(static_cast<char>(ref.kind));
  id.push_back(ref.calendar ? 'c' : 'r');
  id.append(reinterpret_cast<const char*>(&ref.period_micros), sizeof(ref.period_micros));
  id.append(ref.model);
  id.push_back('\0');
  id.append(ref.scope_name);
}

std::string Labels(const BucketRef& ref) {
  std::string labels = ref.scope == ScopeKind::kKey ? "scope=\"key\"" : "scope=\"tenant\"";
  labels += ",name=\"" + EscapeLabelValue(ref.scope_name) + "\"";
  labels += ",model=\"" + EscapeLabelValue(ref.model) + "\"";
  labels += ",kind=\"" + std::string(LimitKindName(ref.kind)) + "\"";
  labels += ",period=\"" + FormatPeriod(std::chrono::milliseconds(ref.period_micros / 1000)) + "\"";
  labels += ref.calendar ? ",calendar=\"true\"" : ",calendar=\"false\"";
  return labels;
}

}  // namespace

BudgetGauges::BudgetGauges(MetricsRegistry& metrics, const Clock& clock)
    : clock_(clock), keep_keys_(metrics.Keeps("key")) {
  metrics.AddCollector([this](std::string& out) { Render(out); });
}

void BudgetGauges::Observe(const BucketSpec& budget, const BucketLevel& level) {
  if (budget.ref.scope == ScopeKind::kKey && !keep_keys_) return;
  thread_local std::string id;
  BudgetId(budget.ref, id);
  Shard& shard = shards_[std::hash<std::string>{}(id) % shards_.size()];
  std::lock_guard lock(shard.mu);
  auto it = shard.entries.find(id);
  if (it == shard.entries.end()) {
    it = shard.entries.emplace(id, Entry{Labels(budget.ref), {}, {}}).first;
  }
  it->second.params = budget.Params();
  it->second.level = level;
}

void BudgetGauges::Render(std::string& out) const {
  const int64_t now = clock_.NowMicros();
  std::vector<std::pair<std::string, std::string>> remaining, limit;  // sorted: a stable output
  for (const Shard& shard : shards_) {
    std::lock_guard lock(shard.mu);
    for (const auto& [id, entry] : shard.entries) {
      BucketLevel level = entry.level;
      Refresh(entry.params, now, level);
      // Spend in units of the currency (exact decimals), the others in whole units.
      const int decimals = entry.params.kind == LimitKind::kSpend ? kMoneyDecimals : 0;
      remaining.emplace_back(entry.labels,
                             FormatScaledDecimal(std::max<int64_t>(level.level, 0), decimals, 0));
      limit.emplace_back(entry.labels, FormatScaledDecimal(entry.params.capacity, decimals, 0));
    }
  }
  std::sort(remaining.begin(), remaining.end());
  std::sort(limit.begin(), limit.end());
  auto family = [&out](std::string_view name, std::string_view help, const auto& series) {
    out.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out.append("# TYPE ").append(name).append(" gauge\n");
    for (const auto& [labels, value] : series) {
      out.append(name).append("{").append(labels).append("} ").append(value);
      out.append("\n");
    }
  };
  family("trl_budget_remaining",
         "Whole tokens or requests (spend: units of the currency) a budget had left when this "
         "instance last judged a request against it, refilled to now.",
         remaining);
  family("trl_budget_limit", "A budget's capacity (the limit's amount).", limit);
}

}  // namespace trl
