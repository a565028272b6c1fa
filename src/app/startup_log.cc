#include "app/startup_log.h"

#include "common/redis_url.h"

namespace trl {
namespace {

std::string Joined(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += separator;
    out += p;
  }
  return out;
}

std::string StoreLine(const StoreConfig& store) {
  std::string line;
  if (store.backend == StoreBackend::kMemory) {
    line = "store: memory, data_dir " + store.data_dir;
  } else {
    std::vector<std::string> urls;
    for (const auto& url : store.redis.urls) {
      const auto parsed = ParseRedisUrl(url, nullptr);
      urls.push_back(parsed ? parsed->Redacted() : "(unreadable URL)");
    }
    line = std::string("store: redis ") + (urls.size() > 1 ? "cluster " : "") + Joined(urls, ", ");
    if (store.journal) line += ", journal in " + store.data_dir + "/journal";
  }
  if (!store.journal) line += ", journal off";
  return line;
}

std::string ModelsLine(const std::vector<ModelConfig>& models) {
  std::vector<std::string> each;
  for (const auto& m : models) {
    std::string text = m.name;
    if (!m.aliases.empty()) text += " (aliases " + Joined(m.aliases, ", ") + ")";
    std::vector<std::string> urls;
    for (const auto& b : m.backends) urls.push_back(b.url);
    each.push_back(text + " -> " + Joined(urls, ", "));
  }
  return "models: " + Joined(each, "; ");
}

std::string KeysLine(const Config& config, std::optional<size_t> api_made) {
  std::string line = "keys: " + std::to_string(config.api_keys.size()) + " in the config, ";
  line += api_made ? std::to_string(*api_made) + " made through the admin API"
                   : "those made through the admin API loaded at the first key sync";
  return line + "; tenants: " + std::to_string(config.tenants.size());
}

}  // namespace

std::vector<std::string> StartupLines(const StartupFacts& facts) {
  const Config& config = *facts.config;
  std::string first = "token-rate-limiter " + std::string(facts.version) + " started with config " +
                      std::string(facts.config_path) + "; listening on " + facts.data_listener +
                      " (data plane)";
  first += facts.admin_listener.empty() ? ", no admin listener"
                                        : ", " + facts.admin_listener + " (admin)";
  return {first, StoreLine(config.store), ModelsLine(config.models),
          KeysLine(config, facts.api_made_keys)};
}

}  // namespace trl
