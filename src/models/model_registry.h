// The models a config names, looked up by name or alias, each with its backends, their health
// and their outstanding-request counts (for least-outstanding-requests balancing).
// Built from a Config snapshot; immutable apart from the per-backend atomics, so thread-safe.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "models/backend_health.h"

namespace trl {

// Thread-safe: outstanding is atomic, health is guarded by a mutex held for a few instructions.
// Every I/O thread touches a backend on every request: on the usual path (up, and no failure
// since the last success) Available, Up and ReportSuccess only read `clean_`, so they take no
// lock and leave the cache line shared between the cores; outstanding, written twice per
// request, has a line of its own.
class Backend {
 public:
  explicit Backend(BackendUrl url) : url_(std::move(url)) {}
  const BackendUrl& Url() const { return url_; }
  int Outstanding() const { return outstanding_.load(std::memory_order_relaxed); }
  void BeginRequest() { outstanding_.fetch_add(1, std::memory_order_relaxed); }
  void EndRequest() { outstanding_.fetch_sub(1, std::memory_order_relaxed); }
  bool Available(BackendHealth::TimePoint now) const;
  bool Up() const;
  // Returns true when this changed the backend from up to ejected (for logging).
  bool ReportFailure(BackendHealth::TimePoint now,
                     BackendHealth::Failure kind = BackendHealth::Failure::kHard);
  // Returns true when this brought an ejected backend back.
  bool ReportSuccess();

 private:
  BackendUrl url_;
  mutable std::mutex mu_;
  BackendHealth health_;
  std::atomic<bool> clean_{true};  // health_ is as OnSuccess leaves it: nothing to change
  alignas(64) std::atomic<int> outstanding_{0};
};

struct Model {
  const ModelConfig* config;  // owned by the Config snapshot the registry was built from
  std::vector<std::shared_ptr<Backend>> backends;
};

class ModelRegistry {
 public:
  // Backends of `previous` with the same URL are carried over, health and counts included, so
  // a reload does not forget which backends are down.
  ModelRegistry(std::shared_ptr<const Config> config, const ModelRegistry* previous = nullptr);

  // By canonical name or alias; null when unknown.
  const Model* Find(std::string_view name) const;
  // The models whose passthrough lists `path` (config.h), in config order.
  std::vector<const Model*> PassthroughFor(std::string_view path) const;
  const std::vector<Model>& Models() const { return models_; }
  // Every distinct backend (a backend serving several models appears once).
  std::vector<std::shared_ptr<Backend>> AllBackends() const;

  // Least outstanding requests among the available backends not in `tried` (ties: the first
  // after a rotating start, so equal backends share load). Null when none is available.
  static Backend* Pick(const Model& model, std::span<const Backend* const> tried,
                       BackendHealth::TimePoint now);

 private:
  std::shared_ptr<const Config> config_;
  std::vector<Model> models_;
  std::unordered_map<std::string, size_t> by_name_;  // names and aliases
};

}  // namespace trl
