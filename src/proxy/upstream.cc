#include "proxy/upstream.h"

namespace trl {

std::string UpstreamFailureLabel(UpstreamFailure failure, unsigned backend_status) {
  switch (failure) {
    case UpstreamFailure::kNone:
      return "";
    case UpstreamFailure::kConnect:
      return "connect";
    case UpstreamFailure::kReset:
      return "reset";
    case UpstreamFailure::kTimeout:
      return "timeout";
    case UpstreamFailure::kTruncated:
      return "truncated";
    case UpstreamFailure::kHttpStatus:
      return "http" + std::to_string(backend_status);
    case UpstreamFailure::kEncoding:
      return "encoding";
    case UpstreamFailure::kShutdown:
      return "shutdown";
    case UpstreamFailure::kUnavailable:
      return "unavailable";
  }
  return "";
}

}  // namespace trl
