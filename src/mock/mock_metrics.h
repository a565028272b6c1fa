// The Prometheus series mock-llm serves at GET /metrics: a few of vLLM's, under vLLM's names and
// with the labels its V1 engine puts on them (model_name, engine="0"), so that dashboards and
// alert rules written against vLLM can be tried against the mock. Every served model name has
// its series from the start, at zero.
//
// What they count:
//  - vllm:num_requests_running: chat, completions and embeddings requests from the start of
//    their generation (the request is valid and no fault cut it short) to the end of their
//    answer, however it ends.
//  - vllm:num_requests_waiting: always 0, as the mock has no queue.
//  - vllm:kv_cache_usage_perc, and vllm:gpu_cache_usage_perc (its name before vLLM 0.9): always
//    0, as the mock has no KV cache.
//  - vllm:prompt_tokens_total: the prompt tokens of every request whose generation started (as
//    MockStats::served_prompt_tokens_total counts them, here by model).
//  - vllm:generation_tokens_total: tokens once generated, as vLLM counts them whether or not
//    the client then receives them: a stream's one at a time, as each is due; a whole answer's
//    all at once, when the answer is ready.
//  - vllm:time_to_first_token_seconds: from the arrival of a chat or completions request to
//    its first token being generated, in vLLM's buckets.
// POST /mock/reset-stats leaves them alone: Prometheus counters only go up.
//
// Thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "metrics/metrics.h"

namespace trl {

class MockMetrics {
 public:
  // The series of one model.
  struct Model {
    Gauge* running;
    Counter* prompt_tokens;
    Counter* generation_tokens;
    Histogram* time_to_first_token;
  };

  explicit MockMetrics(const std::vector<std::string>& models);

  // The series of `model`, which must be one of the names the constructor was given.
  const Model& For(std::string_view model) const;
  // Prometheus text exposition format (version 0.0.4).
  std::string Render() const;

 private:
  MetricsRegistry registry_;
  std::vector<std::pair<std::string, Model>> models_;
};

}  // namespace trl
