// Internal to trl_usage: what both sinks do with the rows a query found.
#pragma once

#include <vector>

#include "usage/usage.h"

namespace trl {

// An ok result of `rows` (hour rows, in any order, each identity at most once per hour): with
// kDay summed per UTC day; sorted by start, key, tenant, model; with their total.
UsageResult MakeUsageResult(std::vector<UsageRow> rows, UsageGranularity granularity);

}  // namespace trl
