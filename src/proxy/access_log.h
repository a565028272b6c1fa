// The access log: one JSON line per data-plane request, written by a thread of its own
// (spdlog's async logger) so that a slow disk or pipe never holds up an I/O thread. The line is
// built on the request's thread after its answer has been sent and added to a batch; a batch
// goes to the writer when it holds kBatchBytes, or when Flush runs (a scheduled task, every
// 100 ms): one queue entry and one write per batch, not per line. When the writer has
// kMaxBatches waiting, a batch is dropped and its lines counted (trl_access_log_dropped_total)
// rather than block.
//
// A line never holds a secret or a prompt: the key's name, never the key; no body. Fields
// (null when they do not apply): time (arrival, RFC 3339 UTC), request_id, trace_id (of a valid
// W3C traceparent), client, method, path, key, tenant, model, backend, status, error (the
// OpenAI error code answered), backend_error (why the backend failed: connect, timeout,
// http500...), stream, reserved_tokens, prompt_tokens and completion_tokens (what was charged),
// cost_source (usage: the backend's; estimate: the gateway's count), wait (a request that
// waited for budget in a queue: how the wait ended, admitted, timeout, left or full) and
// wait_us (how long), and in microseconds queue_us (arrival until forwarded, any wait
// included), ttft_us (until the first body byte relayed), total_us.
//
// Thread-safety: Write from any number of threads at once.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "config/config.h"
#include "metrics/metrics.h"

namespace spdlog {
class logger;
namespace details {
class thread_pool;
}
}  // namespace spdlog

namespace trl {

// One request's line. Views must stay valid for the Write call only. Negative numbers and
// empty strings are written as null.
struct AccessRecord {
  int64_t unix_micros = 0;  // when the request arrived
  std::string_view request_id, trace_id, client, method, path;
  std::string_view key, tenant, model, backend;
  unsigned status = 0;  // 0: the client left before any answer
  std::string_view error, backend_error;
  bool stream = false;
  int64_t reserved_tokens = -1, prompt_tokens = -1, completion_tokens = -1;
  std::string_view cost_source;
  std::string_view wait;  // WaitOutcomeLabel of a request that waited for budget
  int64_t wait_us = -1;
  int64_t queue_us = -1, ttft_us = -1, total_us = -1;  // microseconds
};

class AccessLog {
 public:
  // Null and *error when the output cannot be opened; an output of "" is a log that writes
  // nothing. `metrics` gets trl_access_log_dropped_total.
  static std::unique_ptr<AccessLog> Open(const AccessLogConfig& config, MetricsRegistry& metrics,
                                         std::string* error);
  ~AccessLog();  // writes the lines still queued
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  void Write(const AccessRecord& record);
  // Hands the lines waiting to the writer.
  void Flush();

  // The record as its line (no newline); exposed for tests.
  static std::string Format(const AccessRecord& record);

 private:
  static constexpr size_t kBatchBytes = size_t{32} * 1024;
  static constexpr size_t kMaxBatches = 256;  // 8 MiB of lines at most waiting for the writer

  AccessLog() = default;
  // Gives `batch` (lines, each ending in a newline) to the writer, or drops it.
  void Submit(std::string& batch, size_t lines);

  int threshold_ = 0;  // the least status level written (LevelOf)
  std::shared_ptr<spdlog::details::thread_pool> pool_;
  std::shared_ptr<spdlog::logger> logger_;
  std::mutex mu_;  // guards the batch; held to append a line or to take the batch, no I/O
  std::string batch_;
  size_t batch_lines_ = 0;
  std::shared_ptr<std::atomic<uint64_t>> dropped_ = std::make_shared<std::atomic<uint64_t>>(0);
};

}  // namespace trl
