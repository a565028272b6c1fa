// mock-llm's network half: an OpenAI-compatible model-server simulator on Boost.Beast.
//
// Threading: one io_context per thread, each with its own SO_REUSEPORT acceptor on the same
// port, so sessions never cross threads and need no strands. Only MockStats is shared (atomics).
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mock/mock_options.h"

namespace trl {

// Served by GET /mock/stats. Totals count what mock-llm reported to clients: a response or a
// usage chunk whose write succeeded. Gauges count what is open right now. Thread-safe.
struct MockStats {
  std::atomic<int64_t> requests_total{0};  // POSTs to the chat, completions and embeddings routes
  std::atomic<int64_t> open_streams{0};    // SSE responses being sent
  std::atomic<int64_t> open_connections{0};
  std::atomic<int64_t> prompt_tokens_total{0};
  std::atomic<int64_t> completion_tokens_total{0};

  void ResetTotals();  // POST /mock/reset-stats; the gauges are left alone
  void AppendJson(std::string& out) const;
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
  std::atomic<uint64_t> next_response_seq_{1};
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace trl
