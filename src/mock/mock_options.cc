#include "mock/mock_options.h"

#include <charconv>
#include <cmath>
#include <optional>
#include <stdexcept>

#include "common/host_port.h"

namespace trl {
namespace {

std::invalid_argument BadFlag(std::string_view flag, std::string_view value, std::string_view why) {
  return std::invalid_argument(std::string(flag) + ": " + std::string(why) + " (got '" +
                               std::string(value) + "')");
}

template <typename T>
bool ParseNumber(std::string_view text, T& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

void ParseListen(std::string_view value, MockOptions& options) {
  std::optional<HostPort> listen = SplitHostPort(value);  // [::1]:8000 too
  if (!listen) throw BadFlag("--listen", value, "expected HOST:PORT");
  options.host = std::move(listen->host);
  options.port = listen->port;
}

void ParseModels(std::string_view value, MockOptions& options) {
  options.models.clear();
  std::string_view rest = value;
  for (;;) {
    size_t comma = rest.find(',');
    std::string_view model = rest.substr(0, comma);
    if (model.empty()) throw BadFlag("--models", value, "empty model name");
    options.models.emplace_back(model);
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
}

}  // namespace

std::chrono::nanoseconds MockOptions::TokenInterval() const {
  if (tokens_per_second <= 0) return std::chrono::nanoseconds(0);
  return std::chrono::nanoseconds(static_cast<int64_t>(std::llround(1e9 / tokens_per_second)));
}

std::chrono::nanoseconds ParseMockDuration(std::string_view text) {
  size_t unit_at = text.find_first_not_of("0123456789.");
  std::string_view number = text.substr(0, unit_at);
  std::string_view unit = unit_at == std::string_view::npos ? "" : text.substr(unit_at);
  double value = 0;
  // from_chars for double is available in GCC 12's libstdc++.
  if (number.empty() || !ParseNumber(number, value)) {
    throw std::invalid_argument("bad duration '" + std::string(text) + "'");
  }
  double scale = 0;
  if (unit == "s") {
    scale = 1e9;
  } else if (unit == "ms") {
    scale = 1e6;
  } else if (unit == "us") {
    scale = 1e3;
  } else if (unit.empty() && value == 0) {
    scale = 0;
  } else {
    throw std::invalid_argument("bad duration '" + std::string(text) + "' (use s, ms or us)");
  }
  return std::chrono::nanoseconds(static_cast<int64_t>(std::llround(value * scale)));
}

MockOptions ParseMockArgs(int argc, const char* const* argv) {
  MockOptions options;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view flag = arg;
    std::string_view value;
    if (arg == "--stamp-tokens" || arg == "--faults") {  // the flags without a value
      (arg == "--faults" ? options.faults : options.stamp_tokens) = true;
      continue;
    }
    if (size_t eq = arg.find('='); eq != std::string_view::npos) {
      flag = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      throw BadFlag(flag, "", "missing value");
    }

    if (flag == "--listen") {
      ParseListen(value, options);
    } else if (flag == "--models") {
      ParseModels(value, options);
    } else if (flag == "--max-output") {
      if (!ParseNumber(value, options.max_output) || options.max_output < 1) {
        throw BadFlag(flag, value, "expected an integer >= 1");
      }
    } else if (flag == "--default-max-output") {
      if (!ParseNumber(value, options.default_max_output) || options.default_max_output < 1) {
        throw BadFlag(flag, value, "expected an integer >= 1");
      }
    } else if (flag == "--ttft") {
      try {
        options.ttft = ParseMockDuration(value);
      } catch (const std::invalid_argument& e) {
        throw BadFlag(flag, value, e.what());
      }
    } else if (flag == "--tokens-per-second") {
      if (!ParseNumber(value, options.tokens_per_second) || options.tokens_per_second < 0 ||
          !std::isfinite(options.tokens_per_second)) {
        throw BadFlag(flag, value, "expected a number >= 0");
      }
    } else if (flag == "--threads") {
      if (!ParseNumber(value, options.threads) || options.threads < 1 || options.threads > 256) {
        throw BadFlag(flag, value, "expected an integer in [1, 256]");
      }
    } else {
      throw BadFlag(flag, value, "unknown flag");
    }
  }
  return options;
}

}  // namespace trl
