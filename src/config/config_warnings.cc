// ConfigWarnings (config.h): what a valid config probably gets wrong.
#include <algorithm>
#include <array>
#include <cctype>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace trl {
namespace {

// Admin tokens that are examples or placeholders: the shipped configs' defaults and their kind.
bool IsPlaceholderToken(std::string_view token) {
  std::string lower(token);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  constexpr std::array<std::string_view, 8> kParts = {"change-me",   "changeme",        "change_me",
                                                      "replace-me",  "replaceme",       "example",
                                                      "placeholder", "demo-admin-token"};
  constexpr std::array<std::string_view, 5> kWhole = {"admin", "secret", "token", "password",
                                                      "test"};
  return std::any_of(kParts.begin(), kParts.end(),
                     [&](std::string_view p) { return lower.find(p) != std::string::npos; }) ||
         std::find(kWhole.begin(), kWhole.end(), lower) != kWhole.end();
}

void AdminTokenWarnings(const AdminConfig& admin, std::vector<std::string>& out) {
  if (!admin.listen) return;  // no admin API: its token is never asked for
  if (admin.token.empty()) {
    out.emplace_back("admin.token: not set: every /admin/v1 route answers 401");
  } else if (IsPlaceholderToken(admin.token)) {
    out.emplace_back("admin.token: an example value: set a secret of your own");
  } else if (admin.token.size() < kMinSecretLength) {
    out.push_back("admin.token: shorter than " + std::to_string(kMinSecretLength) +
                  " characters: easy to guess");
  }
}

void KeySecretWarnings(const std::vector<ApiKeyConfig>& keys, std::vector<std::string>& out) {
  for (size_t i = 0; i < keys.size(); ++i) {
    const size_t length = keys[i].key_length;
    if (length == 0 || length >= kMinSecretLength) continue;  // 0: given as key_sha256
    out.push_back("api_keys[" + std::to_string(i) + "].key: " + std::to_string(length) +
                  " characters; use " + std::to_string(kMinSecretLength) +
                  " or more (e.g. openssl rand -hex 24)");
  }
}

// Token limits below `model`'s max_output_tokens in `limits` (at `path`): a request without
// max_tokens reserves max_output_tokens plus its prompt, more than such a limit ever holds.
void OutputCapWarnings(const ModelConfig& model, size_t model_index,
                       const std::vector<LimitConfig>& limits, const std::string& path,
                       std::vector<std::string>& out) {
  for (size_t i = 0; i < limits.size(); ++i) {
    const LimitConfig& l = limits[i];
    if (l.kind != LimitKind::kTokens || (!l.model.empty() && l.model != model.name)) continue;
    if (model.max_output_tokens <= l.amount) continue;
    out.push_back("models[" + std::to_string(model_index) +
                  "].max_output_tokens: " + std::to_string(model.max_output_tokens) +
                  " is more than the " + std::to_string(l.amount) + " tokens of " + path + "[" +
                  std::to_string(i) + "]: a request to " + model.name +
                  " without max_tokens would be refused (400); lower it or raise the limit");
  }
}

void ModelWarnings(const Config& c, std::vector<std::string>& out) {
  for (size_t m = 0; m < c.models.size(); ++m) {
    const ModelConfig& model = c.models[m];
    for (size_t b = 0; b < model.backends.size(); ++b) {
      if (!model.backends[b].base_path.ends_with("/v1")) continue;
      out.push_back("models[" + std::to_string(m) + "].backends[" + std::to_string(b) +
                    "]: ends in /v1, which the gateway adds itself (requests would go to "
                    ".../v1/v1/chat/completions, health checks to .../v1/health): leave it out");
    }
    OutputCapWarnings(model, m, c.default_limits, "default_limits", out);
    for (size_t t = 0; t < c.tenants.size(); ++t) {
      OutputCapWarnings(model, m, c.tenants[t].limits, "tenants[" + std::to_string(t) + "].limits",
                        out);
    }
    for (size_t k = 0; k < c.api_keys.size(); ++k) {
      const auto& allowed = c.api_keys[k].models;
      if (!allowed.empty() &&
          std::find(allowed.begin(), allowed.end(), model.name) == allowed.end()) {
        continue;
      }
      OutputCapWarnings(model, m, c.api_keys[k].limits,
                        "api_keys[" + std::to_string(k) + "].limits", out);
    }
  }
}

}  // namespace

std::vector<std::string> ConfigWarnings(const Config& config) {
  std::vector<std::string> out;
  AdminTokenWarnings(config.admin, out);
  KeySecretWarnings(config.api_keys, out);
  ModelWarnings(config, out);
  return out;
}

}  // namespace trl
