#include "metrics/metrics.h"

#include <gtest/gtest.h>

namespace trl {
namespace {

TEST(Metrics, CountersRenderWithLabels) {
  MetricsRegistry r;
  auto& requests = r.AddCounter("trl_requests_total", "Requests.", {"model", "status"});
  requests.With({"m1", "200"}).Add();
  requests.With({"m1", "200"}).Add(2);
  requests.With({"m\"2", "429"}).Add();
  std::string text = r.Render();
  EXPECT_NE(text.find("# TYPE trl_requests_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("trl_requests_total{model=\"m1\",status=\"200\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("trl_requests_total{model=\"m\\\"2\",status=\"429\"} 1\n"),
            std::string::npos);
}

TEST(Metrics, HistogramIsCumulative) {
  MetricsRegistry r;
  auto& h = r.AddHistogram("trl_d_seconds", "D.", {"model"}, {0.1, 1});
  h.With({"m"}).Observe(0.05);
  h.With({"m"}).Observe(0.5);
  h.With({"m"}).Observe(5);
  std::string text = r.Render();
  EXPECT_NE(text.find("trl_d_seconds_bucket{model=\"m\",le=\"0.1\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("trl_d_seconds_bucket{model=\"m\",le=\"1\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("trl_d_seconds_bucket{model=\"m\",le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("trl_d_seconds_sum{model=\"m\"} 5.55\n"), std::string::npos);
  EXPECT_NE(text.find("trl_d_seconds_count{model=\"m\"} 3\n"), std::string::npos);
}

TEST(Metrics, DroppedLabelMergesSeries) {
  MetricsRegistry r;
  r.DropLabel("key");
  EXPECT_FALSE(r.Keeps("key"));
  EXPECT_TRUE(r.Keeps("model"));
  auto& requests = r.AddCounter("trl_requests_total", "Requests.", {"model", "key", "status"});
  auto& duration = r.AddHistogram("trl_d_seconds", "D.", {"key"}, {1});
  Counter& a = requests.With({"m", "team-a", "200"});
  Counter& b = requests.With({"m", "team-b", "200"});
  EXPECT_EQ(&a, &b);
  a.Add();
  b.Add(2);
  requests.With({"m", "team-a", "429"}).Add();
  duration.With({"team-a"}).Observe(0.5);
  duration.With({"team-b"}).Observe(0.5);
  std::string text = r.Render();
  EXPECT_NE(text.find("trl_requests_total{model=\"m\",status=\"200\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("trl_requests_total{model=\"m\",status=\"429\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("trl_d_seconds_bucket{le=\"1\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("trl_d_seconds_count 2\n"), std::string::npos);
  EXPECT_EQ(text.find("team-"), std::string::npos);
}

}  // namespace
}  // namespace trl
