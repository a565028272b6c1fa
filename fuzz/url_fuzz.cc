// Addresses as the config and Redis Cluster write them: Redis URLs (common/redis_url.h), host:port
// in both readings (common/host_port.h), percent-encoding (common/percent_encoding.h), and the
// trusted-proxy ranges (config/config.h's ParseIpRange). The whole input goes to each.
//
// An address formatted back parses to itself; percent-encoding decodes to its text and holds none
// of the reserved characters.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/host_port.h"
#include "common/percent_encoding.h"
#include "common/redis_url.h"
#include "config/config.h"
#include "fuzz_check.h"

namespace {

bool Same(const std::optional<trl::HostPort>& a, const trl::HostPort& b) {
  return a && a->host == b.host && a->port == b.port;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  std::string error;
  if (auto url = trl::ParseRedisUrl(text, &error)) {
    TRL_FUZZ_CHECK(url->port != 0 && url->db >= 0 && url->db <= 99999);
    (void)url->Address();
    (void)url->Redacted();
  } else {
    TRL_FUZZ_CHECK(!error.empty());
  }

  for (auto parsed : {trl::ParseHostPort(text), trl::ParseHostPort(text, 6379)}) {
    if (!parsed) continue;
    TRL_FUZZ_CHECK(
        Same(trl::ParseHostPort(trl::FormatHostPort(parsed->host, parsed->port)), *parsed));
  }
  if (auto split = trl::SplitHostPort(text)) {
    TRL_FUZZ_CHECK(!split->host.empty());
    TRL_FUZZ_CHECK(Same(trl::SplitHostPort(trl::FormatHostPort(split->host, split->port)), *split));
  }

  constexpr std::string_view kReserved = "%:/@?#{}";
  std::string encoded;
  trl::AppendPercentEncoded(text, kReserved, encoded);
  TRL_FUZZ_CHECK(encoded.find_first_of(kReserved.substr(1)) == std::string::npos);
  TRL_FUZZ_CHECK(trl::PercentDecode(encoded) == text);
  (void)trl::PercentDecode(text);

  if (auto range = trl::ParseIpRange(text)) {
    TRL_FUZZ_CHECK(range->prefix_bits >= 0 && range->prefix_bits <= 128);
  }
  return 0;
}
