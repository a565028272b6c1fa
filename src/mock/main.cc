// mock-llm: an OpenAI-compatible model-server simulator for tests, demos and benchmarks.
#include <pthread.h>
#include <signal.h>

#include <boost/system/system_error.hpp>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <thread>

#include "mock/mock_options.h"
#include "mock/mock_server.h"

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--help" || std::string_view(argv[i]) == "-h") {
      std::fputs(trl::kMockUsage, stdout);
      return 0;
    }
  }
  trl::MockOptions options;
  try {
    options = trl::ParseMockArgs(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mock-llm: %s\n%s", e.what(), trl::kMockUsage);
    return 2;
  }

  // Every thread inherits the blocked mask; one thread waits for the signal and stops the server.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  try {
    trl::MockServer server(options);
    auto endpoint = server.Endpoint();
    // Tests parse this line (/listening on (\S+):(\d+)/); keep it the only stdout output.
    std::string host = endpoint.address().to_string();
    if (endpoint.address().is_v6()) host = "[" + host + "]";  // so HOST:PORT is a URL authority
    std::printf("mock-llm listening on %s:%u\n", host.c_str(),
                static_cast<unsigned>(endpoint.port()));
    std::fflush(stdout);
    std::thread signal_waiter([&] {
      int signal_number = 0;
      sigwait(&signals, &signal_number);
      server.Stop();
    });
    server.Run();
    signal_waiter.join();
  } catch (const boost::system::system_error& e) {
    std::fprintf(stderr, "mock-llm: cannot listen on %s:%u: %s\n", options.host.c_str(),
                 static_cast<unsigned>(options.port), e.code().message().c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mock-llm: %s\n", e.what());
    return 1;
  }
  return 0;
}
