// A backend's response as the gateway reads it (proxy/sse.h): SseSplitter over the bytes as they
// arrive, ParseStreamEvent and AppendWithoutUsage on each event, ParseResponseBody on the whole.
// The first byte picks the size of the reads (1-16 bytes) and which usage fields are required.
//
// The splitter neither loses nor invents bytes, and splits the same way however the bytes arrive;
// a well-formed event relayed without its usage is well-formed JSON whose usage is null.
#include <boost/json/parse.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "proxy/sse.h"

namespace {

// The events of `bytes` read `chunk` bytes at a time, then what is left at the end.
std::vector<std::string> Split(std::string_view bytes, size_t chunk, size_t max_event_bytes) {
  trl::SseSplitter splitter(max_event_bytes);
  std::vector<std::string> events;
  for (size_t at = 0; at < bytes.size(); at += chunk) {
    splitter.Feed(bytes.substr(at, chunk),
                  [&](std::string_view event) { events.emplace_back(event); });
  }
  events.push_back(splitter.TakeRest());
  return events;
}

std::string Joined(const std::vector<std::string>& parts) {
  std::string all;
  for (const std::string& part : parts) all += part;
  return all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t chunk = 1 + (data[0] & 0x0f);
  constexpr trl::UsageFields kShapes[] = {
      trl::UsageFields::kPromptAndCompletion, trl::UsageFields::kPromptOnly,
      trl::UsageFields::kResponses, trl::UsageFields::kTranscription};
  const auto usage_fields = kShapes[(data[0] >> 4) % 4];
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);

  const std::vector<std::string> events = Split(bytes, chunk, 1 << 20);
  TRL_FUZZ_CHECK(events == Split(bytes, bytes.size() + 1, 1 << 20));
  TRL_FUZZ_CHECK(Joined(events) == bytes);
  // An event longer than the bound is passed on in pieces, still in order.
  TRL_FUZZ_CHECK(Joined(Split(bytes, chunk, 32)) == bytes);

  for (const std::string& event : events) {
    trl::StreamEvent parsed = trl::ParseStreamEvent(event, usage_fields);
    // AppendWithoutUsage is for chat and completions streams only: the Responses API's usage is
    // relayed as it is (the client reads it in response.completed).
    if (parsed.usage_length == 0 || usage_fields == trl::UsageFields::kResponses ||
        usage_fields == trl::UsageFields::kTranscription) {
      continue;
    }
    // A malformed event stays malformed; a well-formed one must stay so.
    boost::system::error_code ec;
    (void)boost::json::parse(parsed.json, ec);
    std::string relayed;
    trl::AppendWithoutUsage(parsed, relayed);
    if (ec) continue;
    const trl::StreamEvent again = trl::ParseStreamEvent(relayed, usage_fields);
    TRL_FUZZ_CHECK(!again.usage && !again.usage_invalid && again.usage_length == 0);
    const boost::json::value json = boost::json::parse(again.json, ec);
    TRL_FUZZ_CHECK(!ec && json.at("usage").is_null());
  }
  std::string body(bytes);
  trl::ParseResponseBody(body, usage_fields);
  return 0;
}
