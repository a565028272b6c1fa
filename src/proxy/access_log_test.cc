#include "proxy/access_log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/json/parse.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "fakes/metric_value.h"

namespace trl {
namespace {

AccessRecord Served() {
  AccessRecord r;
  r.unix_micros = 1'796'579'031'123'456;  // 2026-12-06T17:43:51.123Z
  r.request_id = "req-1";
  r.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  r.client = "127.0.0.1";
  r.method = "POST";
  r.path = "/v1/chat/completions";
  r.key = "team-a";
  r.tenant = "acme";
  r.model = "llama2-7b";
  r.backend = "http://10.0.0.7:8000";
  r.status = 200;
  r.stream = true;
  r.reserved_tokens = 270;
  r.prompt_tokens = 14;
  r.completion_tokens = 256;
  r.cost_source = "usage";
  r.wait = "admitted";
  r.wait_us = 31;
  r.queue_us = 42;
  r.ttft_us = 52'500;
  r.total_us = 6'419'250;
  return r;
}

TEST(AccessLogTest, ALineHasEveryFieldInOrder) {
  EXPECT_EQ(AccessLog::Format(Served()),
            R"({"time":"2026-12-06T17:43:51.123Z","request_id":"req-1",)"
            R"("trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","client":"127.0.0.1",)"
            R"("method":"POST","path":"/v1/chat/completions","key":"team-a","tenant":"acme",)"
            R"("model":"llama2-7b","backend":"http://10.0.0.7:8000","status":200,"error":null,)"
            R"("backend_error":null,"stream":true,"reserved_tokens":270,"prompt_tokens":14,)"
            R"("completion_tokens":256,"cost_source":"usage","wait":"admitted","wait_us":31,)"
            R"("queue_us":42,"ttft_us":52500,"total_us":6419250})");
}

TEST(AccessLogTest, WhatDoesNotApplyIsNullAndHostileTextStaysOnOneLine) {
  AccessRecord r;
  r.unix_micros = 0;
  r.status = 401;
  r.error = "invalid_api_key";
  r.path = "/v1/x\"\n\x01{}";
  const std::string line = AccessLog::Format(r);
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  const boost::json::object o = boost::json::parse(line).as_object();
  EXPECT_EQ(o.at("time").as_string(), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(o.at("path").as_string(), "/v1/x\"\n\x01{}");
  EXPECT_EQ(o.at("status").as_int64(), 401);
  EXPECT_EQ(o.at("error").as_string(), "invalid_api_key");
  for (const char* absent : {"request_id", "trace_id", "key", "tenant", "model", "backend",
                             "reserved_tokens", "prompt_tokens", "completion_tokens", "cost_source",
                             "wait", "wait_us", "queue_us", "ttft_us", "total_us"}) {
    EXPECT_TRUE(o.at(absent).is_null()) << absent;
  }
}

std::vector<std::string> Lines(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

class AccessLogFileTest : public ::testing::Test {
 protected:
  void TearDown() override { std::filesystem::remove(path_); }
  const std::filesystem::path path_ = std::filesystem::temp_directory_path() /
                                      ("trl-access-" + std::to_string(::getpid()) + ".log");
};

TEST_F(AccessLogFileTest, EveryLineReachesTheFileByTheTimeTheLogCloses) {
  MetricsRegistry metrics;
  std::string error;
  auto log = AccessLog::Open({path_.string(), AccessLogConfig::Level::kInfo}, metrics, &error);
  ASSERT_NE(log, nullptr) << error;
  AccessRecord r = Served();
  for (int i = 0; i < 1000; ++i) log->Write(r);
  log.reset();
  const std::vector<std::string> lines = Lines(path_);
  ASSERT_EQ(lines.size(), 1000u);
  EXPECT_EQ(lines[999], AccessLog::Format(r));
  EXPECT_EQ(MetricValue(metrics, "trl_access_log_dropped_total"), 0);
}

TEST_F(AccessLogFileTest, TheLevelKeepsOnlyWhatIsAsBadOrWorse) {
  MetricsRegistry metrics;
  std::string error;
  auto log = AccessLog::Open({path_.string(), AccessLogConfig::Level::kWarn}, metrics, &error);
  ASSERT_NE(log, nullptr) << error;
  AccessRecord r = Served();
  for (unsigned status : {200u, 429u, 499u, 502u, 201u}) {
    r.status = status;
    log->Write(r);
  }
  log.reset();
  const std::vector<std::string> lines = Lines(path_);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[0].find(R"("status":429)"), std::string::npos);
  EXPECT_NE(lines[1].find(R"("status":499)"), std::string::npos);
  EXPECT_NE(lines[2].find(R"("status":502)"), std::string::npos);
}

// A writer that cannot keep up (a pipe nobody reads yet): whole batches are dropped, and every
// line is either written or counted dropped.
TEST(AccessLogDropTest, AWriterThatFallsBehindDropsBatchesAndCountsTheirLines) {
  const std::filesystem::path fifo =
      std::filesystem::temp_directory_path() / ("trl-access-fifo-" + std::to_string(::getpid()));
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  MetricsRegistry metrics;
  std::string error;
  auto log = AccessLog::Open({fifo.string(), AccessLogConfig::Level::kInfo}, metrics, &error);
  ASSERT_NE(log, nullptr) << error;
  constexpr int kLines = 40'000;  // ~17 MB: past the pipe and the writer's queue
  const AccessRecord r = Served();
  for (int i = 0; i < kLines; ++i) log->Write(r);
  log->Flush();
  const double dropped = MetricValue(metrics, "trl_access_log_dropped_total").value_or(-1);
  EXPECT_GT(dropped, 0);

  std::thread closer([&log] { log.reset(); });  // writes what is queued, then closes the pipe
  ASSERT_EQ(::fcntl(reader, F_SETFL, 0), 0);
  int64_t written = 0;
  std::array<char, 65536> buf;
  for (ssize_t n; (n = ::read(reader, buf.data(), buf.size())) > 0;) {
    written += std::count(buf.data(), buf.data() + n, '\n');
  }
  closer.join();
  ::close(reader);
  std::filesystem::remove(fifo);
  EXPECT_EQ(written + static_cast<int64_t>(dropped), kLines);
}

TEST(AccessLogOpenTest, OffWritesNothingAndAFileThatCannotBeOpenedIsAnError) {
  MetricsRegistry metrics;
  std::string error;
  auto off = AccessLog::Open({"", AccessLogConfig::Level::kInfo}, metrics, &error);
  ASSERT_NE(off, nullptr);
  off->Write(Served());
  EXPECT_EQ(MetricValue(metrics, "trl_access_log_dropped_total"), 0);
  MetricsRegistry other;
  EXPECT_EQ(AccessLog::Open({"/dev/null/access.log", AccessLogConfig::Level::kInfo}, other, &error),
            nullptr);
  EXPECT_NE(error.find("access_log.output"), std::string::npos) << error;
}

}  // namespace
}  // namespace trl
