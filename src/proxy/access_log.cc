#include "proxy/access_log.h"

#include <spdlog/async.h>
#include <spdlog/async_logger.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <array>
#include <boost/json/serializer.hpp>
#include <charconv>
#include <chrono>
#include <ctime>
#include <utility>

namespace trl {
namespace {

// "2026-12-06T17:43:31.123Z". The calendar part is formatted once a second per thread.
void AppendTime(std::string& out, int64_t unix_micros) {
  thread_local int64_t cached_second = -1;
  thread_local std::array<char, 32> cached{};
  thread_local size_t cached_size = 0;
  const int64_t second = unix_micros / 1'000'000;
  if (second != cached_second) {
    const auto secs = static_cast<std::time_t>(second);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    cached_size = std::strftime(cached.data(), cached.size(), "%Y-%m-%dT%H:%M:%S", &tm);
    cached_second = second;
  }
  const int64_t millis = (unix_micros / 1000) % 1000;
  out.push_back('"');
  out.append(cached.data(), cached_size);
  out.push_back('.');
  out.push_back(static_cast<char>('0' + millis / 100));
  out.push_back(static_cast<char>('0' + (millis / 10) % 10));
  out.push_back(static_cast<char>('0' + millis % 10));
  out.append("Z\"");
}

// A JSON string, quoted and escaped by Boost.JSON's serializer; "" is null.
void AppendText(std::string& out, std::string_view value) {
  if (value.empty()) {
    out.append("null");
    return;
  }
  thread_local boost::json::serializer escape;
  escape.reset(value);
  std::array<char, 512> buffer;
  while (!escape.done()) out.append(escape.read(buffer.data(), buffer.size()));
}

// A whole number; negative is null.
void AppendNumber(std::string& out, int64_t value) {
  if (value < 0) {
    out.append("null");
    return;
  }
  std::array<char, 24> digits;
  const auto end = std::to_chars(digits.data(), digits.data() + digits.size(), value).ptr;
  out.append(digits.data(), end);
}

// 0 info, 1 warn (4xx, 499), 2 error (5xx).
int LevelOf(unsigned status) {
  if (status >= 500) return 2;
  if (status >= 400 || status == 0) return 1;
  return 0;
}

int Threshold(AccessLogConfig::Level level) {
  switch (level) {
    case AccessLogConfig::Level::kInfo:
      return 0;
    case AccessLogConfig::Level::kWarn:
      return 1;
    case AccessLogConfig::Level::kError:
      return 2;
  }
  return 0;
}

spdlog::sink_ptr SinkFor(const std::string& output) {
  if (output == "stderr") return std::make_shared<spdlog::sinks::stderr_sink_mt>();
  if (output == "stdout") return std::make_shared<spdlog::sinks::stdout_sink_mt>();
  return std::make_shared<spdlog::sinks::basic_file_sink_mt>(output);
}

}  // namespace

std::string AccessLog::Format(const AccessRecord& r) {
  std::string line;
  line.reserve(512);
  line.append(R"({"time":)");
  AppendTime(line, r.unix_micros);
  auto text = [&line](std::string_view name, std::string_view value) {
    line.append(name);
    AppendText(line, value);
  };
  auto number = [&line](std::string_view name, int64_t value) {
    line.append(name);
    AppendNumber(line, value);
  };
  text(R"(,"request_id":)", r.request_id);
  text(R"(,"trace_id":)", r.trace_id);
  text(R"(,"client":)", r.client);
  text(R"(,"method":)", r.method);
  text(R"(,"path":)", r.path);
  text(R"(,"key":)", r.key);
  text(R"(,"tenant":)", r.tenant);
  text(R"(,"model":)", r.model);
  text(R"(,"backend":)", r.backend);
  number(R"(,"status":)", r.status);
  text(R"(,"error":)", r.error);
  text(R"(,"backend_error":)", r.backend_error);
  line.append(r.stream ? R"(,"stream":true)" : R"(,"stream":false)");
  number(R"(,"reserved_tokens":)", r.reserved_tokens);
  number(R"(,"prompt_tokens":)", r.prompt_tokens);
  number(R"(,"completion_tokens":)", r.completion_tokens);
  text(R"(,"cost_source":)", r.cost_source);
  text(R"(,"wait":)", r.wait);
  number(R"(,"wait_us":)", r.wait_us);
  number(R"(,"queue_us":)", r.queue_us);
  number(R"(,"ttft_us":)", r.ttft_us);
  number(R"(,"total_us":)", r.total_us);
  line.push_back('}');
  return line;
}

std::unique_ptr<AccessLog> AccessLog::Open(const AccessLogConfig& config, MetricsRegistry& metrics,
                                           std::string* error) {
  std::unique_ptr<AccessLog> log(new AccessLog());
  log->threshold_ = Threshold(config.level);
  if (!config.output.empty()) {
    try {
      // Room for a few more batches than are ever queued: Submit drops before spdlog would.
      log->pool_ = std::make_shared<spdlog::details::thread_pool>(kMaxBatches + 16, 1);
      log->logger_ =
          std::make_shared<spdlog::async_logger>("access", SinkFor(config.output), log->pool_,
                                                 spdlog::async_overflow_policy::overrun_oldest);
    } catch (const spdlog::spdlog_ex& e) {
      *error = "access_log.output: " + std::string(e.what());
      return nullptr;
    }
    log->logger_->set_pattern("%v");
    log->logger_->flush_on(spdlog::level::trace);  // each batch as it comes: tail -f sees it
    log->batch_.reserve(kBatchBytes + 4096);
  }
  metrics.AddCollector([dropped = log->dropped_](std::string& out) {
    out +=
        "# HELP trl_access_log_dropped_total Access-log lines dropped: the writer fell behind.\n";
    out += "# TYPE trl_access_log_dropped_total counter\n";
    out += "trl_access_log_dropped_total " + std::to_string(dropped->load()) + "\n";
  });
  return log;
}

AccessLog::~AccessLog() {
  if (!logger_) return;
  Flush();
  logger_->flush();
  // The pool's thread writes what is queued, then ends, when the last owner lets go.
  logger_.reset();
  pool_.reset();
}

void AccessLog::Write(const AccessRecord& record) {
  if (!logger_ || LevelOf(record.status) < threshold_) return;
  const std::string line = Format(record);
  std::string full;
  size_t lines = 0;
  {
    std::lock_guard lock(mu_);
    batch_.append(line).push_back('\n');
    ++batch_lines_;
    if (batch_.size() < kBatchBytes) return;
    full.swap(batch_);
    lines = std::exchange(batch_lines_, 0);
    batch_.reserve(kBatchBytes + 4096);
  }
  Submit(full, lines);
}

void AccessLog::Flush() {
  if (!logger_) return;
  std::string waiting;
  size_t lines = 0;
  {
    std::lock_guard lock(mu_);
    if (batch_.empty()) return;
    waiting.swap(batch_);
    lines = std::exchange(batch_lines_, 0);
    batch_.reserve(kBatchBytes + 4096);
  }
  Submit(waiting, lines);
}

void AccessLog::Submit(std::string& batch, size_t lines) {
  if (pool_->queue_size() >= kMaxBatches) {
    dropped_->fetch_add(lines, std::memory_order_relaxed);
    return;
  }
  batch.pop_back();  // the pattern ends the entry with the last newline
  logger_->log(spdlog::level::info, spdlog::string_view_t(batch.data(), batch.size()));
}

}  // namespace trl
