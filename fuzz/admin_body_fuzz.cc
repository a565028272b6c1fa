// The admin API's JSON bodies as admin/admin_keys.cc reads them: the body must be an object; its
// `limits`, written as in the config file, go through ParseLimitsJson as the handlers pass them,
// against a config with one model; its `name` through IsValidKeyName.
// And the input as a key record kept in the store (keys/key_record.h), which has the same limits.
//
// Limits that parse, written back with LimitsToJson, parse to the same limits; a record that
// parses, written back with SerializeKeyRecord, parses to the same record.
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/config.h"
#include "fuzz_check.h"
#include "keys/key_record.h"

namespace {

const trl::Config& ConfigWithModel() {
  static const std::shared_ptr<const trl::Config> config = [] {
    trl::LoadResult loaded = trl::LoadConfigText(R"(
listen: 127.0.0.1:0
models:
  - name: llama2-7b
    aliases: [meta-llama/Llama-2-7b-chat-hf]
    backends: [http://127.0.0.1:8000]
tenants:
  - name: acme
    limits: [{tokens: 1000000, per: 1m}]
)",
                                                 [](const std::string&) { return std::nullopt; });
    TRL_FUZZ_CHECK(loaded.config != nullptr);
    return loaded.config;
  }();
  return *config;
}

void CheckLimits(const boost::json::value& limits) {
  const trl::Config& config = ConfigWithModel();
  trl::LimitsParse parsed = trl::ParseLimitsJson(limits, "limits", &config);
  if (!parsed.errors.empty()) return;
  const boost::json::value written =
      boost::json::parse(boost::json::serialize(trl::LimitsToJson(parsed.limits)));
  trl::LimitsParse again = trl::ParseLimitsJson(written, "limits", &config);
  TRL_FUZZ_CHECK(again.errors.empty());
  TRL_FUZZ_CHECK(again.limits == parsed.limits);
}

void CheckRecord(std::string_view json) {
  std::optional<trl::KeyRecord> record = trl::ParseKeyRecord(json);
  if (!record) return;
  std::optional<trl::KeyRecord> again = trl::ParseKeyRecord(trl::SerializeKeyRecord(*record));
  TRL_FUZZ_CHECK(again.has_value());
  TRL_FUZZ_CHECK(again->key.name == record->key.name);
  TRL_FUZZ_CHECK(again->key.key_sha256 == record->key.key_sha256);
  TRL_FUZZ_CHECK(again->key.tenant == record->key.tenant);
  TRL_FUZZ_CHECK(again->key.models == record->key.models);
  TRL_FUZZ_CHECK(again->key.limits_set == record->key.limits_set);
  TRL_FUZZ_CHECK(again->key.limits == record->key.limits);
  TRL_FUZZ_CHECK(again->created == record->created && again->updated == record->updated);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  boost::system::error_code ec;
  const boost::json::value body = boost::json::parse(json, ec);
  if (!ec && body.is_object()) {
    const boost::json::object& o = body.as_object();
    if (const auto* name = o.if_contains("name"); name && name->is_string()) {
      (void)trl::IsValidKeyName(name->as_string());
    }
    if (const auto* limits = o.if_contains("limits"); limits && limits->is_array()) {
      CheckLimits(*limits);
    }
  }
  CheckRecord(json);
  return 0;
}
