#include "models/model_registry.h"

#include <algorithm>
#include <limits>

namespace trl {

bool Backend::Available(BackendHealth::TimePoint now) const {
  if (clean_.load(std::memory_order_acquire)) return true;
  std::lock_guard lock(mu_);
  return health_.Available(now);
}

bool Backend::Up() const {
  if (clean_.load(std::memory_order_acquire)) return true;
  std::lock_guard lock(mu_);
  return health_.Up();
}

bool Backend::ReportFailure(BackendHealth::TimePoint now, BackendHealth::Failure kind) {
  std::lock_guard lock(mu_);
  bool was_up = health_.Up();
  health_.OnFailure(now, kind);
  clean_.store(false, std::memory_order_release);
  return was_up && !health_.Up();
}

bool Backend::ReportSuccess() {
  if (clean_.load(std::memory_order_acquire)) return false;
  std::lock_guard lock(mu_);
  bool was_down = !health_.Up();
  health_.OnSuccess();
  clean_.store(true, std::memory_order_release);
  return was_down;
}

ModelRegistry::ModelRegistry(std::shared_ptr<const Config> config, const ModelRegistry* previous)
    : config_(std::move(config)) {
  std::unordered_map<std::string, std::shared_ptr<Backend>> by_url;
  if (previous) {
    for (auto& b : previous->AllBackends()) by_url.emplace(b->Url().url, b);
  }
  for (const ModelConfig& mc : config_->models) {
    Model m{&mc, {}};
    for (const BackendUrl& url : mc.backends) {
      auto& slot = by_url[url.url];
      if (!slot) slot = std::make_shared<Backend>(url);
      m.backends.push_back(slot);
    }
    size_t index = models_.size();
    by_name_.emplace(mc.name, index);
    for (const auto& alias : mc.aliases) by_name_.emplace(alias, index);
    models_.push_back(std::move(m));
  }
}

const Model* ModelRegistry::Find(std::string_view name) const {
  auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : &models_[it->second];
}

std::vector<const Model*> ModelRegistry::PassthroughFor(std::string_view path) const {
  std::vector<const Model*> out;
  for (const Model& model : models_) {
    for (const std::string& pattern : model.config->passthrough) {
      if (PassthroughMatches(pattern, path)) {
        out.push_back(&model);
        break;
      }
    }
  }
  return out;
}

std::vector<std::shared_ptr<Backend>> ModelRegistry::AllBackends() const {
  std::vector<std::shared_ptr<Backend>> out;
  for (const auto& m : models_) {
    for (const auto& b : m.backends) {
      if (std::find(out.begin(), out.end(), b) == out.end()) out.push_back(b);
    }
  }
  return out;
}

Backend* ModelRegistry::Pick(const Model& model, std::span<const Backend* const> tried,
                             BackendHealth::TimePoint now) {
  static std::atomic<unsigned> rotation{0};
  const size_t n = model.backends.size();
  if (n == 0) return nullptr;
  // (Not for a lone backend: every request would write the counter's cache line.)
  const size_t start = n > 1 ? rotation.fetch_add(1, std::memory_order_relaxed) % n : 0;
  Backend* best = nullptr;
  int best_outstanding = std::numeric_limits<int>::max();
  for (size_t i = 0; i < n; ++i) {
    Backend* b = model.backends[(start + i) % n].get();
    if (std::find(tried.begin(), tried.end(), b) != tried.end()) continue;
    if (!b->Available(now)) continue;
    if (b->Outstanding() < best_outstanding) {
      best = b;
      best_outstanding = b->Outstanding();
    }
  }
  return best;
}

}  // namespace trl
