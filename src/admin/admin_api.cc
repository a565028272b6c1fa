#include "admin/admin_api.h"

#include <spdlog/spdlog.h>

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <optional>
#include <string>
#include <vector>

#include "admin/admin_views.h"
#include "common/crypto.h"
#include "proxy/errors.h"

namespace trl {
namespace {

namespace bhttp = http::bhttp;

http::Response Text(unsigned status, std::string body, std::string_view type = "text/plain") {
  http::Response res{static_cast<bhttp::status>(status), 11};
  res.set(bhttp::field::content_type, type);
  res.body() = std::move(body);
  return res;
}

http::Response Json(unsigned status, std::string body) {
  return Text(status, std::move(body), "application/json");
}

// A reload refused for the file's sake (the request was fine): 422, every error in the message
// and, one per item, in "errors".
http::Response InvalidConfig(const std::vector<std::string>& errors) {
  std::string message = "The config file has " + std::to_string(errors.size()) +
                        (errors.size() == 1 ? " error" : " errors") +
                        "; the config in force stays:";
  boost::json::array list;
  for (const std::string& e : errors) {
    message += "\n" + e;
    list.emplace_back(e);
  }
  boost::json::object error;
  error["message"] = message;
  error["type"] = "invalid_config";
  error["param"] = nullptr;
  error["code"] = "invalid_config";
  error["errors"] = std::move(list);
  boost::json::object body;
  body["error"] = std::move(error);
  return Json(422, boost::json::serialize(body));
}

// The routes at one exact path, each served with one method.
struct FixedRoute {
  std::string_view path;
  bhttp::verb method;
  std::string_view allow;
};
constexpr FixedRoute kFixedRoutes[] = {
    {"/healthz", bhttp::verb::get, "GET"},         {"/readyz", bhttp::verb::get, "GET"},
    {"/metrics", bhttp::verb::get, "GET"},         {"/admin/v1/reload", bhttp::verb::post, "POST"},
    {"/admin/v1/models", bhttp::verb::get, "GET"}, {"/admin/v1/usage", bhttp::verb::get, "GET"},
};

// The 405 of a request to one of kFixedRoutes with another method.
std::optional<http::Response> WrongMethod(const http::Request& request, std::string_view path) {
  for (const FixedRoute& route : kFixedRoutes) {
    if (route.path == path && route.method != request.method()) {
      return MethodNotAllowed(request, path, route.allow);
    }
  }
  return std::nullopt;
}

}  // namespace

AdminApi::AdminApi(MetricsRegistry& metrics, AdminHooks hooks)
    : metrics_(metrics), hooks_(std::move(hooks)) {}

bool AdminApi::Authorized(const http::Request& request) const {
  std::string token = hooks_.admin_token();
  auto it = request.find(bhttp::field::authorization);
  if (token.empty() || it == request.end()) return false;
  std::string_view value = it->value();
  constexpr std::string_view kBearer = "Bearer ";
  if (value.substr(0, kBearer.size()) != kBearer) return false;
  value.remove_prefix(kBearer.size());
  // Hashing first makes the comparison constant-time regardless of the token's length.
  return ConstantTimeEquals(Sha256Of(value), Sha256Of(token));
}

asio::awaitable<void> AdminApi::Handle(http::Request& request, http::ResponseWriter& writer) {
  // The admin API is the one place exceptions may surface (a store's library, an allocation):
  // they become a 500 for that request, never a dead gateway.
  bool failed = false;
  try {
    co_await Route(request, writer);
  } catch (const std::exception& e) {
    spdlog::error("admin {} {}: {}", std::string(request.method_string()),
                  std::string(request.target().substr(0, request.target().find('?'))), e.what());
    failed = true;
  }
  if (failed) {
    http::Response res = ErrorResponse(500, "api_error", "internal_error",
                                       "The admin request failed; see the gateway's log.");
    co_await writer.Send(std::move(res));
  }
}

std::variant<AdminQuery, http::Response> AdminApi::ReadQuery(const http::Request& request,
                                                             std::string_view path) {
  auto accepted = AcceptedQueryParams(path);
  if (!accepted) return AdminQuery{};  // no such route: its 404 follows
  std::string_view target = request.target();
  size_t q = target.find('?');
  std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  auto read = ReadAdminQuery(query, *accepted,
                             std::string(request.method_string()) + " " + std::string(path));
  if (auto* error = std::get_if<AdminQueryError>(&read)) {
    return ErrorResponse(400, "invalid_request_error", "invalid_request", error->message,
                         error->param);
  }
  return std::get<AdminQuery>(std::move(read));
}

http::Response AdminApi::Reload(const AdminQuery& query) {
  std::optional<std::string_view> dry_run = query.Find("dry_run");
  if (dry_run && *dry_run != "true" && *dry_run != "false") {
    return ErrorResponse(400, "invalid_request_error", "invalid_request",
                         "dry_run must be 'true' or 'false'.", "dry_run");
  }
  const bool dry = dry_run == "true";
  ReloadOutcome outcome = hooks_.reload(dry ? ReloadMode::kDryRun : ReloadMode::kApply);
  if (!outcome.errors.empty()) return InvalidConfig(outcome.errors);
  boost::json::object changes = ConfigDiffToJson(outcome.changes);
  boost::json::object body;
  body["status"] = dry ? "dry_run" : "reloaded";
  body["restart_required"] = changes["restart_required"];
  changes.erase("restart_required");
  body["changes"] = std::move(changes);
  boost::json::array& warnings = body["warnings"].emplace_array();
  for (std::string& w : outcome.warnings) warnings.emplace_back(std::move(w));
  return Json(200, boost::json::serialize(body));
}

asio::awaitable<http::Response> AdminApi::Probe(const http::Request& request,
                                                std::string_view path) {
  if (auto wrong = WrongMethod(request, path)) co_return std::move(*wrong);
  if (path == "/healthz") co_return Json(200, R"({"status":"ok"})");
  if (path == "/readyz") {
    bool ready = co_await hooks_.ready();
    boost::json::object body;
    body["status"] = ready ? "ready" : "not ready";
    boost::json::array& warnings = body["warnings"].emplace_array();
    if (hooks_.warnings) {
      for (std::string& w : hooks_.warnings()) warnings.emplace_back(std::move(w));
    }
    co_return Json(ready ? 200 : 503, boost::json::serialize(body));
  }
  if (path == "/metrics") co_return Text(200, metrics_.Render(), "text/plain; version=0.0.4");
  co_return ErrorResponse(404, "invalid_request_error", "not_found",
                          "Unknown path " + std::string(path) + ".");
}

asio::awaitable<void> AdminApi::Route(http::Request& request, http::ResponseWriter& writer) {
  std::string_view target = request.target();
  std::string_view path = target.substr(0, target.find('?'));
  if (!path.starts_with("/admin/v1/")) {
    co_await writer.Send(co_await Probe(request, path));
    co_return;
  }
  if (!Authorized(request)) {
    co_await writer.Send(ErrorResponse(401, "invalid_request_error", "invalid_admin_token",
                                       "Missing or wrong admin token. Send "
                                       "'Authorization: Bearer <admin.token>'."));
    co_return;
  }
  auto read = ReadQuery(request, path);
  if (auto* refused = std::get_if<http::Response>(&read)) {
    co_await writer.Send(std::move(*refused));
    co_return;
  }
  const AdminQuery& query = std::get<AdminQuery>(read);
  if (auto wrong = WrongMethod(request, path)) {
    co_await writer.Send(std::move(*wrong));
    co_return;
  }
  http::Response answer;
  if (path == "/admin/v1/reload") {
    answer = Reload(query);
  } else if (path == "/admin/v1/models") {
    answer = Json(200, hooks_.models_json());
  } else if (path == "/admin/v1/keys" || path.starts_with("/admin/v1/keys/")) {
    answer = co_await HandleKeys(request, path);
  } else if (path == "/admin/v1/tenants" || path.starts_with("/admin/v1/tenants/")) {
    answer = co_await HandleTenants(request, path);
  } else if (path == "/admin/v1/usage") {
    size_t q = target.find('?');
    answer =
        co_await Usage(q == std::string_view::npos ? std::string_view() : target.substr(q + 1));
  } else {
    answer = ErrorResponse(404, "invalid_request_error", "not_found",
                           "Unknown admin route " + std::string(request.method_string()) + " " +
                               std::string(path) + ".");
  }
  co_await writer.Send(std::move(answer));
}

}  // namespace trl
