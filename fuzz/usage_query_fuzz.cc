// The usage API's query string (usage/usage.h): ParseUsageQuery on the whole input, percent-encoded
// as a client sends it, and the input as an RFC 3339 time.
//
// A query that parses has from < to within the allowed span; a time that parses, written back,
// parses to the same second.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.h"
#include "usage/usage.h"

namespace {

constexpr int64_t kNow = 1'795'000'000;  // 2026-11-18
constexpr int64_t kMaxSpan = 400 * 86'400;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const trl::ParsedUsageQuery parsed = trl::ParseUsageQuery(text, kNow);
  TRL_FUZZ_CHECK(parsed.query.has_value() != parsed.error.has_value());
  if (parsed.query) {
    TRL_FUZZ_CHECK(parsed.query->from < parsed.query->to);
    TRL_FUZZ_CHECK(parsed.query->to - parsed.query->from <= kMaxSpan);
  } else {
    // The param may be "": "=x" is a parameter with an empty name, and unknown.
    TRL_FUZZ_CHECK(!parsed.error->message.empty());
  }

  for (bool round_up : {false, true}) {
    if (auto time = trl::ParseRfc3339(text, round_up)) {
      TRL_FUZZ_CHECK(trl::ParseRfc3339(trl::FormatRfc3339(*time)) == time);
    }
  }
  return 0;
}
