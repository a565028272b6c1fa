// OpenAI-shaped error responses: {"error": {"message", "type", "param", "code"}}.
//
// Every error the data plane answers is an ApiError: its status, type, code and usual message
// are in one table (errors.cc), so that a client sees the same error spelled the same way
// wherever it comes from.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "http/server.h"

namespace trl {

enum class ApiError : uint8_t {
  kInvalidApiKey,         // 401: no key, or one nobody knows
  kInvalidIdentity,       // 401: identity.source header: no header, or not a valid name
  kKeyExpired,            // 401: a key past its expires_at, or a rotated-away secret's grace
  kNotFound,              // 404: a path the gateway does not serve
  kMethodNotAllowed,      // 405: a path it serves, another method
  kInvalidRequest,        // 400: the body is not a request the gateway can read
  kInvalidHttp,           // 400: not HTTP/1.1 (the HTTP layer's)
  kRequestTimeout,        // 408: the request did not arrive within server.header_timeout
  kRequestTooLarge,       // 413: over server.max_body_bytes
  kHeadersTooLarge,       // 431: over server.max_header_bytes
  kModelNotFound,         // 404: no model by that name or alias
  kModelNotAllowed,       // 403: the key may not use the model
  kTokensExceedLimit,     // 400: more tokens than a limit can ever grant
  kSpendExceedsLimit,     // 400: a larger possible cost than a spend limit can ever grant
  kRateLimitTokens,       // 429: a token budget is spent (type "tokens")
  kRateLimitRequests,     // 429: a request budget (type "requests")
  kRateLimitConcurrency,  // 429: a concurrency limit (type "concurrency")
  kRateLimitSpend,        // 429: a spend budget (type "spend")
  kStoreUnavailable,      // 503: the rate-limit store failed (on_store_error: deny)
  kKeyStoreUnavailable,   // 503: an API-made key whose copy is stale (store.key_sync_max_stale)
  kIdentityLimitReached,  // 503: a new header identity past identity.max_identities
  kShuttingDown,          // 503: the gateway stopped the request (its shutdown grace is over)
  kNoBackend,             // 503: no healthy backend of the model
  kBackendError,          // 502: the backend failed (or ended a stream early)
  kBackendTimeout,        // 504: the backend was too slow
};

// The response for `error`: `message` replaces the table's usual one when not empty; `param`
// names the request field at fault, if any.
http::Response ErrorResponse(ApiError error, std::string_view message = {},
                             std::string_view param = {});
// The JSON body alone (for an error event inside a stream).
std::string ErrorBody(ApiError error, std::string_view message = {});
unsigned ErrorStatus(ApiError error);
// Its "code" ("rate_limit_exceeded", "invalid_api_key"...).
std::string_view ErrorCode(ApiError error);

// An error the data plane's table does not hold (the admin API's own).
http::Response ErrorResponse(unsigned status, std::string_view type, std::string_view code,
                             std::string_view message, std::string_view param = {});
// The responses the HTTP layer sends by itself (400, 408, 413, 431).
http::Response TransportErrorResponse(unsigned status);

}  // namespace trl
