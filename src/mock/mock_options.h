// mock-llm configuration: parsed and validated once at startup, then read-only.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace trl {

struct MockOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8000;  // 0 = any free port
  std::vector<std::string> models = {"mock-model"};
  int max_output = 16;  // the most words (= tokens) an answer has; >= 1
  std::chrono::nanoseconds ttft = std::chrono::milliseconds(20);
  double tokens_per_second = 50;  // 0 = unpaced
  int threads = 1;
  // Each streamed token event starts with an SSE comment line ": sent_us=<µs>", the time the
  // mock wrote it on the host's monotonic clock (steady_clock): a load generator on the same
  // host tells from it how long a proxy took to relay that token. Clients ignore comments.
  bool stamp_tokens = false;

  // Gap between two streamed tokens; zero when unpaced.
  std::chrono::nanoseconds TokenInterval() const;
};

// Parses "20ms", "0ms", "1s", "1.5s", "250us" or a bare "0". Throws std::invalid_argument.
std::chrono::nanoseconds ParseMockDuration(std::string_view text);

// Parses the command line (argv[0] skipped). Accepts "--flag value" and "--flag=value".
// Throws std::invalid_argument naming the offending flag; startup-only, never on a request path.
MockOptions ParseMockArgs(int argc, const char* const* argv);

inline constexpr char kMockUsage[] =
    "usage: mock-llm [--listen HOST:PORT] [--models a,b] [--max-output 16] [--ttft 20ms]\n"
    "                [--tokens-per-second 50] [--threads 1] [--stamp-tokens]\n";

}  // namespace trl
