// What the key routes of the admin API share (admin_keys.cc, admin_key_changes.cc): their
// errors, a key as shown, and a request's key fields read and checked as the config checks them.
#pragma once

#include <boost/json/object.hpp>
#include <optional>
#include <string_view>
#include <variant>

#include "http/server.h"
#include "keys/key_record.h"
#include "proxy/gateway.h"

namespace trl {

http::Response BadRequest(std::string_view message, std::string_view param);
http::Response InvalidName(std::string_view why);  // 400 with the naming rule
http::Response KeyNotFound(std::string_view name);
http::Response ManagedByConfig(std::string_view name);

// The body as a JSON object (an empty body as {} when `empty_is_object`), or the 400 to send.
std::variant<boost::json::object, http::Response> BodyObject(const http::Request& request,
                                                             bool empty_is_object = false);
// The 400 for the first field of `body` not in `allowed` (`what` completes "A key has ..."),
// or nullopt.
std::optional<http::Response> UnknownField(const boost::json::object& body,
                                           std::initializer_list<std::string_view> allowed,
                                           std::string_view what);

// What the API shows of a key at `now` (Unix seconds): never its secret, nor its hash. `record`
// is null for a key of the config file.
boost::json::object KeyView(const Config& config, const ApiKeyConfig& key, const KeyRecord* record,
                            int64_t now);

// Sets the fields tenant, models, limits and expires_at that `body` has on `key`, each checked
// as in the config file; null sets none, every model, default_limits and never. The 400 for the
// first invalid one (and `key` partly set), or nullopt.
std::optional<http::Response> ApplyKeyFields(const boost::json::object& body,
                                             const GatewaySnapshot& snap, ApiKeyConfig& key);

}  // namespace trl
