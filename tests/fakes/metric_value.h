// Reads one series out of a registry's Prometheus text, for tests that assert on metrics by
// name: MetricValue(registry, R"(trl_requests_total{model="m",key="k",status="200"})").
#pragma once

#include <optional>
#include <sstream>
#include <string>
#include <string_view>

#include "metrics/metrics.h"

namespace trl {

// The value of the series written exactly `series` (name and labels as rendered); nullopt when
// the registry has no such series.
inline std::optional<double> MetricValue(const MetricsRegistry& registry, std::string_view series) {
  std::istringstream lines(registry.Render());
  for (std::string line; std::getline(lines, line);) {
    if (line.size() > series.size() && line.starts_with(series) && line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return std::nullopt;
}

}  // namespace trl
