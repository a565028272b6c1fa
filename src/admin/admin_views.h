// What the admin API's handlers share (admin_api.cc, admin_keys.cc, admin_tenants.cc): a JSON
// answer, the 503 of a store that did not answer, the 405 of a wrong method, and the budgets of a
// key or tenant as shown.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/value.hpp>

#include "http/server.h"
#include "limits/limiter.h"

namespace trl {

http::Response JsonResponse(unsigned status, const boost::json::value& body);
http::Response StoreUnavailable();
// 405 on a route that serves other methods: `allow` ("GET, POST") in the message and in Allow.
http::Response MethodNotAllowed(const http::Request& request, std::string_view path,
                                std::string_view allow);
// Each limit as configured (a calendar one with its "reset": "calendar"), with `remaining`,
// `level` (negative in debt) and, for tokens and requests, `resets_in` ("6m0s": until the
// budget is full again) and `resets_in_ms`; for concurrency, `in_use`.
boost::json::array ReadingsJson(const LimitReadings& readings);

}  // namespace trl
