#include "metrics/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace trl {

Histogram::Histogram(const std::vector<double>& bounds)
    : bounds_(bounds), buckets_(new std::atomic<uint64_t>[bounds.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i] = 0;
}

void Histogram::Observe(double v) {
  size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.Add(v);
  count_.fetch_add(1, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::Cumulative() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t acc = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    acc += buckets_[i].load(std::memory_order_relaxed);
    out[i] = acc;
  }
  return out;
}

std::string EscapeLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

namespace {

std::string FormatNumber(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.9g", v);
  }
  return buf;
}

std::string LabelSet(const std::vector<std::string>& names, const LabelValues& values,
                     std::string_view extra_name = {}, std::string_view extra_value = {}) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
    out += out.empty() ? "" : ",";
    out += names[i] + "=\"" + EscapeLabelValue(values[i]) + "\"";
  }
  if (!extra_name.empty()) {
    out += out.empty() ? "" : ",";
    out += std::string(extra_name) + "=\"" + std::string(extra_value) + "\"";
  }
  return out.empty() ? "" : "{" + out + "}";
}

}  // namespace

template <typename T>
Family<T>::Family(std::string name, std::string help, std::string type,
                  std::vector<std::string> labels, std::vector<double> bounds,
                  const std::vector<std::string>& dropped)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(std::move(type)),
      bounds_(std::move(bounds)) {
  for (std::string& label : labels) {
    const bool keep = std::find(dropped.begin(), dropped.end(), label) == dropped.end();
    keep_.push_back(keep);
    drops_ |= !keep;
    if (keep) labels_.push_back(std::move(label));
  }
}

template <typename T>
T& Family<T>::With(const LabelValues& all) {
  LabelValues kept;
  if (drops_) {
    for (size_t i = 0; i < all.size() && i < keep_.size(); ++i) {
      if (keep_[i]) kept.push_back(all[i]);
    }
  }
  const LabelValues& values = drops_ ? kept : all;
  {
    std::shared_lock lock(mu_);
    auto it = series_.find(values);
    if (it != series_.end()) return *it->second;
  }
  std::unique_lock lock(mu_);
  auto& slot = series_[values];
  if (!slot) {
    if constexpr (std::is_same_v<T, Histogram>) {
      slot = std::make_unique<Histogram>(bounds_);
    } else {
      slot = std::make_unique<T>();
    }
  }
  return *slot;
}

template <typename T>
void Family<T>::Render(std::string& out) const {
  out += "# HELP " + name_ + " " + help_ + "\n";
  out += "# TYPE " + name_ + " " + type_ + "\n";
  std::shared_lock lock(mu_);
  for (const auto& [values, series] : series_) {
    if constexpr (std::is_same_v<T, Histogram>) {
      auto cumulative = series->Cumulative();
      for (size_t i = 0; i < cumulative.size(); ++i) {
        std::string le = i < bounds_.size() ? FormatNumber(bounds_[i]) : "+Inf";
        out += name_ + "_bucket" + LabelSet(labels_, values, "le", le) + " " +
               FormatNumber(static_cast<double>(cumulative[i])) + "\n";
      }
      out += name_ + "_sum" + LabelSet(labels_, values) + " " + FormatNumber(series->Sum()) + "\n";
      out += name_ + "_count" + LabelSet(labels_, values) + " " +
             FormatNumber(static_cast<double>(series->Count())) + "\n";
    } else {
      out += name_ + LabelSet(labels_, values) + " " + FormatNumber(series->Value()) + "\n";
    }
  }
}

template class Family<Counter>;
template class Family<Histogram>;

Family<Counter>& MetricsRegistry::AddCounter(std::string name, std::string help,
                                             std::vector<std::string> labels) {
  std::lock_guard lock(mu_);
  counters_.push_back(std::make_unique<Family<Counter>>(std::move(name), std::move(help), "counter",
                                                        std::move(labels), std::vector<double>{},
                                                        dropped_));
  auto* f = counters_.back().get();
  renderers_.push_back([f](std::string& out) { f->Render(out); });
  return *f;
}

Family<Gauge>& MetricsRegistry::AddGauge(std::string name, std::string help,
                                         std::vector<std::string> labels) {
  std::lock_guard lock(mu_);
  gauges_.push_back(std::make_unique<Family<Gauge>>(std::move(name), std::move(help), "gauge",
                                                    std::move(labels), std::vector<double>{},
                                                    dropped_));
  auto* f = gauges_.back().get();
  renderers_.push_back([f](std::string& out) { f->Render(out); });
  return *f;
}

Family<Histogram>& MetricsRegistry::AddHistogram(std::string name, std::string help,
                                                 std::vector<std::string> labels,
                                                 std::vector<double> bounds) {
  std::lock_guard lock(mu_);
  histograms_.push_back(std::make_unique<Family<Histogram>>(std::move(name), std::move(help),
                                                            "histogram", std::move(labels),
                                                            std::move(bounds), dropped_));
  auto* f = histograms_.back().get();
  renderers_.push_back([f](std::string& out) { f->Render(out); });
  return *f;
}

void MetricsRegistry::DropLabel(std::string label) {
  std::lock_guard lock(mu_);
  dropped_.push_back(std::move(label));
}

bool MetricsRegistry::Keeps(std::string_view label) const {
  std::lock_guard lock(mu_);
  return std::find(dropped_.begin(), dropped_.end(), label) == dropped_.end();
}

void MetricsRegistry::AddCollector(std::function<void(std::string&)> render) {
  std::lock_guard lock(mu_);
  renderers_.push_back(std::move(render));
}

std::string MetricsRegistry::Render() const {
  std::string out;
  std::lock_guard lock(mu_);
  for (const auto& render : renderers_) render(out);
  return out;
}

std::vector<double> MetricsRegistry::LatencyBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
          0.25,   0.5,     1,      2.5,   5,      10,    30,   60,    120};
}

}  // namespace trl
