// The query parameters of the admin routes: one table says which parameters each route accepts,
// and every /admin/v1 request is checked against it before its handler runs, so that a
// misspelt parameter (`dryrun=true`) is refused instead of silently ignored.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace trl {

// The parameters `path` (an /admin/v1 path, without its query) accepts; nullopt when `path` is
// no admin route (the request gets its 404, whatever its parameters).
std::optional<std::span<const std::string_view>> AcceptedQueryParams(std::string_view path);

// The parameters of a query string, decoded, each known and given once.
struct AdminQuery {
  std::vector<std::pair<std::string, std::string>> params;
  // The value of `name`, or nullopt when it was not given.
  std::optional<std::string_view> Find(std::string_view name) const;
};
struct AdminQueryError {
  std::string param;  // the parameter at fault; "query" for a query string that is not valid
  std::string message;
};

// Reads `query_string` (without '?', percent-encoded as sent) of a request to `route` ("GET
// /admin/v1/keys", for the messages). Never throws.
std::variant<AdminQuery, AdminQueryError> ReadAdminQuery(std::string_view query_string,
                                                         std::span<const std::string_view> accepted,
                                                         std::string_view route);

}  // namespace trl
