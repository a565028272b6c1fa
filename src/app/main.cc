// token-rate-limiter: the gateway binary. The command line: --help, and README.md.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

#include "app/copy_store.h"
#include "app/count_tokens.h"
#include "app/gateway_app.h"
#include "config/config.h"
#include "config/config_diff.h"
#include "limits/token_counter.h"

#ifdef TRL_MIMALLOC
#include <mimalloc.h>
#endif

#ifndef TRL_VERSION
#define TRL_VERSION "0.0.0"
#endif

namespace {

// The allocator the binary was linked with (CMake option TRL_MIMALLOC).
std::string Allocator() {
#ifdef TRL_MIMALLOC
  const int v = mi_version();  // e.g. 209 for 2.0.9
  return "mimalloc " + std::to_string(v / 100) + "." + std::to_string(v / 10 % 10) + "." +
         std::to_string(v % 10);
#else
  return "system malloc";
#endif
}

// Open, Start, Serve until SIGTERM/SIGINT and a completed drain, Stop: the exit code. Config
// errors go to stderr, one per line; a store or listener that fails goes to the log.
int RunGateway(const trl::AppOptions& options) {
  trl::GatewayApp::Opened opened = trl::GatewayApp::Open(options);
  for (const auto& e : opened.errors) {
    if (opened.bad_config) {
      std::fprintf(stderr, "%s\n", e.c_str());
    } else {
      spdlog::error("{}", e);
    }
  }
  if (!opened.app) return 1;
  if (std::string error = opened.app->Start(); !error.empty()) {
    spdlog::error("{}", error);
    return 1;
  }
  opened.app->Serve();
  return opened.app->Stop();
}

// --check-config NEW --diff RUNNING, once NEW is valid: what NEW changes from RUNNING (the same
// list a reload answers). 1 when RUNNING has errors.
int PrintConfigDiff(const trl::Config& next, const std::string& running_path) {
  trl::LoadResult running = trl::LoadConfigFile(running_path);
  for (const auto& e : running.errors) {
    std::fprintf(stderr, "%s (--diff): %s\n", running_path.c_str(), e.c_str());
  }
  if (!running.config) return 1;
  std::printf("changes from %s:\n%s", running_path.c_str(),
              trl::ConfigDiffToText(trl::DiffConfigs(*running.config, next)).c_str());
  return 0;
}

// To stdout when asked for (--help, exit 0); to stderr after a wrong command line (exit 2).
void Usage(std::FILE* out = stderr) {
  std::fprintf(out,
               "usage: token-rate-limiter --config FILE [--threads N]\n"
               "       token-rate-limiter --check-config FILE [--diff RUNNING_FILE]\n"
               "       token-rate-limiter copy-store --from FILE --to FILE\n"
               "       token-rate-limiter count-tokens --tokenizer SPEC [--ids] [--jsonl] "
               "[--chat FAMILY]\n"
               "       token-rate-limiter --version\n"
               "       token-rate-limiter --help\n");
}

// --check-config: each model's tokenizer file loads (a refused one is printed, as startup would).
bool TokenizersLoad(const trl::Config& config) {
  bool ok = true;
  for (size_t i = 0; i < config.models.size(); ++i) {
    const trl::ModelConfig& m = config.models[i];
    try {
      trl::MakeTokenCounter(m.tokenizer, m.chat_template);
    } catch (const std::runtime_error& e) {
      std::fprintf(stderr, "models[%zu].tokenizer: %s\n", i, e.what());
      ok = false;
    }
  }
  return ok;
}

// copy-store --from FILE --to FILE (src/app/copy_store.h).
int CopyStore(int argc, char** argv) {
  std::string from, to;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string_view arg = argv[i];
    if (arg == "--from") {
      from = argv[i + 1];
    } else if (arg == "--to") {
      to = argv[i + 1];
    } else {
      from.clear();
      break;
    }
  }
  if (from.empty() || to.empty() || argc != 6) {
    Usage();
    return 2;
  }
  return trl::CopyStoreCommand(from, to);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string_view(argv[1]) == "copy-store") return CopyStore(argc, argv);
  if (argc > 1 && std::string_view(argv[1]) == "count-tokens") {
    return trl::CountTokensCommand(argc, argv);
  }
  trl::AppOptions options;
  std::string check_path;
  std::string diff_path;  // --diff: with --check-config only
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        Usage();
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      Usage(stdout);
      return 0;
    }
    if (arg == "--version") {
      std::printf("token-rate-limiter %s (%s)\n", TRL_VERSION, Allocator().c_str());
      return 0;
    }
    if (arg == "--config") {
      options.config_path = value();
    } else if (arg == "--check-config") {
      check_path = value();
    } else if (arg == "--diff") {
      diff_path = value();
    } else if (arg == "--threads") {
      options.threads_override = std::atoi(value().c_str());
    } else {
      Usage();
      return 2;
    }
  }
  if (!check_path.empty()) {
    trl::LoadResult r = trl::LoadConfigFile(check_path);
    for (const auto& e : r.errors) std::fprintf(stderr, "%s\n", e.c_str());
    if (!r.config) return 1;
    if (!TokenizersLoad(*r.config)) return 1;
    for (const auto& w : trl::ConfigWarnings(*r.config))
      std::fprintf(stderr, "warning: %s\n", w.c_str());
    std::printf("%s: OK\n", check_path.c_str());
    if (!diff_path.empty()) return PrintConfigDiff(*r.config, diff_path);
    return 0;
  }
  if (options.config_path.empty() || !diff_path.empty()) {
    Usage();
    return 2;
  }
  return RunGateway(options);
}
