// The config file (config/config.h): LoadConfigText on the whole input as YAML, with ${VAR}
// references resolved from a fixed environment; and the input as a duration.
//
// Loading never throws and names a field in every error; a config that loads has no
// restart-only change against itself; a duration written as the config writes periods parses
// back to itself.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "config/config.h"
#include "config/limit_text.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const trl::EnvLookup env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "UNSET") return std::nullopt;
    if (name == "ADMIN_TOKEN") return "0123456789abcdef0123456789abcdef";
    return "value-of-" + name;
  };
  const trl::LoadResult loaded = trl::LoadConfigText(text, env);
  TRL_FUZZ_CHECK((loaded.config == nullptr) != loaded.errors.empty());
  for (const std::string& error : loaded.errors) TRL_FUZZ_CHECK(!error.empty());
  if (loaded.config) {
    TRL_FUZZ_CHECK(trl::RestartOnlyChanges(*loaded.config, *loaded.config).empty());
  }

  if (auto period = trl::ParseDuration(text); period && period->count() > 0) {
    TRL_FUZZ_CHECK(trl::ParseDuration(trl::FormatPeriod(*period)) == period);
    (void)trl::FormatDuration(*period);
  }
  return 0;
}
