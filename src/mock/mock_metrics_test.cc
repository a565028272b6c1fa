#include "mock/mock_metrics.h"

#include <gtest/gtest.h>

#include <string>

namespace trl {
namespace {

bool Has(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

TEST(MockMetricsTest, EveryModelHasEverySeriesFromTheStart) {
  MockMetrics metrics({"a", "b"});
  const std::string text = metrics.Render();
  for (const std::string model : {"a", "b"}) {
    const std::string labels = "{model_name=\"" + model + "\",engine=\"0\"}";
    for (const char* name :
         {"vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
          "vllm:gpu_cache_usage_perc", "vllm:prompt_tokens_total", "vllm:generation_tokens_total",
          "vllm:time_to_first_token_seconds_count"}) {
      EXPECT_TRUE(Has(text, name + labels + " 0")) << name << labels << " in\n" << text;
    }
    EXPECT_TRUE(Has(text, "vllm:time_to_first_token_seconds_bucket{model_name=\"" + model +
                              "\",engine=\"0\",le=\"0.001\"} 0"));
  }
  EXPECT_NE(text.find("# TYPE vllm:prompt_tokens_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE vllm:time_to_first_token_seconds histogram\n"), std::string::npos);
}

TEST(MockMetricsTest, EachModelCountsApart) {
  MockMetrics metrics({"a", "b"});
  metrics.For("b").prompt_tokens->Add(7);
  metrics.For("b").generation_tokens->Add(3);
  metrics.For("b").running->Add(1);
  metrics.For("b").time_to_first_token->Observe(0.03);
  const std::string text = metrics.Render();
  EXPECT_TRUE(Has(text, R"(vllm:prompt_tokens_total{model_name="a",engine="0"} 0)"));
  EXPECT_TRUE(Has(text, R"(vllm:prompt_tokens_total{model_name="b",engine="0"} 7)"));
  EXPECT_TRUE(Has(text, R"(vllm:generation_tokens_total{model_name="b",engine="0"} 3)"));
  EXPECT_TRUE(Has(text, R"(vllm:num_requests_running{model_name="b",engine="0"} 1)"));
  EXPECT_TRUE(Has(
      text, R"(vllm:time_to_first_token_seconds_bucket{model_name="b",engine="0",le="0.02"} 0)"));
  EXPECT_TRUE(Has(
      text, R"(vllm:time_to_first_token_seconds_bucket{model_name="b",engine="0",le="0.04"} 1)"));
  EXPECT_TRUE(Has(text, R"(vllm:time_to_first_token_seconds_count{model_name="b",engine="0"} 1)"));
}

}  // namespace
}  // namespace trl
