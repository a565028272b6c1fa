// Changes to a key made through the admin API: PATCH /admin/v1/keys/{name} (tenant, models,
// limits, expiry), PUT /admin/v1/keys/{name}/limits, and POST /admin/v1/keys/{name}/rotate (a
// new secret; the old one valid for a grace period). Each is written over the record it was made
// from (KeyStore::Replace), so that no change undoes another made meanwhile: a rotation cannot
// be undone by a limits change sent at the same time to another instance.
#include <boost/json/value.hpp>

#include "admin/admin_api.h"
#include "admin/admin_key_fields.h"
#include "admin/admin_views.h"
#include "common/crypto.h"
#include "proxy/errors.h"

namespace trl {
namespace {

// Tries at writing a change before answering 409: each failed one means another change of the
// same key was written in between.
constexpr int kAttempts = 3;
constexpr Millis kMaxGracePeriod = std::chrono::hours(24 * 30);

http::Response ChangedMeanwhile(std::string_view name) {
  return ErrorResponse(409, "invalid_request_error", "key_changed",
                       "The key '" + std::string(name) +
                           "' kept changing while this change was written; send it again.");
}

// The grace period of a rotation's body ({"grace_period": "1h"}; none: 0), or the 400.
std::variant<Millis, http::Response> GracePeriod(const boost::json::object& body) {
  const auto* v = body.if_contains("grace_period");
  if (!v || v->is_null()) return Millis(0);
  std::optional<Millis> grace = v->is_string() ? ParseDuration(v->as_string()) : std::nullopt;
  if (!grace || *grace > kMaxGracePeriod) {
    return BadRequest(
        "grace_period must be a duration of at most 30d, e.g. \"1h\" (\"0s\" or none: the old "
        "secret stops at once).",
        "grace_period");
  }
  return *grace;
}

}  // namespace

asio::awaitable<std::variant<KeyRecord, http::Response>> AdminApi::ChangeKey(std::string_view name,
                                                                             const KeyEdit& edit) {
  if (hooks_.snapshot()->auth.ConfigKey(name)) co_return ManagedByConfig(name);
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    const auto found = hooks_.keys->Current()->FindByName(name);
    if (!found) co_return KeyNotFound(name);
    KeyRecord record = *found;
    if (auto error = edit(record)) co_return std::move(*error);
    record.revision = found->revision + 1;
    record.updated = NowSeconds();
    const KeyStore::WriteStatus status = co_await hooks_.keys->Replace(record, *found);
    if (status == KeyStore::WriteStatus::kOk) co_return record;
    if (status == KeyStore::WriteStatus::kNotFound) co_return KeyNotFound(name);
    if (status != KeyStore::WriteStatus::kConflict) co_return StoreUnavailable();
    // Changed meanwhile (here, or on another instance and not synced yet): read it again.
    std::string error;
    const bool synced = co_await hooks_.keys->Sync(false, &error);
    if (!synced) co_return StoreUnavailable();
  }
  co_return ChangedMeanwhile(name);
}

asio::awaitable<http::Response> AdminApi::PatchKey(const http::Request& request,
                                                   std::string_view name) {
  auto snap = hooks_.snapshot();
  auto body = BodyObject(request);
  if (auto* error = std::get_if<http::Response>(&body)) co_return std::move(*error);
  const auto& o = std::get<boost::json::object>(body);
  if (auto error =
          UnknownField(o, {"tenant", "models", "limits", "queue", "expires_at"},
                       "A key's tenant, models, limits, queue and expires_at can change.")) {
    co_return std::move(*error);
  }
  if (o.empty()) {
    co_return BadRequest(
        "The body names no field to change (tenant, models, limits, queue, expires_at).", "");
  }
  const KeyEdit edit = [&](KeyRecord& record) { return ApplyKeyFields(o, *snap, record.key); };
  auto changed = co_await ChangeKey(name, edit);
  if (auto* error = std::get_if<http::Response>(&changed)) co_return std::move(*error);
  const auto& record = std::get<KeyRecord>(changed);
  co_return JsonResponse(200, KeyView(*snap->config, record.key, &record, record.updated));
}

asio::awaitable<http::Response> AdminApi::ReplaceLimits(const http::Request& request,
                                                        std::string_view name) {
  auto body = BodyObject(request);
  if (auto* error = std::get_if<http::Response>(&body)) co_return std::move(*error);
  const auto& o = std::get<boost::json::object>(body);
  const auto* limits = o.if_contains("limits");
  if (!limits || !limits->is_array() || o.size() != 1) {
    co_return BadRequest("The body must be {\"limits\": [...]}, the limits as in the config file.",
                         "limits");
  }
  // The same change as a PATCH of the limits alone.
  http::Response res = co_await PatchKey(request, name);
  co_return res;
}

asio::awaitable<http::Response> AdminApi::RotateKey(const http::Request& request,
                                                    std::string_view name) {
  auto snap = hooks_.snapshot();
  auto body = BodyObject(request, /*empty_is_object=*/true);
  if (auto* error = std::get_if<http::Response>(&body)) co_return std::move(*error);
  const auto& o = std::get<boost::json::object>(body);
  if (auto error = UnknownField(o, {"grace_period"}, "A rotation takes grace_period.")) {
    co_return std::move(*error);
  }
  auto grace = GracePeriod(o);
  if (auto* error = std::get_if<http::Response>(&grace)) co_return std::move(*error);
  const int64_t grace_seconds =
      std::chrono::ceil<std::chrono::seconds>(std::get<Millis>(grace)).count();
  // The secret exists only in this scope and in the 200 body.
  std::string secret;
  const KeyEdit edit = [&](KeyRecord& record) -> std::optional<http::Response> {
    secret = NewSecretKey(32);
    // The secret replaced stays valid for the grace period; a previous one still in its grace
    // period stops now.
    const bool grace = grace_seconds > 0;
    record.previous_sha256 = grace ? record.key.key_sha256 : Sha256{};
    record.previous_until = grace ? NowSeconds() + grace_seconds : 0;
    record.key.key_sha256 = Sha256Of(secret);
    return std::nullopt;
  };
  auto changed = co_await ChangeKey(name, edit);
  if (auto* error = std::get_if<http::Response>(&changed)) co_return std::move(*error);
  const auto& record = std::get<KeyRecord>(changed);
  boost::json::object view = KeyView(*snap->config, record.key, &record, record.updated);
  view["key"] = secret;
  std::fill(secret.begin(), secret.end(), '\0');
  co_return JsonResponse(200, view);
}

}  // namespace trl
