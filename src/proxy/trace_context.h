// W3C Trace Context (https://www.w3.org/TR/trace-context/): the gateway takes part as a proxy
// that does not trace. A valid `traceparent` (and its `tracestate`) goes to the backend as the
// client sent it, and its trace id goes into the access log; an invalid one is not passed on,
// nor its tracestate, as the specification asks of a participant that cannot parse it.
#pragma once

#include <string_view>

namespace trl {

// The 32 lowercase hex digits of the trace id of a valid traceparent value; empty if it is not
// valid: "VV-<32 hex>-<16 hex>-FF" with version VV not "ff", ids not all zeros, and for version
// 00 nothing after; a later version may add fields after a '-'.
std::string_view TraceIdOf(std::string_view traceparent);

}  // namespace trl
