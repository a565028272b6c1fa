// mock-llm's network half: an OpenAI-compatible model-server simulator on Boost.Beast.
//
// Routes: POST /v1/chat/completions, /v1/completions, /v1/embeddings (answers as mock_api.h
// describes) and /v1/responses (mock_responses.h), paced by --ttft and --tokens-per-second;
// POST /v1/rerank, /v1/score (mock_score.h), /tokenize, /detokenize (mock_tokenize.h) and
// /v1/audio/transcriptions (mock_transcription.h), answered at once (rerank, score and
// transcriptions after --ttft, the model's forward pass). Every POST route takes faults by
// `x-mock-fault` when started with --faults (no-usage leaves usage out; streams cut by
// truncate-stream), and chat and completions take `x-mock-cached-tokens` always (mock_api.h);
// GET /health, GET /v1/models, GET /metrics (vLLM-named series: mock_metrics.h);
// for tests GET /mock/stats, GET /mock/requests, POST /mock/reset-stats. When a request's
// Accept-Encoding accepts gzip, its JSON answers go out gzipped (with Content-Length of the
// compressed bytes) and its event streams through one gzip stream, sync-flushed after every event
// so each still arrives on its own; otherwise as is.
//
// Threading: one io_context per thread, each with its own SO_REUSEPORT acceptor on the same
// port, so sessions never cross threads and need no strands. Only MockStats (atomics),
// MockMetrics (atomics) and MockRequestLog (a mutex) are shared.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "mock/mock_api.h"
#include "mock/mock_metrics.h"
#include "mock/mock_options.h"
#include "mock/mock_tokenize.h"

namespace trl {

// Served by GET /mock/stats. Gauges count what is open right now. Thread-safe.
//
// prompt_tokens_total and completion_tokens_total count what mock-llm reported to clients: a
// response or a usage chunk whose write succeeded (not the wrong usages of the usage-* faults,
// nor the running usages of continuous_usage_stats); cached_tokens_total, by the same rule, the
// prompt_tokens_details.cached_tokens of those usages (x-mock-cached-tokens). The served_* totals
// count what the backend really did, whatever usage it reported (no-usage faults and streams
// without include_usage included): served_prompt_tokens_total adds a request's prompt tokens when
// the mock starts generating its 200 answer (after validation, before the time to first token);
// served_completion_tokens_total adds one per streamed token event once its write succeeded
// (a stream cut by a hang-up or a fault counts what went out) and a whole answer's words with
// its write (added as the write starts and taken back if it fails, like the reported totals, so
// a client holding the answer sees it counted; nothing for a truncate-stream answer).
struct MockStats {
  std::atomic<int64_t> requests_total{0};  // POSTs to the model routes (all but /mock/*)
  std::atomic<int64_t> open_streams{0};    // SSE responses being sent
  std::atomic<int64_t> open_connections{0};
  std::atomic<int64_t> prompt_tokens_total{0};
  std::atomic<int64_t> completion_tokens_total{0};
  std::atomic<int64_t> cached_tokens_total{0};  // of prompt_tokens_total
  std::atomic<int64_t> served_prompt_tokens_total{0};
  std::atomic<int64_t> served_completion_tokens_total{0};

  void ResetTotals();  // POST /mock/reset-stats; the gauges are left alone
  void AppendJson(std::string& out) const;
};

// The last kCapacity requests the model routes (the POSTs but /mock/*) received (faulted and
// invalid ones too), for GET /mock/requests; POST /mock/reset-stats clears it. Thread-safe.
class MockRequestLog {
 public:
  static constexpr size_t kCapacity = 64;
  static constexpr size_t kBodyLimit = 1 << 20;  // body bytes kept per request

  void Add(MockRequestRecord record);
  void Clear();
  // A JSON array of AppendRequestRecord objects, oldest first.
  void AppendJson(std::string& out) const;

 private:
  mutable std::mutex mutex_;
  // Shared so AppendJson copies pointers under the lock and formats outside it.
  std::deque<std::shared_ptr<const MockRequestRecord>> records_;
};

class MockServer {
 public:
  // Binds and listens on every thread's acceptor, so Endpoint() is valid at once.
  // Throws boost::system::system_error when the address cannot be bound (startup only).
  explicit MockServer(MockOptions options);
  ~MockServer();
  MockServer(const MockServer&) = delete;
  MockServer& operator=(const MockServer&) = delete;

  // The bound address, with the real port when --listen asked for port 0.
  boost::asio::ip::tcp::endpoint Endpoint() const;
  // Serves on options.threads threads (the caller's is one of them) until Stop().
  void Run();
  // Thread-safe; open sessions are dropped.
  void Stop();

  const MockStats& Stats() const { return stats_; }

 private:
  struct Worker;

  const MockOptions options_;
  MockStats stats_;
  MockMetrics metrics_;
  MockRequestLog request_log_;
  std::atomic<uint64_t> next_response_seq_{1};
  MockVocabulary vocabulary_;
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace trl
