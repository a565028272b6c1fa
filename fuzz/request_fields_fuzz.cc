// Step "parse" on hostile bodies: ExtractRequestFields (proxy/request_fields.h), the token count
// of what it found, and the rewrite of the body the backend gets (proxy/forward_body.h). The first
// byte picks the endpoint, the rest is the body.
//
// A body the gateway accepts must, once rewritten, still be accepted and read back as what was
// reserved: the canonical model, the reserved cap, include_usage for a stream. Otherwise the
// backend would serve something else than what was accounted for.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.h"
#include "limits/token_counter.h"
#include "proxy/forward_body.h"
#include "proxy/request_fields.h"

namespace {

constexpr std::string_view kCanonicalModel = "canonical/model-7b";
constexpr int64_t kMaxOutputTokens = 1024;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using trl::ApiEndpoint;
  if (size == 0) return 0;
  // The JSON endpoints: all but kTranscriptions (transcription_fields_fuzz.cc).
  const auto endpoint = static_cast<ApiEndpoint>(data[0] % 8);
  std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  trl::RequestFields fields;
  if (trl::ExtractRequestFields(endpoint, body, fields)) return 0;

  static const trl::ApproxTokenCounter counter;
  const int64_t prompt = trl::CountPromptTokens(fields, counter, trl::MediaTokens{});
  TRL_FUZZ_CHECK(prompt >= 0 && prompt <= trl::kMaxTokenCount);
  const int64_t cap = trl::ReservedCap(endpoint, fields, kMaxOutputTokens);
  const int64_t allowance = trl::OutputAllowance(fields, cap);
  TRL_FUZZ_CHECK(cap >= 0 && cap <= kMaxOutputTokens);
  TRL_FUZZ_CHECK(allowance >= cap && allowance <= trl::kMaxTokenCount);

  trl::RewriteForwardBody(endpoint, fields, kCanonicalModel, cap, body);
  trl::RequestFields sent;
  TRL_FUZZ_CHECK(!trl::ExtractRequestFields(endpoint, body, sent));
  TRL_FUZZ_CHECK(sent.model == kCanonicalModel);
  TRL_FUZZ_CHECK(sent.stream == fields.stream);
  TRL_FUZZ_CHECK(sent.choices == fields.choices);
  if (trl::Generates(endpoint)) {
    TRL_FUZZ_CHECK(sent.max_tokens == cap);
    // The Responses API streams its usage unasked.
    TRL_FUZZ_CHECK(!sent.stream || sent.include_usage || endpoint == ApiEndpoint::kResponses);
  }
  return 0;
}
