#include "admin/admin_views.h"

#include <boost/json/serialize.hpp>

#include "common/money.h"
#include "config/config.h"
#include "keys/key_record.h"
#include "proxy/errors.h"

namespace trl {

http::Response JsonResponse(unsigned status, const boost::json::value& body) {
  http::Response res{static_cast<http::bhttp::status>(status), 11};
  res.set(http::bhttp::field::content_type, "application/json");
  res.body() = boost::json::serialize(body);
  return res;
}

http::Response StoreUnavailable() {
  return ErrorResponse(503, "api_error", "store_unavailable",
                       "The store did not answer; nothing was changed. Retry later.");
}

http::Response MethodNotAllowed(const http::Request& request, std::string_view path,
                                std::string_view allow) {
  http::Response res =
      ErrorResponse(405, "invalid_request_error", "method_not_allowed",
                    "Method " + std::string(request.method_string()) + " is not allowed on " +
                        std::string(path) + "; use " + std::string(allow) + ".");
  res.set(http::bhttp::field::allow, allow);
  return res;
}

boost::json::array ReadingsJson(const LimitReadings& readings) {
  boost::json::array limits;
  for (const LimitReading& r : readings.limits) {
    boost::json::object o = LimitToJson(r.limit);
    if (r.limit.kind == LimitKind::kSpend) {  // money: exact decimal strings
      o["remaining"] = FormatMoney(r.remaining);
      o["level"] = FormatMoney(r.level);
    } else {
      o["remaining"] = r.remaining;
      o["level"] = r.level;
    }
    if (r.limit.kind == LimitKind::kConcurrent) {
      o["in_use"] = r.in_use;
    } else {
      // Not "reset": a limit's own field (reset: calendar).
      o["resets_in"] = FormatDuration(Millis(r.reset_ms));
      o["resets_in_ms"] = r.reset_ms;
    }
    limits.push_back(std::move(o));
  }
  return limits;
}

}  // namespace trl
