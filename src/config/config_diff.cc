#include "config/config_diff.h"

#include <algorithm>
#include <functional>

namespace trl {
namespace {

template <typename T>
using FieldsOf = std::function<std::vector<std::string>(const T&, const T&)>;

// Matches the items of two lists by name; `fields` names what differs between two of a name.
template <typename T>
NamedChanges DiffByName(const std::vector<T>& running, const std::vector<T>& next,
                        const FieldsOf<T>& fields) {
  auto find = [](const std::vector<T>& items, const std::string& name) -> const T* {
    auto it = std::find_if(items.begin(), items.end(), [&](const T& t) { return t.name == name; });
    return it == items.end() ? nullptr : &*it;
  };
  NamedChanges out;
  for (const T& n : next) {
    const T* r = find(running, n.name);
    if (!r) {
      out.added.push_back(n.name);
    } else if (std::vector<std::string> changed = fields(*r, n); !changed.empty()) {
      out.changed.push_back({n.name, std::move(changed)});
    }
  }
  for (const T& r : running) {
    if (!find(next, r.name)) out.removed.push_back(r.name);
  }
  return out;
}

// Appends `name` to `out` when `same` is false.
void Check(std::vector<std::string>& out, const char* name, bool same) {
  if (!same) out.emplace_back(name);
}

std::vector<std::string> ModelFields(const ModelConfig& a, const ModelConfig& b) {
  auto urls = [](const ModelConfig& m) {
    std::vector<std::string> out;
    for (const BackendUrl& u : m.backends) out.push_back(u.url);
    return out;
  };
  const MediaTokens &ma = a.media_tokens, &mb = b.media_tokens;
  std::vector<std::string> out;
  Check(out, "aliases", a.aliases == b.aliases);
  Check(out, "backends", urls(a) == urls(b));
  Check(out, "tokenizer", a.tokenizer == b.tokenizer);
  Check(out, "chat_template", a.chat_template == b.chat_template);
  Check(out, "max_output_tokens", a.max_output_tokens == b.max_output_tokens);
  Check(out, "media_tokens",
        ma.image == mb.image && ma.audio == mb.audio && ma.video == mb.video &&
            ma.file == mb.file && ma.audio_second == mb.audio_second);
  Check(out, "prices", a.prices == b.prices);
  Check(out, "cached_token_weight", a.cached_token_weight == b.cached_token_weight);
  Check(out, "passthrough", a.passthrough == b.passthrough);
  Check(out, "timeout", a.timeout == b.timeout);
  Check(out, "request_timeout", a.request_timeout == b.request_timeout);
  return out;
}

std::vector<std::string> KeyFields(const ApiKeyConfig& a, const ApiKeyConfig& b) {
  std::vector<std::string> out;
  Check(out, "key", a.key_sha256 == b.key_sha256);  // named, never shown
  Check(out, "tenant", a.tenant == b.tenant);
  Check(out, "models", a.models == b.models);
  Check(out, "limits", a.limits_set == b.limits_set && a.limits == b.limits);
  Check(out, "queue", a.queue == b.queue);
  Check(out, "expires_at", a.expires_at == b.expires_at);
  return out;
}

std::vector<std::string> TenantFields(const TenantConfig& a, const TenantConfig& b) {
  std::vector<std::string> out;
  Check(out, "limits", a.limits == b.limits);
  Check(out, "queue", a.queue == b.queue);
  return out;
}

// The settings a reload applies besides the lists (RestartOnlyChanges has the others).
std::vector<std::string> AppliedSettings(const Config& a, const Config& b) {
  std::vector<std::string> out;
  Check(out, "admin.token", a.admin.token == b.admin.token);  // named, never shown
  Check(out, "currency", a.currency == b.currency);
  Check(out, "identity.source", a.identity.source == b.identity.source);
  Check(out, "identity.header", a.identity.header == b.identity.header);
  Check(out, "identity.max_identities", a.identity.max_identities == b.identity.max_identities);
  Check(out, "identity.user_header", a.identity.user_header == b.identity.user_header);
  Check(out, "server.trusted_proxies", a.server.trusted_proxies == b.server.trusted_proxies);
  Check(out, "store.on_store_error", a.store.on_store_error == b.store.on_store_error);
  Check(out, "store.key_sync_max_stale", a.store.key_sync_max_stale == b.store.key_sync_max_stale);
  return out;
}

boost::json::array Strings(const std::vector<std::string>& items) {
  boost::json::array out;
  for (const std::string& s : items) out.emplace_back(s);
  return out;
}

boost::json::object NamedJson(const NamedChanges& c) {
  boost::json::array changed;
  for (const ChangedItem& item : c.changed) {
    boost::json::object o;
    o["name"] = item.name;
    o["fields"] = Strings(item.fields);
    changed.emplace_back(std::move(o));
  }
  boost::json::object o;
  o["added"] = Strings(c.added);
  o["removed"] = Strings(c.removed);
  o["changed"] = std::move(changed);
  return o;
}

std::string Joined(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += separator;
    out += items[i];
  }
  return out;
}

// "added a, b; removed c; changed d (limits, tenant)".
std::string NamedText(const NamedChanges& c) {
  std::vector<std::string> parts;
  if (!c.added.empty()) parts.push_back("added " + Joined(c.added, ", "));
  if (!c.removed.empty()) parts.push_back("removed " + Joined(c.removed, ", "));
  if (!c.changed.empty()) {
    std::vector<std::string> items;
    for (const ChangedItem& item : c.changed) {
      items.push_back(item.name + " (" + Joined(item.fields, ", ") + ")");
    }
    parts.push_back("changed " + Joined(items, ", "));
  }
  return Joined(parts, "; ");
}

}  // namespace

bool ConfigDiff::Empty() const {
  return models.Empty() && api_keys.Empty() && tenants.Empty() && !default_limits &&
         settings.empty() && restart_required.empty();
}

ConfigDiff DiffConfigs(const Config& running, const Config& next) {
  ConfigDiff diff;
  diff.models = DiffByName<ModelConfig>(running.models, next.models, ModelFields);
  diff.api_keys = DiffByName<ApiKeyConfig>(running.api_keys, next.api_keys, KeyFields);
  diff.tenants = DiffByName<TenantConfig>(running.tenants, next.tenants, TenantFields);
  diff.default_limits = running.default_limits != next.default_limits;
  diff.settings = AppliedSettings(running, next);
  diff.restart_required = RestartOnlyChanges(running, next);
  return diff;
}

boost::json::object ConfigDiffToJson(const ConfigDiff& diff) {
  boost::json::object o;
  o["models"] = NamedJson(diff.models);
  o["api_keys"] = NamedJson(diff.api_keys);
  o["tenants"] = NamedJson(diff.tenants);
  o["default_limits"] = diff.default_limits;
  o["settings"] = Strings(diff.settings);
  o["restart_required"] = Strings(diff.restart_required);
  return o;
}

std::string ConfigDiffToText(const ConfigDiff& diff) {
  if (diff.Empty()) return "no changes\n";
  std::string out;
  auto line = [&out](std::string_view label, const std::string& text) {
    if (!text.empty()) out += std::string(label) + ": " + text + "\n";
  };
  line("models", NamedText(diff.models));
  line("api_keys", NamedText(diff.api_keys));
  line("tenants", NamedText(diff.tenants));
  line("default_limits", diff.default_limits ? "changed" : "");
  line("settings", Joined(diff.settings, ", "));
  line("restart required", Joined(diff.restart_required, ", "));
  return out;
}

}  // namespace trl
