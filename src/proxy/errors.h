// OpenAI-shaped error responses: {"error": {"message", "type", "param", "code"}}.
#pragma once

#include <string_view>

#include "http/server.h"

namespace trl {

http::Response ErrorResponse(unsigned status, std::string_view type, std::string_view code,
                             std::string_view message, std::string_view param = {});
// The JSON body alone (for an error event inside a stream).
std::string ErrorBody(std::string_view type, std::string_view code, std::string_view message,
                      std::string_view param = {});
// The responses the HTTP layer sends by itself (400, 408, 413, 431).
http::Response TransportErrorResponse(unsigned status);

}  // namespace trl
