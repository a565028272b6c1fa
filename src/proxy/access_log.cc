#include "proxy/access_log.h"

#include <spdlog/async.h>
#include <spdlog/async_logger.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <array>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <ctime>

namespace trl {
namespace {

constexpr size_t kQueueLines = 16384;

// "2026-12-06T17:43:31.123Z"
std::string Rfc3339Millis(int64_t unix_micros) {
  const std::time_t secs = static_cast<std::time_t>(unix_micros / 1'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  std::array<char, 40> buf{};
  const size_t n = std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out(buf.data(), n);
  const int64_t millis = (unix_micros / 1000) % 1000;
  out += '.';
  out += static_cast<char>('0' + millis / 100);
  out += static_cast<char>('0' + (millis / 10) % 10);
  out += static_cast<char>('0' + millis % 10);
  out += 'Z';
  return out;
}

spdlog::level::level_enum LevelOf(unsigned status) {
  if (status >= 500) return spdlog::level::err;
  if (status >= 400 || status == 0) return spdlog::level::warn;
  return spdlog::level::info;
}

spdlog::level::level_enum Threshold(AccessLogConfig::Level level) {
  switch (level) {
    case AccessLogConfig::Level::kInfo:
      return spdlog::level::info;
    case AccessLogConfig::Level::kWarn:
      return spdlog::level::warn;
    case AccessLogConfig::Level::kError:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

spdlog::sink_ptr SinkFor(const std::string& output) {
  if (output == "stderr") return std::make_shared<spdlog::sinks::stderr_sink_mt>();
  if (output == "stdout") return std::make_shared<spdlog::sinks::stdout_sink_mt>();
  return std::make_shared<spdlog::sinks::basic_file_sink_mt>(output);
}

}  // namespace

std::string AccessLog::Format(const AccessRecord& r) {
  // Built in a buffer on the stack: no allocation but the line itself.
  std::array<unsigned char, 4096> buffer;
  boost::json::monotonic_resource memory(buffer.data(), buffer.size());
  boost::json::object line(&memory);
  auto text = [&line](std::string_view name, std::string_view value) {
    if (value.empty()) {
      line[name] = nullptr;
    } else {
      line[name] = value;
    }
  };
  auto number = [&line](std::string_view name, int64_t value) {
    if (value < 0) {
      line[name] = nullptr;
    } else {
      line[name] = value;
    }
  };
  line["time"] = Rfc3339Millis(r.unix_micros);
  text("request_id", r.request_id);
  text("trace_id", r.trace_id);
  text("client", r.client);
  text("method", r.method);
  text("path", r.path);
  text("key", r.key);
  text("tenant", r.tenant);
  text("model", r.model);
  text("backend", r.backend);
  line["status"] = r.status;
  text("error", r.error);
  text("backend_error", r.backend_error);
  line["stream"] = r.stream;
  number("reserved_tokens", r.reserved_tokens);
  number("prompt_tokens", r.prompt_tokens);
  number("completion_tokens", r.completion_tokens);
  text("cost_source", r.cost_source);
  number("queue_us", r.queue_us);
  number("ttft_us", r.ttft_us);
  number("total_us", r.total_us);
  return boost::json::serialize(line);
}

std::unique_ptr<AccessLog> AccessLog::Open(const AccessLogConfig& config, MetricsRegistry& metrics,
                                           std::string* error) {
  std::unique_ptr<AccessLog> log(new AccessLog());
  if (!config.output.empty()) {
    try {
      log->pool_ = std::make_shared<spdlog::details::thread_pool>(kQueueLines, 1);
      log->logger_ =
          std::make_shared<spdlog::async_logger>("access", SinkFor(config.output), log->pool_,
                                                 spdlog::async_overflow_policy::overrun_oldest);
    } catch (const spdlog::spdlog_ex& e) {
      *error = "access_log.output: " + std::string(e.what());
      return nullptr;
    }
    log->logger_->set_pattern("%v");
    log->logger_->set_level(Threshold(config.level));
    log->logger_->flush_on(spdlog::level::trace);  // each line as it is written: tail -f sees it
  }
  // Not an owner: the pool must end (writing what is queued) when the log does.
  metrics.AddCollector([pool_ref = std::weak_ptr(log->pool_)](std::string& out) {
    const auto pool = pool_ref.lock();
    out +=
        "# HELP trl_access_log_dropped_total Access-log lines dropped: the writer fell behind.\n";
    out += "# TYPE trl_access_log_dropped_total counter\n";
    out +=
        "trl_access_log_dropped_total " + std::to_string(pool ? pool->overrun_counter() : 0) + "\n";
  });
  return log;
}

AccessLog::~AccessLog() {
  if (!logger_) return;
  logger_->flush();
  // The pool's thread writes what is queued, then ends, when the last owner lets go.
  logger_.reset();
  pool_.reset();
}

void AccessLog::Write(const AccessRecord& record) {
  if (!logger_) return;
  const spdlog::level::level_enum level = LevelOf(record.status);
  if (!logger_->should_log(level)) return;
  const std::string line = Format(record);
  logger_->log(level, spdlog::string_view_t(line.data(), line.size()));  // not a format string
}

}  // namespace trl
