#include "proxy/errors.h"

#include <array>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace trl {
namespace {

struct ErrorSpec {
  ApiError error;  // its place in kErrors (checked at compile time)
  unsigned status;
  std::string_view type;
  std::string_view code;
  std::string_view message;  // usual message; "" when every call site writes its own
};

constexpr std::string_view kRequestError = "invalid_request_error";
constexpr std::string_view kApiError = "api_error";

constexpr std::array kErrors = {
    ErrorSpec{ApiError::kInvalidApiKey, 401, kRequestError, "invalid_api_key",
              "Invalid or missing API key. Send it as 'Authorization: Bearer <key>'."},
    ErrorSpec{ApiError::kInvalidIdentity, 401, kRequestError, "invalid_identity",
              "Missing or invalid identity header (identity.source): 1 to 128 characters of "
              "A-Z a-z 0-9 . _ - @ : + / =."},
    ErrorSpec{ApiError::kKeyExpired, 401, kRequestError, "key_expired",
              "This API key has expired. Ask the gateway's operator for a new one."},
    ErrorSpec{ApiError::kNotFound, 404, kRequestError, "not_found", ""},
    ErrorSpec{ApiError::kMethodNotAllowed, 405, kRequestError, "method_not_allowed", ""},
    ErrorSpec{ApiError::kInvalidRequest, 400, kRequestError, "invalid_request", ""},
    ErrorSpec{ApiError::kInvalidHttp, 400, kRequestError, "invalid_request",
              "The request is not valid HTTP/1.1."},
    ErrorSpec{ApiError::kRequestTimeout, 408, kRequestError, "request_timeout",
              "The request did not arrive in time (server.header_timeout). Retry."},
    ErrorSpec{ApiError::kRequestTooLarge, 413, kRequestError, "request_too_large",
              "The request body is larger than this gateway accepts (server.max_body_bytes). "
              "Send a smaller request."},
    ErrorSpec{ApiError::kHeadersTooLarge, 431, kRequestError, "request_header_fields_too_large",
              "The request headers are larger than this gateway accepts "
              "(server.max_header_bytes). Send smaller headers."},
    ErrorSpec{ApiError::kModelNotFound, 404, kRequestError, "model_not_found", ""},
    ErrorSpec{ApiError::kModelNotAllowed, 403, "permission_error", "model_not_allowed", ""},
    ErrorSpec{ApiError::kTokensExceedLimit, 400, kRequestError, "tokens_exceed_limit", ""},
    ErrorSpec{ApiError::kSpendExceedsLimit, 400, kRequestError, "spend_exceeds_limit", ""},
    ErrorSpec{ApiError::kRateLimitTokens, 429, "tokens", "rate_limit_exceeded", ""},
    ErrorSpec{ApiError::kRateLimitRequests, 429, "requests", "rate_limit_exceeded", ""},
    ErrorSpec{ApiError::kRateLimitConcurrency, 429, "concurrency", "rate_limit_exceeded", ""},
    ErrorSpec{ApiError::kRateLimitSpend, 429, "spend", "rate_limit_exceeded", ""},
    ErrorSpec{ApiError::kStoreUnavailable, 503, kApiError, "model_unavailable",
              "The rate-limit store is unavailable. Retry later."},
    ErrorSpec{ApiError::kKeyStoreUnavailable, 503, kApiError, "key_store_unavailable",
              "This API key cannot be checked now: the key store has not answered for too long. "
              "Retry later."},
    ErrorSpec{ApiError::kIdentityLimitReached, 503, kApiError, "identity_limit_reached",
              "This gateway lets in at most identity.max_identities identities and this one is "
              "new. Ask its operator to raise the bound."},
    ErrorSpec{ApiError::kShuttingDown, 503, kApiError, "model_unavailable",
              "The gateway is shutting down. Retry the request."},
    ErrorSpec{ApiError::kNoBackend, 503, kApiError, "model_unavailable", ""},
    ErrorSpec{ApiError::kBackendError, 502, kApiError, "backend_error", ""},
    ErrorSpec{ApiError::kBackendTimeout, 504, kApiError, "backend_timeout", ""},
};

constexpr bool InEnumOrder() {
  for (size_t i = 0; i < kErrors.size(); ++i) {
    if (static_cast<size_t>(kErrors[i].error) != i) return false;
  }
  return true;
}
static_assert(InEnumOrder(), "kErrors lists every ApiError, in the enum's order");

const ErrorSpec& Spec(ApiError error) { return kErrors[static_cast<size_t>(error)]; }

std::string Body(std::string_view type, std::string_view code, std::string_view message,
                 std::string_view param) {
  boost::json::object error;
  error["message"] = message;
  error["type"] = type;
  error["param"] = param.empty() ? boost::json::value(nullptr) : boost::json::value(param);
  error["code"] = code;
  boost::json::object root;
  root["error"] = std::move(error);
  return boost::json::serialize(root);
}

}  // namespace

http::Response ErrorResponse(unsigned status, std::string_view type, std::string_view code,
                             std::string_view message, std::string_view param) {
  http::Response res{static_cast<http::bhttp::status>(status), 11};
  res.set(http::bhttp::field::content_type, "application/json");
  res.body() = Body(type, code, message, param);
  return res;
}

http::Response ErrorResponse(ApiError error, std::string_view message, std::string_view param) {
  const ErrorSpec& spec = Spec(error);
  return ErrorResponse(spec.status, spec.type, spec.code, message.empty() ? spec.message : message,
                       param);
}

std::string ErrorBody(ApiError error, std::string_view message) {
  const ErrorSpec& spec = Spec(error);
  return Body(spec.type, spec.code, message.empty() ? spec.message : message, {});
}

unsigned ErrorStatus(ApiError error) { return Spec(error).status; }

std::string_view ErrorCode(ApiError error) { return Spec(error).code; }

http::Response TransportErrorResponse(unsigned status) {
  switch (status) {
    case 413:
      return ErrorResponse(ApiError::kRequestTooLarge);
    case 431:
      return ErrorResponse(ApiError::kHeadersTooLarge);
    case 408:
      return ErrorResponse(ApiError::kRequestTimeout);
    default:
      return ErrorResponse(ApiError::kInvalidHttp);
  }
}

}  // namespace trl
