#include "keys/key_record.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "common/crypto.h"
#include "common/money.h"
#include "config/limit_text.h"

namespace trl {

boost::json::object LimitToJson(const LimitConfig& limit) {
  boost::json::object o;
  if (limit.kind == LimitKind::kSpend) {
    o[LimitKindName(limit.kind)] = FormatMoney(limit.amount);  // exact, as a decimal string
  } else {
    o[LimitKindName(limit.kind)] = limit.amount;
  }
  if (limit.kind != LimitKind::kConcurrent) {
    o["per"] = FormatPeriod(limit.per);
    if (limit.calendar) o["reset"] = "calendar";
  }
  if (!limit.model.empty()) o["model"] = limit.model;
  if (limit.per_user) o["scope"] = "user";
  return o;
}

boost::json::array LimitsToJson(std::span<const LimitConfig> limits) {
  boost::json::array a;
  for (const auto& l : limits) a.push_back(LimitToJson(l));
  return a;
}

boost::json::value QueueToJson(const QueueConfig& queue) {
  if (!queue.Enabled()) return nullptr;
  return boost::json::object{{"max_wait", FormatPeriod(queue.max_wait)},
                             {"max_queued", queue.max_queued}};
}

std::string SerializeKeyRecord(const KeyRecord& record) {
  const ApiKeyConfig& k = record.key;
  boost::json::object o;
  o["name"] = k.name;
  o["sha256"] = ToHex(k.key_sha256);
  o["tenant"] = k.tenant;
  boost::json::array models;
  for (const auto& m : k.models) models.push_back(boost::json::string(m));
  o["models"] = std::move(models);
  if (k.limits_set) o["limits"] = LimitsToJson(k.limits);
  if (k.queue.Enabled()) o["queue"] = QueueToJson(k.queue);
  o["created"] = record.created;
  o["updated"] = record.updated;
  if (k.expires_at) o["expires_at"] = k.expires_at;
  if (record.revision) o["rev"] = record.revision;
  if (record.previous_until) {
    o["previous_sha256"] = ToHex(record.previous_sha256);
    o["previous_until"] = record.previous_until;
  }
  return boost::json::serialize(o);
}

std::optional<KeyRecord> ParseKeyRecord(std::string_view json) {
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(json, ec);
  if (ec || !doc.is_object()) return std::nullopt;
  const auto& o = doc.as_object();
  auto str = [&](std::string_view field) -> const boost::json::string* {
    auto* v = o.if_contains(field);
    return v && v->is_string() ? &v->as_string() : nullptr;
  };
  auto integer = [&](std::string_view field) -> std::optional<int64_t> {
    auto* v = o.if_contains(field);
    if (!v || !v->is_int64()) return std::nullopt;
    return v->as_int64();
  };
  const auto* name = str("name");
  const auto* sha = str("sha256");
  const auto* tenant = str("tenant");
  const auto* models = o.if_contains("models");
  auto created = integer("created");
  auto updated = integer("updated");
  if (!name || !sha || !tenant || !models || !models->is_array() || !created || !updated) {
    return std::nullopt;
  }
  KeyRecord r;
  r.key.name = std::string(*name);
  if (!IsValidKeyName(r.key.name)) return std::nullopt;
  auto digest = Sha256FromHex(*sha);
  if (!digest) return std::nullopt;
  r.key.key_sha256 = *digest;
  r.key.tenant = std::string(*tenant);
  for (const auto& m : models->as_array()) {
    if (!m.is_string()) return std::nullopt;
    r.key.models.emplace_back(m.as_string());
  }
  if (const auto* limits = o.if_contains("limits")) {
    LimitsParse parsed = ParseLimitsJson(*limits, "limits", nullptr);
    if (!parsed.errors.empty()) return std::nullopt;
    r.key.limits = std::move(parsed.limits);
    r.key.limits_set = true;
  }
  if (const auto* queue = o.if_contains("queue")) {
    QueueParse parsed = ParseQueueJson(*queue, "queue");
    if (!parsed.errors.empty()) return std::nullopt;
    r.key.queue = parsed.queue;
  }
  r.created = *created;
  r.updated = *updated;
  // Fields a record has only when they are set (and records of earlier releases never).
  auto optional_integer = [&](std::string_view field, int64_t& into) {
    if (!o.contains(field)) return true;
    auto value = integer(field);
    if (!value || *value < 0) return false;
    into = *value;
    return true;
  };
  if (!optional_integer("expires_at", r.key.expires_at) || !optional_integer("rev", r.revision) ||
      !optional_integer("previous_until", r.previous_until)) {
    return std::nullopt;
  }
  if (r.previous_until) {
    const auto* previous = str("previous_sha256");
    auto previous_digest = previous ? Sha256FromHex(*previous) : std::nullopt;
    if (!previous_digest) return std::nullopt;
    r.previous_sha256 = *previous_digest;
  }
  return r;
}

}  // namespace trl
