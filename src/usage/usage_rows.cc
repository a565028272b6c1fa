#include "usage/usage_rows.h"

#include <algorithm>
#include <tuple>

namespace trl {
namespace {

auto Order(const UsageRow& row) {
  return std::tie(row.start, row.key, row.tenant, row.model, row.user);
}

}  // namespace

UsageResult MakeUsageResult(std::vector<UsageRow> rows, const UsageQuery& query) {
  UsageResult result;
  result.ok = true;
  for (UsageRow& row : rows) {
    if (query.granularity == UsageGranularity::kDay) row.start -= row.start % 86'400;
    if (!query.group_by.key) row.key.clear();
    if (!query.group_by.tenant) row.tenant.clear();
    if (!query.group_by.model) row.model.clear();
    if (!query.group_by.user) row.user.clear();
  }
  std::sort(rows.begin(), rows.end(),
            [](const UsageRow& a, const UsageRow& b) { return Order(a) < Order(b); });
  // Sorted, the rows of one bucket and identity are neighbours: fold them into the first.
  for (UsageRow& row : rows) {
    if (!result.rows.empty() && Order(result.rows.back()) == Order(row)) {
      result.rows.back().counts.Add(row.counts);
    } else {
      result.rows.push_back(std::move(row));
    }
  }
  for (const UsageRow& row : result.rows) result.total.Add(row.counts);
  return result;
}

}  // namespace trl
