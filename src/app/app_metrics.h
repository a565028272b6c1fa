// The process's own series: trl_build_info{version}, trl_ready (what /readyz answers, probed by
// the scheduled task "ready_probe"), the config reloads' outcomes (trl_config_reloads_total,
// trl_config_last_reload_successful, trl_config_last_reload_success_timestamp_seconds, like
// Prometheus's own) and trl_usage_pending_rows.
//
// Thread-safety: SetReady and CountReload from any thread; the series are atomics.
#pragma once

#include "admin/admin_api.h"
#include "common/clock.h"
#include "metrics/metrics.h"
#include "usage/usage.h"

namespace trl {

class AppMetrics {
 public:
  // `usage` must outlive the registry's rendering.
  AppMetrics(MetricsRegistry& metrics, const Clock& clock, const UsageRecorder& usage);

  void SetReady(bool ready) { ready_.Set(ready ? 1 : 0); }
  void CountReload(const ReloadOutcome& outcome);

 private:
  const Clock& clock_;
  Gauge& ready_;
  Family<Counter>& reloads_;
  Gauge& last_reload_ok_;
  Gauge& last_reload_success_;
};

}  // namespace trl
