// GET /admin/v1/usage: validates the query (a model alias stands for its model), then has the app
// write this instance's pending usage and query the store (off the admin thread), and answers
// JSON or CSV.
#include "admin/admin_api.h"
#include "proxy/errors.h"

namespace trl {

asio::awaitable<http::Response> AdminApi::Usage(std::string_view query_string) {
  ParsedUsageQuery parsed = ParseUsageQuery(query_string, hooks_.clock->NowMicros() / 1'000'000);
  if (parsed.error) {
    co_return ErrorResponse(400, "invalid_request_error", "invalid_request", parsed.error->message,
                            parsed.error->param);
  }
  UsageQuery& query = *parsed.query;
  // Rows are kept under canonical model names: an alias asks for its model's.
  if (query.model) {
    if (const Model* model = hooks_.snapshot()->models.Find(*query.model)) {
      query.model = model->config->name;
    }
  }
  UsageResult result = co_await hooks_.usage(query);
  if (!result.ok) {
    co_return ErrorResponse(503, "api_error", "store_unavailable",
                            "The usage store did not answer: " + result.error + ". Retry later.");
  }
  http::Response res{http::bhttp::status::ok, 11};
  if (query.csv) {
    res.set(http::bhttp::field::content_type, "text/csv; charset=utf-8");
    res.body() = RenderUsageCsv(query, result);
  } else {
    res.set(http::bhttp::field::content_type, "application/json");
    // The currency of the config in force now: usage keeps no currency of its own.
    res.body() = RenderUsageJson(query, result, hooks_.snapshot()->config->currency);
  }
  co_return res;
}

}  // namespace trl
