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
  int max_output = 16;  // the most words (= tokens) an answer to a capped request has; >= 1
  // Words of an answer to a request without a cap, where vLLM generates up to the context
  // length; 0 = max_output. Read it through DefaultMaxOutput().
  int default_max_output = 0;
  std::chrono::nanoseconds ttft = std::chrono::milliseconds(20);
  double tokens_per_second = 50;  // 0 = unpaced
  int threads = 1;
  // Each streamed token event starts with an SSE comment line ": sent_us=<µs>", the time the
  // mock wrote it on the host's monotonic clock (steady_clock): a load generator on the same
  // host tells from it how long a proxy took to relay that token. Clients ignore comments.
  bool stamp_tokens = false;
  // --faults: the x-mock-fault request header injects faults. Off by default, so that a client
  // behind a gateway cannot make the mock hang or reset; the tests turn it on.
  bool faults = false;

  // Gap between two streamed tokens; zero when unpaced.
  std::chrono::nanoseconds TokenInterval() const;
  int DefaultMaxOutput() const { return default_max_output > 0 ? default_max_output : max_output; }
};

// Parses "20ms", "0ms", "1s", "1.5s", "250us" or a bare "0". Throws std::invalid_argument.
std::chrono::nanoseconds ParseMockDuration(std::string_view text);

// Parses the command line (argv[0] skipped). Accepts "--flag value" and "--flag=value".
// Throws std::invalid_argument naming the offending flag; startup-only, never on a request path.
MockOptions ParseMockArgs(int argc, const char* const* argv);

inline constexpr char kMockUsage[] =
    "usage: mock-llm [--listen HOST:PORT] [--models a,b] [--max-output 16]\n"
    "                [--default-max-output N] [--ttft 20ms] [--tokens-per-second 50]\n"
    "                [--threads 1] [--stamp-tokens] [--faults]\n"
    "  --max-output N          words of an answer to a capped request: min(cap, N)\n"
    "  --default-max-output N  words of an answer to a request without a cap (vLLM fills the\n"
    "                          context then); default: the value of --max-output\n"
    "  --faults                honour the x-mock-fault request header (tests)\n";

}  // namespace trl
