#include "mock/mock_metrics.h"

#include <cassert>

namespace trl {
namespace {

// vLLM V1's buckets for vllm:time_to_first_token_seconds.
const std::vector<double> kTimeToFirstTokenBuckets = {
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,  0.25,  0.5,   0.75,
    1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};

// vLLM's labels: the served model name and the engine core's index (one engine here).
LabelValues Labels(const std::string& model) { return {model, "0"}; }

}  // namespace

MockMetrics::MockMetrics(const std::vector<std::string>& models) {
  const std::vector<std::string> labels = {"model_name", "engine"};
  auto& running = registry_.AddGauge("vllm:num_requests_running",
                                     "Number of requests in model execution batches.", labels);
  auto& waiting = registry_.AddGauge("vllm:num_requests_waiting",
                                     "Number of requests waiting to be processed (mock-llm has "
                                     "no queue: always 0).",
                                     labels);
  auto& kv_cache = registry_.AddGauge(
      "vllm:kv_cache_usage_perc",
      "KV-cache usage. 1 means 100 percent usage (mock-llm has no KV cache: always 0).", labels);
  auto& gpu_cache = registry_.AddGauge(
      "vllm:gpu_cache_usage_perc",
      "GPU KV-cache usage, vllm:kv_cache_usage_perc's name before vLLM 0.9 (always 0).", labels);
  auto& prompt = registry_.AddCounter("vllm:prompt_tokens_total",
                                      "Number of prefill tokens processed.", labels);
  auto& generation = registry_.AddCounter("vllm:generation_tokens_total",
                                          "Number of generation tokens processed.", labels);
  auto& ttft = registry_.AddHistogram("vllm:time_to_first_token_seconds",
                                      "Histogram of time to first token in seconds.", labels,
                                      kTimeToFirstTokenBuckets);
  for (const std::string& model : models) {
    const LabelValues values = Labels(model);
    waiting.With(values);
    kv_cache.With(values);
    gpu_cache.With(values);
    models_.emplace_back(model, Model{&running.With(values), &prompt.With(values),
                                      &generation.With(values), &ttft.With(values)});
  }
}

const MockMetrics::Model& MockMetrics::For(std::string_view model) const {
  for (const auto& [name, series] : models_) {
    if (name == model) return series;
  }
  assert(false && "MockMetrics::For: a model the mock does not serve");
  return models_.front().second;
}

std::string MockMetrics::Render() const { return registry_.Render(); }

}  // namespace trl
