#include "admin/admin_query.h"

#include <algorithm>
#include <boost/url/params_view.hpp>
#include <boost/url/parse_query.hpp>

#include "usage/usage.h"

namespace trl {
namespace {

namespace urls = boost::urls;

// The one list of what each route accepts. A route added to the admin API is added here.
constexpr std::string_view kReload[] = {"dry_run"};

struct RouteParams {
  std::string_view path;
  bool prefix;  // also every path under it ("/admin/v1/keys/" + name [+ "/limits"...])
  std::span<const std::string_view> accepted;
};
constexpr RouteParams kRoutes[] = {
    {"/admin/v1/reload", false, kReload},
    {"/admin/v1/models", false, {}},
    {"/admin/v1/keys", false, {}},
    {"/admin/v1/keys/", true, {}},
    {"/admin/v1/usage", false, kUsageParams},
    {"/admin/v1/tenants", false, {}},
    {"/admin/v1/tenants/", true, {}},
};

std::string Accepts(std::span<const std::string_view> accepted) {
  if (accepted.empty()) return "it accepts none.";
  std::string out = "it accepts: ";
  for (size_t i = 0; i < accepted.size(); ++i) {
    if (i) out += ", ";
    out += accepted[i];
  }
  return out + ".";
}

}  // namespace

std::optional<std::span<const std::string_view>> AcceptedQueryParams(std::string_view path) {
  for (const RouteParams& r : kRoutes) {
    if (r.prefix ? path.starts_with(r.path) : path == r.path) return r.accepted;
  }
  return std::nullopt;
}

std::optional<std::string_view> AdminQuery::Find(std::string_view name) const {
  for (const auto& [key, value] : params) {
    if (key == name) return value;
  }
  return std::nullopt;
}

std::variant<AdminQuery, AdminQueryError> ReadAdminQuery(std::string_view query_string,
                                                         std::span<const std::string_view> accepted,
                                                         std::string_view route) {
  // A NUL-terminated copy: Boost.URL 1.81's parse_query measures its input with strlen (see
  // usage_query.cc).
  const std::string query_copy(query_string);
  const urls::string_view query_text(query_copy.c_str(), query_copy.size());
  // Checked first, so that params_view (which throws on bad input) cannot throw.
  if (!urls::parse_query(query_text)) {
    return AdminQueryError{"query", "The query string is not valid (check its percent-encoding)."};
  }
  urls::encoding_opts opts;
  opts.space_as_plus = false;
  AdminQuery query;
  for (const urls::param& p : urls::params_view(query_text, opts)) {
    if (p.key.empty() && !p.has_value) continue;  // "a=1&&b=2", a trailing '&'
    if (std::find(accepted.begin(), accepted.end(), p.key) == accepted.end()) {
      return AdminQueryError{p.key, "Unknown query parameter '" + p.key + "' on " +
                                        std::string(route) + "; " + Accepts(accepted)};
    }
    if (query.Find(p.key)) {
      return AdminQueryError{p.key, "The query parameter '" + p.key + "' is given more than once."};
    }
    query.params.emplace_back(p.key, p.value);
  }
  return query;
}

}  // namespace trl
