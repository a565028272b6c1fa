// A small Prometheus registry: counters, gauges and histograms with labels, rendered in the
// text exposition format. Thread-safe: series are created under a lock once, then updated with
// atomics, so callers on the hot path should keep the returned reference.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

namespace trl {

using LabelValues = std::vector<std::string>;

class Counter {
 public:
  void Add(double v = 1) {
    double cur = value_.load(std::memory_order_relaxed);
    while (!value_.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
    }
  }
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};
using Gauge = Counter;

class Histogram {
 public:
  explicit Histogram(const std::vector<double>& bounds);
  void Observe(double v);
  // Cumulative counts per bound, then +Inf; sum; count.
  std::vector<uint64_t> Cumulative() const;
  double Sum() const { return sum_.Value(); }
  uint64_t Count() const { return count_.load(std::memory_order_relaxed); }
  const std::vector<double>& Bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1
  Counter sum_;
  std::atomic<uint64_t> count_{0};
};

// A metric name with a fixed list of label names, and one series per label-value tuple. Labels
// named in `dropped` are left out: callers still pass a value for each, and the series with
// values that differ only in dropped labels are one series.
template <typename T>
class Family {
 public:
  Family(std::string name, std::string help, std::string type, std::vector<std::string> labels,
         std::vector<double> bounds = {}, const std::vector<std::string>& dropped = {});

  // Returns the series for these label values (created on first use). Thread-safe; the
  // reference stays valid for the registry's lifetime.
  T& With(const LabelValues& values);
  void Render(std::string& out) const;
  const std::string& Name() const { return name_; }

 private:
  std::string name_, help_, type_;
  std::vector<std::string> labels_;  // the kept ones
  std::vector<bool> keep_;           // per label passed to With
  bool drops_ = false;
  std::vector<double> bounds_;
  mutable std::shared_mutex mu_;
  std::map<LabelValues, std::unique_ptr<T>> series_;
};

class MetricsRegistry {
 public:
  // Before the families that have it are added: `label` is left out of every family added
  // later (metrics.key_label: false drops `key`, for installations with very many keys).
  void DropLabel(std::string label);
  bool Keeps(std::string_view label) const;
  Family<Counter>& AddCounter(std::string name, std::string help, std::vector<std::string> labels);
  Family<Gauge>& AddGauge(std::string name, std::string help, std::vector<std::string> labels);
  Family<Histogram>& AddHistogram(std::string name, std::string help,
                                  std::vector<std::string> labels, std::vector<double> bounds);
  // A metric whose values are read at scrape time (gauges of state held elsewhere, counters
  // kept by another component): `render` appends complete exposition lines, HELP and TYPE
  // included. Called under the registry's lock; must not call back into the registry.
  void AddCollector(std::function<void(std::string&)> render);
  // Prometheus text exposition format (version 0.0.4).
  std::string Render() const;

  static std::vector<double> LatencyBuckets();  // 100us .. 120s

 private:
  mutable std::mutex mu_;
  std::vector<std::string> dropped_;
  std::vector<std::unique_ptr<Family<Counter>>> counters_;
  std::vector<std::unique_ptr<Family<Gauge>>> gauges_;
  std::vector<std::unique_ptr<Family<Histogram>>> histograms_;
  // One per family, in registration order, so the output is stable.
  std::vector<std::function<void(std::string&)>> renderers_;
};

// Escapes a label value for the exposition format.
std::string EscapeLabelValue(std::string_view v);

}  // namespace trl
