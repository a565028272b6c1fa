// Internal to trl_usage: what both sinks do with the rows a query found.
#pragma once

#include <vector>

#include "usage/usage.h"

namespace trl {

// An ok result of `rows` (hour rows, in any order, each identity at most once per hour, or day
// rows) for `query`: with kDay summed per UTC day, and over the identities query.group_by leaves
// out (made ""); sorted by start, key, tenant, model, user; with their total.
UsageResult MakeUsageResult(std::vector<UsageRow> rows, const UsageQuery& query);

}  // namespace trl
