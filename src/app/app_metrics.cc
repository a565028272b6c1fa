#include "app/app_metrics.h"

#include <string>

#ifndef TRL_VERSION
#define TRL_VERSION "0.0.0"
#endif

namespace trl {

AppMetrics::AppMetrics(MetricsRegistry& metrics, const Clock& clock, const UsageRecorder& usage)
    : clock_(clock),
      ready_(metrics.AddGauge("trl_ready", "1 while /readyz answers ready (probed every 5 s).", {})
                 .With({})),
      reloads_(metrics.AddCounter("trl_config_reloads_total",
                                  "Config reloads (SIGHUP or the admin API), by outcome.",
                                  {"outcome"})),
      last_reload_ok_(metrics
                          .AddGauge("trl_config_last_reload_successful",
                                    "0 while the last reload was refused (the config in force "
                                    "is older than the file), else 1.",
                                    {})
                          .With({})),
      last_reload_success_(metrics
                               .AddGauge("trl_config_last_reload_success_timestamp_seconds",
                                         "Unix time of the last config applied (at start, the "
                                         "start).",
                                         {})
                               .With({})) {
  metrics.AddGauge("trl_build_info", "1, labelled with the gateway's version.", {"version"})
      .With({TRL_VERSION})
      .Set(1);
  reloads_.With({"ok"});
  reloads_.With({"error"});
  last_reload_ok_.Set(1);
  last_reload_success_.Set(static_cast<double>(clock_.NowMicros()) / 1e6);
  metrics.AddCollector([&usage](std::string& out) {
    out += "# HELP trl_usage_pending_rows Usage rows waiting for the next usage_flush.\n";
    out += "# TYPE trl_usage_pending_rows gauge\n";
    out += "trl_usage_pending_rows " + std::to_string(usage.PendingRows()) + "\n";
  });
}

void AppMetrics::CountReload(const ReloadOutcome& outcome) {
  const bool ok = outcome.errors.empty();
  reloads_.With({ok ? "ok" : "error"}).Add();
  last_reload_ok_.Set(ok ? 1 : 0);
  if (ok) last_reload_success_.Set(static_cast<double>(clock_.NowMicros()) / 1e6);
}

}  // namespace trl
