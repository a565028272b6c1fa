#include "proxy/errors.h"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace trl {

std::string ErrorBody(std::string_view type, std::string_view code, std::string_view message,
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

http::Response ErrorResponse(unsigned status, std::string_view type, std::string_view code,
                             std::string_view message, std::string_view param) {
  http::Response res{static_cast<http::bhttp::status>(status), 11};
  res.set(http::bhttp::field::content_type, "application/json");
  res.body() = ErrorBody(type, code, message, param);
  return res;
}

http::Response TransportErrorResponse(unsigned status) {
  switch (status) {
    case 413:
      return ErrorResponse(413, "invalid_request_error", "request_too_large",
                           "The request body is larger than this gateway accepts "
                           "(server.max_body_bytes). Send a smaller request.");
    case 431:
      return ErrorResponse(431, "invalid_request_error", "request_header_fields_too_large",
                           "The request headers are larger than this gateway accepts "
                           "(server.max_header_bytes). Send smaller headers.");
    case 408:
      return ErrorResponse(408, "invalid_request_error", "request_timeout",
                           "The request did not arrive in time (server.header_timeout). Retry.");
    default:
      return ErrorResponse(400, "invalid_request_error", "invalid_request",
                           "The request is not valid HTTP/1.1.");
  }
}

}  // namespace trl
