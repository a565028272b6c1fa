#include "config/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <unordered_map>
#include <utility>
#include <variant>

#include "common/crypto.h"
#include "common/decimal.h"
#include "common/redis_url.h"
#include "common/rfc3339.h"
#include "config/limit_text.h"

namespace trl {
namespace {

constexpr int64_t kMaxAmount = 1'000'000'000'000'000;  // 1e15: far above any real budget
constexpr int kMaxThreads = 256;
// Every duration (a limit's period, a timeout, a retention) is at most this, 100 years: a period
// in microseconds then stays below 2^52, and a time plus a period below 2^53, which the
// limiter's arithmetic and Redis's Lua doubles need.
constexpr Millis kMaxDuration = std::chrono::days(36'500);
constexpr std::string_view kDurationHelp = "not a duration (use 250ms, 2s, 1m, 1h, 1d)";

bool IsIdentStart(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool IsIdentChar(char c) { return IsIdentStart(c) || (c >= '0' && c <= '9'); }

// ---------------------------------------------------------------------------------------------
// ${VAR} / ${VAR:-default} substitution into the parsed document's values.
//
// A reference may stand anywhere in a value (inside quotes, in a flow list, as part of a URL),
// but a variable's text is never read as YAML: a secret holding a quote, " #", ": " or a
// newline is taken whole and cannot cut a value short or add keys. So before parsing, each
// reference is replaced by a marker that reads as plain text in any YAML context; after
// parsing, each marker in a scalar value becomes the variable's value. Mapping keys keep the
// reference as written, and a reference in a comment goes with the comment. Values are never
// echoed in errors: they are usually secrets.
// ---------------------------------------------------------------------------------------------
class EnvSubstitution {
 public:
  EnvSubstitution(const EnvLookup& env, std::vector<std::string>& errors)
      : env_(env), errors_(errors) {}

  // The text with each well-formed reference replaced by its marker. Whole-line comments are
  // copied as they are, so a commented-out `# token: ${OLD}` is neither checked nor looked up.
  std::string MarkReferences(const std::string& text) {
    std::string out;
    out.reserve(text.size());
    size_t line_no = 0;
    for (size_t pos = 0; pos < text.size();) {
      ++line_no;
      size_t eol = text.find('\n', pos);
      size_t end = eol == std::string::npos ? text.size() : eol + 1;
      std::string_view line(text.data() + pos, end - pos);
      pos = end;
      size_t first = line.find_first_not_of(" \t");
      if (first != std::string_view::npos && line[first] == '#') {
        out.append(line);
        continue;
      }
      for (size_t i = 0; i < line.size();) {
        size_t at = line.find("${", i);
        out.append(line.substr(i, at == std::string_view::npos ? at : at - i));
        if (at == std::string_view::npos) break;
        std::optional<Reference> ref = ParseReference(line, at);
        if (!ref) {
          errors_.push_back("line " + std::to_string(line_no) +
                            ": malformed ${...} reference (expected ${VAR} or ${VAR:-default})");
          out.push_back('$');
          i = at + 1;
          continue;
        }
        out.append(kMarker).append(std::to_string(refs_.size())).append(kMarkerEnd);
        i = ref->end;
        refs_.push_back(std::move(*ref));
      }
    }
    return out;
  }

  // Puts the variables' values into the parsed document `node` (and the references as written
  // back into its keys).
  void Apply(const YAML::Node& node) {
    if (node.IsScalar()) {
      Replace(node, /*with_values=*/true);
    } else if (node.IsSequence()) {
      for (YAML::Node item : node) Apply(item);
    } else if (node.IsMap()) {
      for (auto entry : node) {
        Replace(entry.first, /*with_values=*/false);
        Apply(entry.second);
      }
    }
  }

 private:
  static constexpr std::string_view kMarker = "trl__env__";
  static constexpr std::string_view kMarkerEnd = "__";

  struct Reference {
    std::string written;  // "${NAME}" or "${NAME:-default}"
    std::string name;
    std::optional<std::string> fallback;
    size_t end = 0;  // in the line: one past the closing "}"
  };

  // The reference that starts at line[at] ("${"): NAME, then "}" or ":-default}".
  static std::optional<Reference> ParseReference(std::string_view line, size_t at) {
    Reference ref;
    size_t j = at + 2;
    if (j < line.size() && IsIdentStart(line[j])) {
      while (j < line.size() && IsIdentChar(line[j])) ++j;
    }
    ref.name = std::string(line.substr(at + 2, j - at - 2));
    if (ref.name.empty()) return std::nullopt;
    if (line.substr(j, 2) == ":-") {
      size_t close = line.find('}', j + 2);
      size_t nested = line.find("${", j + 2);
      if (close == std::string_view::npos || (nested != std::string_view::npos && nested < close)) {
        return std::nullopt;
      }
      ref.fallback = std::string(line.substr(j + 2, close - j - 2));
      j = close;
    }
    if (j >= line.size() || line[j] != '}') return std::nullopt;
    ref.end = j + 1;
    ref.written = std::string(line.substr(at, ref.end - at));
    return ref;
  }

  // Replaces the markers in a scalar by the variables' values, or by the references as written.
  void Replace(YAML::Node node, bool with_values) {
    if (!node.IsScalar()) return;
    const std::string text = node.Scalar();
    if (text.find(kMarker) == std::string::npos) return;
    std::string out;
    for (size_t i = 0; i < text.size();) {
      size_t at = text.find(kMarker, i);
      out.append(text, i, at == std::string::npos ? at : at - i);
      if (at == std::string::npos) break;
      size_t index = 0;
      const char* digits = text.data() + at + kMarker.size();
      auto parsed = std::from_chars(digits, text.data() + text.size(), index);
      size_t after = parsed.ptr - text.data();
      if (parsed.ec != std::errc() || index >= refs_.size() ||
          text.compare(after, kMarkerEnd.size(), kMarkerEnd) != 0) {
        out += kMarker;  // the file's own text, not a marker made above
        i = at + kMarker.size();
        continue;
      }
      out += with_values ? Value(refs_[index]) : refs_[index].written;
      i = after + kMarkerEnd.size();
    }
    node = out;
  }

  std::string Value(const Reference& ref) {
    std::optional<std::string> value = env_(ref.name);
    if (ref.fallback && (!value || value->empty())) {
      value = ref.fallback;  // shell semantics: ":-" also replaces an empty value
    }
    if (!value && unset_.insert(ref.name).second) {
      errors_.push_back("${" + ref.name + "}: environment variable not set");
    }
    return value.value_or("");
  }

  const EnvLookup& env_;
  std::vector<std::string>& errors_;
  std::vector<Reference> refs_;
  std::set<std::string> unset_;  // each missing variable is reported once
};

// ---------------------------------------------------------------------------------------------
// Scalar parsers shared by the config and other callers.
// ---------------------------------------------------------------------------------------------
std::optional<int64_t> ParseInt(std::string_view s) {
  if (s.empty()) return std::nullopt;
  int64_t v = 0;
  const char* begin = s.data();
  const char* end = s.data() + s.size();
  if (*begin == '+') ++begin;
  auto [p, ec] = std::from_chars(begin, end, v);
  if (ec != std::errc() || p != end || begin == end) return std::nullopt;
  return v;
}

enum class UrlError { kNotUrl, kHttps };

// http://host[:port][/path]; no user info, query or fragment (none of them means anything to
// a backend pool).
std::variant<BackendUrl, UrlError> ParseBackendUrl(const std::string& url) {
  if (StartsWithNoCase(url, "https://")) return UrlError::kHttps;
  if (!StartsWithNoCase(url, "http://")) return UrlError::kNotUrl;
  std::string_view rest = std::string_view(url).substr(7);
  if (rest.find_first_of("?#@ \t") != std::string_view::npos) return UrlError::kNotUrl;
  size_t slash = rest.find('/');
  auto authority = ParseHostPort(rest.substr(0, slash), uint16_t{80});
  if (!authority || authority->port == 0) return UrlError::kNotUrl;
  BackendUrl b;
  b.url = url;
  b.host = authority->host;
  b.port = authority->port;
  b.authority = b.host + ":" + std::to_string(b.port);
  if (slash != std::string_view::npos) {
    std::string_view path = rest.substr(slash);
    while (!path.empty() && path.back() == '/') path.remove_suffix(1);
    b.base_path = std::string(path);
  }
  return b;
}

// redis://[user:password@]host[:port][/db] or rediss://..., as the Redis client reads it.
bool IsRedisUrl(std::string_view url) { return ParseRedisUrl(url, nullptr).has_value(); }

// RFC 9110 token characters.
bool IsHeaderNameChar(char c) {
  return IsIdentChar(c) || std::strchr("!#$%&'*+-.^`|~", c) != nullptr;
}

// ---------------------------------------------------------------------------------------------
// The validating walker. Every check records "path: message" and keeps going, so one run
// reports every problem in the file.
// ---------------------------------------------------------------------------------------------
using Fields = std::map<std::string, YAML::Node, std::less<>>;

std::string Index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}
std::string Field(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}
std::string Quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out.append(1, '"').append(s).append(1, '"');
  return out;
}

// The IPv4 address `a` is or maps to ("::ffff:127.0.0.1"), if any.
std::optional<boost::asio::ip::address_v4> AsV4(const boost::asio::ip::address& a) {
  if (a.is_v4()) return a.to_v4();
  if (a.to_v6().is_v4_mapped())
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6());
  return std::nullopt;
}

// Whether two listeners would take the same port: the same address, or a wildcard that covers
// the other (0.0.0.0 every IPv4 address; ::, dual-stack on Linux, every address). Port 0 (any
// free port) never clashes; names ("localhost") are compared as written.
bool ListenersOverlap(const HostPort& a, const HostPort& b) {
  if (a.port == 0 || a.port != b.port) return false;
  if (a.host == b.host) return true;
  boost::system::error_code ec_a;
  boost::system::error_code ec_b;
  const auto x = boost::asio::ip::make_address(a.host, ec_a);
  const auto y = boost::asio::ip::make_address(b.host, ec_b);
  if (ec_a || ec_b) return false;
  if (x == y) return true;
  if ((x.is_v6() && x.is_unspecified()) || (y.is_v6() && y.is_unspecified())) return true;
  const auto x4 = AsV4(x);
  const auto y4 = AsV4(y);
  return x4 && y4 && (*x4 == *y4 || x4->is_unspecified() || y4->is_unspecified());
}

class Parser {
 public:
  explicit Parser(std::vector<std::string>& errors) : errors_(errors) {}
  // For parsing limits outside a config file: model references resolve against `config`.
  void IndexModels(const Config& config) {
    for (const auto& m : config.models) {
      model_index_.emplace(m.name, m.name);
      for (const auto& a : m.aliases) model_index_.emplace(a, m.name);
    }
  }
  void AcceptAnyModel() { any_model_ = true; }

  void Parse(const YAML::Node& root, Config& c);
  std::vector<LimitConfig> ParseLimits(const YAML::Node& node, const std::string& path);
  QueueConfig ParseQueue(const YAML::Node& node, const std::string& p);

 private:
  void Error(const std::string& path, std::string_view message) {
    errors_.push_back((path.empty() ? std::string("config") : path) + ": " + std::string(message));
  }

  // A map's fields, after rejecting duplicates and keys outside `allowed`. A null node (an
  // empty section like `server:`) is an empty map. nullopt when the node is not a map.
  std::optional<Fields> Map(const YAML::Node& node, const std::string& path,
                            std::initializer_list<std::string_view> allowed) {
    Fields fields;
    if (node.IsNull()) return fields;
    if (!node.IsMap()) {
      Error(path, "not a map");
      return std::nullopt;
    }
    for (const auto& kv : node) {
      if (!kv.first.IsScalar()) {
        Error(path, "a key is not a string");
        continue;
      }
      const std::string& key = kv.first.Scalar();
      std::string field_path = Field(path, key);
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        Error(field_path, "unknown key");
        continue;
      }
      if (!fields.emplace(key, kv.second).second) Error(field_path, "duplicate key");
    }
    return fields;
  }

  // A list's elements; null is an empty list.
  std::optional<std::vector<YAML::Node>> List(const YAML::Node& node, const std::string& path) {
    std::vector<YAML::Node> items;
    if (node.IsNull()) return items;
    if (!node.IsSequence()) {
      Error(path, "not a list");
      return std::nullopt;
    }
    for (const auto& item : node) items.push_back(item);
    return items;
  }

  // A scalar as text; null is "".
  std::optional<std::string> String(const YAML::Node& node, const std::string& path) {
    if (node.IsNull()) return std::string();
    if (!node.IsScalar()) {
      Error(path, "not a string");
      return std::nullopt;
    }
    return node.Scalar();
  }

  // true or false, as written (not YAML 1.1's yes/no/on/off).
  std::optional<bool> Bool(const YAML::Node& node, const std::string& path) {
    if (node.IsScalar() && (node.Scalar() == "true" || node.Scalar() == "false")) {
      return node.Scalar() == "true";
    }
    Error(path, "must be true or false");
    return std::nullopt;
  }

  std::optional<std::string> NonEmptyString(const YAML::Node& node, const std::string& path) {
    auto s = String(node, path);
    if (s && s->empty()) {
      Error(path, "must not be empty");
      return std::nullopt;
    }
    return s;
  }

  static std::string RangeMessage(int64_t min, int64_t max) {
    bool unbounded = max == std::numeric_limits<int64_t>::max();
    if (min == 1) {
      return unbounded ? "must be a positive integer"
                       : "must be a positive integer <= " + std::to_string(max);
    }
    if (unbounded) return "must be an integer >= " + std::to_string(min);
    return "must be an integer from " + std::to_string(min) + " to " + std::to_string(max);
  }

  std::optional<int64_t> Int(const YAML::Node& node, const std::string& path, int64_t min,
                             int64_t max) {
    std::optional<int64_t> v;
    if (node.IsScalar()) v = ParseInt(node.Scalar());
    if (!v || *v < min || *v > max) {
      Error(path, RangeMessage(min, max));
      return std::nullopt;
    }
    return v;
  }

  // A decimal scaled by 10^decimals (common/money.h), within [min, max].
  std::optional<int64_t> Decimal(const YAML::Node& node, const std::string& path, int decimals,
                                 int64_t min, int64_t max, const char* help) {
    std::optional<int64_t> v;
    if (node.IsScalar()) v = ParseScaledDecimal(node.Scalar(), decimals, max);
    if (!v || *v < min) {
      Error(path, help);
      return std::nullopt;
    }
    return v;
  }

  std::optional<Millis> Duration(const YAML::Node& node, const std::string& path,
                                 bool allow_zero = false) {
    std::optional<Millis> d;
    if (node.IsScalar()) d = ParseDuration(node.Scalar());
    if (!d) {
      Error(path, kDurationHelp);
      return std::nullopt;
    }
    if (!allow_zero && d->count() == 0) {
      Error(path, "must be longer than 0");
      return std::nullopt;
    }
    if (*d > kMaxDuration) {
      Error(path, "must be at most " +
                      std::to_string(
                          std::chrono::duration_cast<std::chrono::days>(kMaxDuration).count()) +
                      "d");
      return std::nullopt;
    }
    return d;
  }

  template <typename T>
  static void Set(std::optional<T> v, T& out) {
    if (v) out = std::move(*v);
  }
  template <typename T, typename U>
  static void SetAs(std::optional<U> v, T& out) {
    if (v) out = static_cast<T>(*v);
  }

  static const YAML::Node* Get(const Fields& f, std::string_view key) {
    auto it = f.find(key);
    return it == f.end() ? nullptr : &it->second;
  }

  void ParseServer(const YAML::Node& node, ServerConfig& s);
  void ParseAdmin(const YAML::Node& node, AdminConfig& a);
  void ParseStore(const YAML::Node& node, StoreConfig& s);
  void ParseIdentity(const YAML::Node& node, IdentityConfig& id);
  void ParseUsage(const YAML::Node& node, UsageConfig& u);
  void ParseAccessLog(const YAML::Node& node, AccessLogConfig& a);
  void ParseModels(const YAML::Node& node, std::vector<ModelConfig>& models);
  // models[i].aliases and .backends (`p`: their path), into `m`.
  void ParseAliases(const YAML::Node& node, const std::string& p, ModelConfig& m);
  void ParseBackends(const YAML::Node& node, const std::string& p, ModelConfig& m);
  // Names and aliases share one namespace: a request's `model` must resolve to one model.
  void ClaimModelName(const std::string& name, const std::string& canonical,
                      const std::string& path);
  void ParseMediaTokens(const YAML::Node& node, const std::string& path, MediaTokens& media);
  void ParseCounting(const Fields& f, const std::string& p, ModelConfig& m);
  void ParsePrices(const YAML::Node& node, const std::string& path, TokenPrices& prices);
  void ParsePassthrough(const YAML::Node& node, const std::string& path, ModelConfig& m);
  void ParseTenants(const YAML::Node& node, std::vector<TenantConfig>& tenants);
  void ParseApiKeys(const YAML::Node& node, const std::vector<TenantConfig>& tenants,
                    std::vector<ApiKeyConfig>& keys);
  // The parts of api_keys[i] (`p`), each into `k`.
  void ParseKeyName(const Fields& f, const std::string& p, std::set<std::string>& seen,
                    ApiKeyConfig& k);
  // The secret: only its digest is kept. False when there is no valid one.
  bool ParseKeySecret(const Fields& f, const std::string& p, ApiKeyConfig& k);
  void ParseKeyTenant(const YAML::Node& node, const std::string& p,
                      const std::vector<TenantConfig>& tenants, ApiKeyConfig& k);
  void ParseKeyModels(const YAML::Node& node, const std::string& p, ApiKeyConfig& k);
  // store.redis.url: one URL or a list of them.
  void ParseRedisUrls(const YAML::Node& node, RedisConfig& r);
  std::optional<LimitConfig> ParseLimit(const YAML::Node& node, const std::string& path);
  std::optional<HostPort> Listen(const YAML::Node& node, const std::string& path);
  // Resolves a model name or alias to its canonical name.
  std::optional<std::string> ModelRef(const YAML::Node& node, const std::string& path);

  std::vector<std::string>& errors_;
  std::unordered_map<std::string, std::string> model_index_;  // name or alias -> canonical name
  bool any_model_ = false;  // model references are taken as written
};

std::optional<HostPort> Parser::Listen(const YAML::Node& node, const std::string& path) {
  std::optional<HostPort> hp;
  if (node.IsScalar()) hp = ParseHostPort(node.Scalar());
  if (!hp) Error(path, "not host:port (e.g. 0.0.0.0:8080 or [::1]:8080)");
  return hp;
}

std::optional<std::string> Parser::ModelRef(const YAML::Node& node, const std::string& path) {
  auto name = NonEmptyString(node, path);
  if (!name) return std::nullopt;
  if (any_model_) return name;
  auto it = model_index_.find(*name);
  if (it == model_index_.end()) {
    Error(path, "unknown model " + Quote(*name));
    return std::nullopt;
  }
  return it->second;
}

void Parser::Parse(const YAML::Node& root, Config& c) {
  if (!root.IsDefined() || root.IsNull()) {
    Error("config", "empty document");
    return;
  }
  auto top = Map(root, "",
                 {"listen", "server", "admin", "store", "identity", "usage", "metrics",
                  "access_log", "models", "tenants", "api_keys", "default_limits", "currency"});
  if (!top) return;
  // Models first: limits and keys refer to them by name or alias.
  if (auto* n = Get(*top, "models")) {
    ParseModels(*n, c.models);
  } else {
    Error("models", "at least one model is required");
  }

  std::optional<HostPort> listen = c.listen;
  if (auto* n = Get(*top, "listen")) listen = Listen(*n, "listen");
  Set(listen, c.listen);
  if (auto* n = Get(*top, "server")) ParseServer(*n, c.server);
  if (auto* n = Get(*top, "admin")) ParseAdmin(*n, c.admin);
  if (listen && c.admin.listen && ListenersOverlap(*listen, *c.admin.listen)) {
    Error("admin.listen", FormatHostPort(c.admin.listen->host, c.admin.listen->port) +
                              " takes the port of listen (" +
                              FormatHostPort(listen->host, listen->port) +
                              "): the admin API needs a port of its own");
  }
  if (auto* n = Get(*top, "store")) ParseStore(*n, c.store);
  if (auto* n = Get(*top, "identity")) ParseIdentity(*n, c.identity);
  if (auto* n = Get(*top, "usage")) ParseUsage(*n, c.usage);
  if (auto* n = Get(*top, "metrics")) {
    if (auto f = Map(*n, "metrics", {"key_label"})) {
      if (auto* k = Get(*f, "key_label")) Set(Bool(*k, "metrics.key_label"), c.metrics.key_label);
    }
  }
  if (auto* n = Get(*top, "access_log")) ParseAccessLog(*n, c.access_log);
  if (auto* n = Get(*top, "currency")) {
    auto code = String(*n, "currency");
    if (code && (code->size() != 3 || !std::all_of(code->begin(), code->end(), [](char ch) {
                   return ch >= 'A' && ch <= 'Z';
                 }))) {
      Error("currency", "expected a three-letter ISO 4217 code, e.g. USD or EUR");
    } else {
      Set(code, c.currency);
    }
  }
  if (auto* n = Get(*top, "tenants")) ParseTenants(*n, c.tenants);
  if (auto* n = Get(*top, "api_keys")) ParseApiKeys(*n, c.tenants, c.api_keys);
  if (auto* n = Get(*top, "default_limits")) c.default_limits = ParseLimits(*n, "default_limits");
}

void Parser::ParseServer(const YAML::Node& node, ServerConfig& s) {
  const std::string p = "server";
  auto f = Map(node, p,
               {"threads", "max_body_bytes", "max_header_bytes", "header_timeout", "idle_timeout",
                "shutdown_grace", "max_connections", "trusted_proxies", "reuse_port"});
  if (!f) return;
  constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
  if (auto* n = Get(*f, "threads")) SetAs(Int(*n, Field(p, "threads"), 0, kMaxThreads), s.threads);
  if (auto* n = Get(*f, "reuse_port")) Set(Bool(*n, Field(p, "reuse_port")), s.reuse_port);
  if (auto* n = Get(*f, "max_body_bytes")) {
    SetAs(Int(*n, Field(p, "max_body_bytes"), 1, kInt64Max), s.max_body_bytes);
  }
  if (auto* n = Get(*f, "trusted_proxies")) {
    auto items = List(*n, Field(p, "trusted_proxies"));
    for (size_t i = 0; items && i < items->size(); ++i) {
      auto text = String((*items)[i], Index(Field(p, "trusted_proxies"), i));
      if (!text) continue;
      if (auto range = ParseIpRange(*text)) {
        s.trusted_proxies.push_back(*range);
      } else {
        Error(Index(Field(p, "trusted_proxies"), i),
              "not an address or range (e.g. 10.0.0.0/8, fd00::/8, 127.0.0.1)");
      }
    }
  }
  if (auto* n = Get(*f, "max_connections")) {
    SetAs(Int(*n, Field(p, "max_connections"), 1, 10'000'000), s.max_connections);
  }
  if (auto* n = Get(*f, "max_header_bytes")) {
    SetAs(Int(*n, Field(p, "max_header_bytes"), 1024, std::numeric_limits<uint32_t>::max()),
          s.max_header_bytes);
  }
  if (auto* n = Get(*f, "header_timeout")) {
    Set(Duration(*n, Field(p, "header_timeout")), s.header_timeout);
  }
  if (auto* n = Get(*f, "idle_timeout"))
    Set(Duration(*n, Field(p, "idle_timeout")), s.idle_timeout);
  if (auto* n = Get(*f, "shutdown_grace")) {
    // 0s is meaningful here: stop at once without draining.
    Set(Duration(*n, Field(p, "shutdown_grace"), /*allow_zero=*/true), s.shutdown_grace);
  }
}

void Parser::ParseAdmin(const YAML::Node& node, AdminConfig& a) {
  auto f = Map(node, "admin", {"listen", "token"});
  if (!f) return;
  if (auto* n = Get(*f, "listen")) a.listen = Listen(*n, "admin.listen");
  if (auto* n = Get(*f, "token")) Set(String(*n, "admin.token"), a.token);
}

void Parser::ParseUsage(const YAML::Node& node, UsageConfig& u) {
  auto f = Map(node, "usage", {"retention", "flush_interval"});
  if (!f) return;
  if (auto* n = Get(*f, "retention")) {
    auto d = Duration(*n, "usage.retention");
    if (d && *d < Millis(3600 * 1000)) {
      Error("usage.retention", "must be at least 1h (usage is kept per hour)");
    } else {
      Set(d, u.retention);
    }
  }
  if (auto* n = Get(*f, "flush_interval")) {
    auto d = Duration(*n, "usage.flush_interval");
    if (d && (*d < Millis(10) || *d > Millis(60'000))) {
      Error("usage.flush_interval", "must be between 10ms and 1m");
    } else {
      Set(d, u.flush_interval);
    }
  }
}

void Parser::ParseAccessLog(const YAML::Node& node, AccessLogConfig& a) {
  auto f = Map(node, "access_log", {"output", "level"});
  if (!f) return;
  if (auto* n = Get(*f, "output")) {
    auto v = NonEmptyString(*n, "access_log.output");
    if (v == "off") {
      a.output.clear();
    } else if (v) {
      a.output = *v;
    }
  }
  if (auto* n = Get(*f, "level")) {
    auto v = String(*n, "access_log.level");
    if (v == "info") {
      a.level = AccessLogConfig::Level::kInfo;
    } else if (v == "warn") {
      a.level = AccessLogConfig::Level::kWarn;
    } else if (v == "error") {
      a.level = AccessLogConfig::Level::kError;
    } else if (v) {
      Error("access_log.level", "must be info, warn or error");
    }
  }
}

void Parser::ParseStore(const YAML::Node& node, StoreConfig& s) {
  auto f = Map(node, "store",
               {"backend", "data_dir", "redis", "on_store_error", "concurrency_lease_ttl",
                "key_sync_max_stale", "journal"});
  if (!f) return;
  if (auto* n = Get(*f, "backend")) {
    auto v = String(*n, "store.backend");
    if (v == "memory") {
      s.backend = StoreBackend::kMemory;
    } else if (v == "redis") {
      s.backend = StoreBackend::kRedis;
    } else if (v) {
      Error("store.backend", "must be memory or redis");
    }
  }
  if (auto* n = Get(*f, "data_dir")) Set(NonEmptyString(*n, "store.data_dir"), s.data_dir);
  bool url_given = false;
  if (auto* n = Get(*f, "redis")) {
    auto r = Map(*n, "store.redis", {"url", "timeout"});
    if (r) {
      if (auto* u = Get(*r, "url")) {
        url_given = true;
        ParseRedisUrls(*u, s.redis);
      }
      if (auto* t = Get(*r, "timeout")) Set(Duration(*t, "store.redis.timeout"), s.redis.timeout);
    }
  }
  if (auto* n = Get(*f, "on_store_error")) {
    auto v = String(*n, "store.on_store_error");
    if (v == "allow") {
      s.on_store_error = OnStoreError::kAllow;
    } else if (v == "deny") {
      s.on_store_error = OnStoreError::kDeny;
    } else if (v) {
      Error("store.on_store_error", "must be allow or deny");
    }
  }
  if (auto* n = Get(*f, "concurrency_lease_ttl")) {
    Set(Duration(*n, "store.concurrency_lease_ttl"), s.concurrency_lease_ttl);
  }
  if (auto* n = Get(*f, "key_sync_max_stale")) {
    Set(Duration(*n, "store.key_sync_max_stale"), s.key_sync_max_stale);
  }
  if (auto* n = Get(*f, "journal")) {
    auto v = String(*n, "store.journal");
    if (v == "always") {
      s.journal = FsyncPolicy::kAlways;
    } else if (v == "everysec") {
      s.journal = FsyncPolicy::kEverySecond;
    } else if (v == "no") {
      s.journal = FsyncPolicy::kNo;
    } else if (v == "off") {
      s.journal = std::nullopt;
    } else if (v) {
      Error("store.journal", "must be always, everysec, no or off");
    }
  }
  if (s.backend == StoreBackend::kRedis && !url_given) {
    Error("store.redis.url", "required when store.backend is redis");
  }
}

void Parser::ParseRedisUrls(const YAML::Node& node, RedisConfig& r) {
  const std::string p = "store.redis.url";
  const char* help = "not a Redis URL (expected redis://host:port[/db] or rediss://...)";
  if (node.IsSequence()) {
    size_t i = 0;
    for (const auto& item : node) {
      std::string ip = Index(p, i++);
      auto url = String(item, ip);
      if (!url) continue;
      if (IsRedisUrl(*url)) {
        r.urls.push_back(*url);
      } else {
        Error(ip, help);
      }
    }
    if (i == 0) Error(p, "at least one URL is required");
  } else if (node.IsScalar()) {
    if (IsRedisUrl(node.Scalar())) {
      r.urls.push_back(node.Scalar());
    } else {
      Error(p, help);
    }
  } else {
    Error(p, "must be a URL or a list of URLs");
  }
}

void Parser::ParseIdentity(const YAML::Node& node, IdentityConfig& id) {
  auto f = Map(node, "identity", {"source", "max_identities", "user_header"});
  if (!f) return;
  if (auto* u = Get(*f, "user_header")) {
    auto name = NonEmptyString(*u, "identity.user_header");
    if (name && !std::all_of(name->begin(), name->end(), IsHeaderNameChar)) {
      Error("identity.user_header", "not a header name");
    } else if (name) {
      std::transform(name->begin(), name->end(), name->begin(),
                     [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
      id.user_header = *name;
    }
  }
  if (auto* m = Get(*f, "max_identities")) {
    SetAs(Int(*m, "identity.max_identities", 1, 10'000'000), id.max_identities);
  }
  auto* n = Get(*f, "source");
  if (!n) return;
  auto v = String(*n, "identity.source");
  if (!v) return;
  constexpr std::string_view kHeader = "header:";
  if (*v == "api_key") {
    id.source = IdentityConfig::Source::kApiKey;
  } else if (v->rfind(kHeader, 0) == 0 && v->size() > kHeader.size() &&
             std::all_of(v->begin() + kHeader.size(), v->end(), IsHeaderNameChar)) {
    id.source = IdentityConfig::Source::kHeader;
    id.header = v->substr(kHeader.size());
    std::transform(id.header.begin(), id.header.end(), id.header.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  } else {
    Error("identity.source", "must be api_key or header:<name>");
  }
}

void Parser::ParseModels(const YAML::Node& node, std::vector<ModelConfig>& models) {
  auto items = List(node, "models");
  if (!items) return;
  if (items->empty()) {
    Error("models", "at least one model is required");
    return;
  }
  for (size_t i = 0; i < items->size(); ++i) {
    const std::string p = Index("models", i);
    auto f = Map((*items)[i], p,
                 {"name", "aliases", "backends", "tokenizer", "chat_template", "max_output_tokens",
                  "media_tokens", "prices", "cached_token_weight", "passthrough", "timeout",
                  "request_timeout"});
    if (!f) continue;
    ModelConfig m;
    if (auto* n = Get(*f, "name")) {
      Set(NonEmptyString(*n, Field(p, "name")), m.name);
    } else {
      Error(Field(p, "name"), "required");
    }
    if (!m.name.empty()) ClaimModelName(m.name, m.name, Field(p, "name"));
    if (auto* n = Get(*f, "aliases")) ParseAliases(*n, Field(p, "aliases"), m);
    if (auto* n = Get(*f, "backends")) {
      ParseBackends(*n, Field(p, "backends"), m);
    } else {
      Error(Field(p, "backends"), "required");
    }
    ParseCounting(*f, p, m);
    if (auto* n = Get(*f, "max_output_tokens")) {
      Set(Int(*n, Field(p, "max_output_tokens"), 1, kMaxAmount), m.max_output_tokens);
    }
    if (auto* n = Get(*f, "media_tokens")) {
      ParseMediaTokens(*n, Field(p, "media_tokens"), m.media_tokens);
    }
    if (auto* n = Get(*f, "prices")) ParsePrices(*n, Field(p, "prices"), m.prices);
    if (auto* n = Get(*f, "cached_token_weight")) {
      Set(Decimal(*n, Field(p, "cached_token_weight"), kPriceDecimals, 0, 1'000'000,
                  "must be a fraction from 0 to 1 with up to 6 decimal places"),
          m.cached_token_weight);
    }
    if (auto* n = Get(*f, "passthrough")) ParsePassthrough(*n, Field(p, "passthrough"), m);
    if (auto* n = Get(*f, "timeout")) Set(Duration(*n, Field(p, "timeout")), m.timeout);
    if (auto* n = Get(*f, "request_timeout")) {
      Set(Duration(*n, Field(p, "request_timeout")), m.request_timeout);
    }
    models.push_back(std::move(m));
  }
}

void Parser::ClaimModelName(const std::string& name, const std::string& canonical,
                            const std::string& path) {
  if (!model_index_.emplace(name, canonical).second) {
    Error(path, Quote(name) + " is already a model name or alias");
  }
}

void Parser::ParseAliases(const YAML::Node& node, const std::string& p, ModelConfig& m) {
  auto aliases = List(node, p);
  for (size_t j = 0; aliases && j < aliases->size(); ++j) {
    std::string ap = Index(p, j);
    auto alias = NonEmptyString((*aliases)[j], ap);
    if (!alias) continue;
    if (!m.name.empty()) ClaimModelName(*alias, m.name, ap);
    m.aliases.push_back(*alias);
  }
}

void Parser::ParseBackends(const YAML::Node& node, const std::string& p, ModelConfig& m) {
  auto backends = List(node, p);
  if (backends && backends->empty()) Error(p, "at least one backend is required");
  for (size_t j = 0; backends && j < backends->size(); ++j) {
    std::string bp = Index(p, j);
    auto url = String((*backends)[j], bp);
    if (!url) continue;
    auto parsed = ParseBackendUrl(*url);
    if (auto* b = std::get_if<BackendUrl>(&parsed)) {
      m.backends.push_back(std::move(*b));
    } else if (std::get<UrlError>(parsed) == UrlError::kHttps) {
      Error(bp, "https backends are not supported yet");
    } else {
      Error(bp, "not a URL (expected http://host:port[/path])");
    }
  }
}

void Parser::ParseMediaTokens(const YAML::Node& node, const std::string& path, MediaTokens& media) {
  auto f = Map(node, path, {"image", "audio", "video", "file", "audio_second"});
  if (!f) return;
  // 0 is allowed: a model that takes no such input, or an operator who charges it elsewhere.
  if (auto* n = Get(*f, "image")) Set(Int(*n, Field(path, "image"), 0, kMaxAmount), media.image);
  if (auto* n = Get(*f, "audio")) Set(Int(*n, Field(path, "audio"), 0, kMaxAmount), media.audio);
  if (auto* n = Get(*f, "video")) Set(Int(*n, Field(path, "video"), 0, kMaxAmount), media.video);
  if (auto* n = Get(*f, "file")) Set(Int(*n, Field(path, "file"), 0, kMaxAmount), media.file);
  if (auto* n = Get(*f, "audio_second")) {
    Set(Int(*n, Field(path, "audio_second"), 0, kMaxAmount), media.audio_second);
  }
}

// How the model's prompts are counted: `tokenizer` and `chat_template`.
void Parser::ParseCounting(const Fields& f, const std::string& p, ModelConfig& m) {
  if (auto* n = Get(f, "tokenizer")) {
    auto t = NonEmptyString(*n, Field(p, "tokenizer"));
    if (t && *t != "approx") {
      const std::string path = t->starts_with("tiktoken:") ? t->substr(9) : *t;
      std::error_code ec;
      if (!std::filesystem::is_regular_file(path, ec)) {
        Error(Field(p, "tokenizer"),
              "no such file (expected approx, a tokenizer.json path or tiktoken:PATH)");
      }
    }
    Set(t, m.tokenizer);
  }
  if (auto* n = Get(f, "chat_template")) {
    auto t = NonEmptyString(*n, Field(p, "chat_template"));
    if (t && *t != "llama2" && *t != "llama3" && *t != "chatml") {
      Error(Field(p, "chat_template"), "expected llama2, llama3 or chatml");
    } else if (t && m.tokenizer == "approx") {
      Error(Field(p, "chat_template"), "needs a tokenizer file (models[].tokenizer)");
    }
    Set(t, m.chat_template);
  }
}

void Parser::ParsePrices(const YAML::Node& node, const std::string& path, TokenPrices& prices) {
  auto f = Map(node, path, {"input", "output", "cached_input"});
  if (!f) return;
  auto price = [&](const char* name, int64_t& out) {
    if (auto* n = Get(*f, name)) {
      Set(Decimal(*n, Field(path, name), kPriceDecimals, 0, kMaxPriceMicros,
                  "must be a price per million tokens from 0 to 1000000 with up to 6 decimal "
                  "places"),
          out);
    }
  };
  price("input", prices.input);
  price("output", prices.output);
  prices.cached_input = prices.input;  // no discount unless one is written
  price("cached_input", prices.cached_input);
}

// Paths: "/..." without a query, `*` only at the end, of URL path characters.
void Parser::ParsePassthrough(const YAML::Node& node, const std::string& path, ModelConfig& m) {
  auto items = List(node, path);
  for (size_t i = 0; items && i < items->size(); ++i) {
    const std::string p = Index(path, i);
    auto entry = NonEmptyString((*items)[i], p);
    if (!entry) continue;
    const size_t star = entry->find('*');
    const bool path_chars = std::all_of(entry->begin(), entry->end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) ||
             std::string_view("/-._~*").find(c) != std::string_view::npos;
    });
    if (entry->front() != '/' || !path_chars ||
        (star != std::string::npos && star != entry->size() - 1)) {
      Error(p, Quote(*entry) +
                   " is not a path: start with /, use letters, digits and -._~/ only, and * "
                   "only at the end");
      continue;
    }
    m.passthrough.push_back(*entry);
  }
}

// `queue: {max_wait: 10s, max_queued: 100}` (QueueConfig). max_wait at most 10m: the OpenAI
// SDKs give up on an answer after 10 minutes.
QueueConfig Parser::ParseQueue(const YAML::Node& node, const std::string& p) {
  constexpr Millis kMaxWait = std::chrono::minutes(10);
  QueueConfig q;
  auto f = Map(node, p, {"max_wait", "max_queued"});
  if (!f) return q;
  if (auto* n = Get(*f, "max_wait")) {
    auto d = Duration(*n, Field(p, "max_wait"));
    if (d && *d > kMaxWait) {
      Error(Field(p, "max_wait"), "must be at most 10m");
    } else {
      Set(d, q.max_wait);
    }
  } else {
    Error(Field(p, "max_wait"), "required");
  }
  q.max_queued = 100;
  if (auto* n = Get(*f, "max_queued")) {
    SetAs(Int(*n, Field(p, "max_queued"), 1, 100'000), q.max_queued);
  }
  if (q.max_wait.count() == 0) q.max_queued = 0;  // refused above: no queue
  return q;
}

void Parser::ParseTenants(const YAML::Node& node, std::vector<TenantConfig>& tenants) {
  auto items = List(node, "tenants");
  if (!items) return;
  std::set<std::string> seen;
  for (size_t i = 0; i < items->size(); ++i) {
    const std::string p = Index("tenants", i);
    auto f = Map((*items)[i], p, {"name", "limits", "queue"});
    if (!f) continue;
    TenantConfig t;
    if (auto* n = Get(*f, "name")) {
      Set(NonEmptyString(*n, Field(p, "name")), t.name);
      if (!t.name.empty() && !seen.insert(t.name).second) {
        Error(Field(p, "name"), "duplicate tenant name " + Quote(t.name));
      }
    } else {
      Error(Field(p, "name"), "required");
    }
    if (auto* n = Get(*f, "limits")) t.limits = ParseLimits(*n, Field(p, "limits"));
    if (auto* n = Get(*f, "queue")) t.queue = ParseQueue(*n, Field(p, "queue"));
    tenants.push_back(std::move(t));
  }
}

void Parser::ParseApiKeys(const YAML::Node& node, const std::vector<TenantConfig>& tenants,
                          std::vector<ApiKeyConfig>& keys) {
  auto items = List(node, "api_keys");
  if (!items) return;
  std::set<std::string> seen_names;
  std::map<Sha256, size_t> seen_hashes;
  for (size_t i = 0; i < items->size(); ++i) {
    const std::string p = Index("api_keys", i);
    auto f =
        Map((*items)[i], p,
            {"name", "key", "key_sha256", "tenant", "models", "limits", "queue", "expires_at"});
    if (!f) continue;
    ApiKeyConfig k;
    ParseKeyName(*f, p, seen_names, k);
    if (ParseKeySecret(*f, p, k)) {
      auto [it, inserted] = seen_hashes.emplace(k.key_sha256, i);
      if (!inserted) Error(p, "same key as " + Index("api_keys", it->second));
    }
    if (auto* n = Get(*f, "tenant")) ParseKeyTenant(*n, Field(p, "tenant"), tenants, k);
    if (auto* n = Get(*f, "models")) ParseKeyModels(*n, Field(p, "models"), k);
    if (auto* n = Get(*f, "limits")) {
      k.limits = ParseLimits(*n, Field(p, "limits"));
      k.limits_set = true;
    }
    if (auto* n = Get(*f, "queue")) k.queue = ParseQueue(*n, Field(p, "queue"));
    if (auto* n = Get(*f, "expires_at")) {
      auto text = NonEmptyString(*n, Field(p, "expires_at"));
      std::optional<int64_t> at = text ? ParseRfc3339(*text) : std::nullopt;
      if (at && *at > 0) {
        k.expires_at = *at;
      } else if (text) {
        Error(Field(p, "expires_at"), "not an RFC 3339 time after 1970 (2027-01-31T00:00:00Z)");
      }
    }
    keys.push_back(std::move(k));
  }
}

void Parser::ParseKeyName(const Fields& f, const std::string& p, std::set<std::string>& seen,
                          ApiKeyConfig& k) {
  auto* n = Get(f, "name");
  if (!n) {
    Error(Field(p, "name"), "required");
    return;
  }
  auto name = String(*n, Field(p, "name"));
  if (!name) return;
  if (!IsValidKeyName(*name)) {
    Error(Field(p, "name"), "must be 1-64 characters of A-Z a-z 0-9 _ - . (not starting with .)");
    return;
  }
  k.name = *name;
  if (!seen.insert(k.name).second) Error(Field(p, "name"), "duplicate key name " + Quote(k.name));
}

// The plaintext lives in `secret` for this scope only and is never echoed in an error.
bool Parser::ParseKeySecret(const Fields& f, const std::string& p, ApiKeyConfig& k) {
  const YAML::Node* plain = Get(f, "key");
  const YAML::Node* hex = Get(f, "key_sha256");
  if (plain && hex) {
    Error(p, "has both key and key_sha256; use one");
    return false;
  }
  if (!plain && !hex) {
    Error(p, "needs key or key_sha256");
    return false;
  }
  if (plain) {
    auto secret = NonEmptyString(*plain, Field(p, "key"));
    if (!secret) return false;
    k.key_sha256 = Sha256Of(*secret);
    k.key_length = secret->size();
    std::fill(secret->begin(), secret->end(), '\0');
    return true;
  }
  std::optional<Sha256> digest;
  if (hex->IsScalar()) digest = Sha256FromHex(hex->Scalar());
  if (!digest) {
    Error(Field(p, "key_sha256"), "not a SHA-256 (expected 64 hex digits)");
    return false;
  }
  k.key_sha256 = *digest;
  return true;
}

void Parser::ParseKeyTenant(const YAML::Node& node, const std::string& p,
                            const std::vector<TenantConfig>& tenants, ApiKeyConfig& k) {
  auto t = NonEmptyString(node, p);
  if (!t) return;
  const bool known = std::any_of(tenants.begin(), tenants.end(),
                                 [&](const TenantConfig& tc) { return tc.name == *t; });
  if (known) {
    k.tenant = *t;
  } else {
    Error(p, "unknown tenant " + Quote(*t));
  }
}

void Parser::ParseKeyModels(const YAML::Node& node, const std::string& p, ApiKeyConfig& k) {
  auto refs = List(node, p);
  if (!refs) return;
  // An empty list would read as "every model": refuse it rather than guess.
  if (refs->empty()) Error(p, "empty; omit models to allow every model");
  for (size_t j = 0; j < refs->size(); ++j) {
    auto m = ModelRef((*refs)[j], Index(p, j));
    if (m && std::find(k.models.begin(), k.models.end(), *m) == k.models.end()) {
      k.models.push_back(*m);
    }
  }
}

std::vector<LimitConfig> Parser::ParseLimits(const YAML::Node& node, const std::string& path) {
  std::vector<LimitConfig> limits;
  auto items = List(node, path);
  for (size_t i = 0; items && i < items->size(); ++i) {
    if (auto l = ParseLimit((*items)[i], Index(path, i))) limits.push_back(std::move(*l));
  }
  return limits;
}

std::optional<LimitConfig> Parser::ParseLimit(const YAML::Node& node, const std::string& p) {
  if (node.IsNull()) {
    Error(p, "not a map");
    return std::nullopt;
  }
  auto f =
      Map(node, p, {"tokens", "requests", "concurrent", "spend", "per", "reset", "model", "scope"});
  if (!f) return std::nullopt;
  size_t errors_before = errors_.size();
  LimitConfig l;
  std::vector<std::pair<std::string_view, LimitKind>> kinds;
  for (LimitKind kind :
       {LimitKind::kTokens, LimitKind::kRequests, LimitKind::kConcurrent, LimitKind::kSpend}) {
    if (Get(*f, LimitKindName(kind))) kinds.emplace_back(LimitKindName(kind), kind);
  }
  if (kinds.empty()) {
    Error(p, "needs one of tokens, requests, concurrent or spend");
    return std::nullopt;
  }
  if (kinds.size() > 1) {
    Error(p, "has both " + std::string(kinds[0].first) + " and " + std::string(kinds[1].first) +
                 "; write one limit per entry");
    return std::nullopt;
  }
  auto [kind_name, kind] = kinds[0];
  l.kind = kind;
  if (kind == LimitKind::kSpend) {
    Set(Decimal(*Get(*f, kind_name), Field(p, kind_name), kMoneyDecimals, 1, kMaxMoneyNanos,
                "must be an amount of money above 0, at most 9000000, with up to 9 decimal "
                "places"),
        l.amount);
  } else {
    Set(Int(*Get(*f, kind_name), Field(p, kind_name), 1, kMaxAmount), l.amount);
  }
  const YAML::Node* per = Get(*f, "per");
  const YAML::Node* reset = Get(*f, "reset");
  if (kind == LimitKind::kConcurrent) {
    if (per) Error(Field(p, "per"), "not allowed with concurrent");
    if (reset) Error(Field(p, "reset"), "not allowed with concurrent");
  } else {
    if (per) {
      Set(Duration(*per, Field(p, "per")), l.per);
    } else {
      Error(Field(p, "per"), "required with " + std::string(kind_name));
    }
    if (reset) {
      auto v = String(*reset, Field(p, "reset"));
      if (v == "calendar") {
        l.calendar = true;
      } else if (v == "rolling") {
        l.calendar = false;
      } else if (v) {
        Error(Field(p, "reset"), "must be rolling or calendar");
      }
    }
  }
  if (auto* n = Get(*f, "model")) Set(ModelRef(*n, Field(p, "model")), l.model);
  if (auto* n = Get(*f, "scope")) {
    auto v = String(*n, Field(p, "scope"));
    if (v == "user") {
      l.per_user = true;
    } else if (v) {
      Error(Field(p, "scope"), "must be user (a budget per end user); leave it out for one budget");
    }
  }
  if (errors_.size() != errors_before) return std::nullopt;
  return l;
}

LoadResult Load(const std::string& text, const EnvLookup& env) {
  LoadResult result;
  try {
    EnvSubstitution env_substitution(env, result.errors);
    YAML::Node root;
    try {
      root = YAML::Load(env_substitution.MarkReferences(text));
    } catch (const YAML::Exception& e) {
      std::string where;
      if (!e.mark.is_null()) {
        where = "line " + std::to_string(e.mark.line + 1) + ", column " +
                std::to_string(e.mark.column + 1) + ": ";
      }
      result.errors.push_back("yaml: " + where + e.msg);
      return result;
    }
    env_substitution.Apply(root);
    auto config = std::make_shared<Config>();
    Parser(result.errors).Parse(root, *config);
    if (result.errors.empty()) result.config = std::move(config);
  } catch (const YAML::Exception& e) {
    result.errors.push_back("yaml: " + e.msg);
  } catch (const std::exception& e) {
    result.errors.push_back(std::string("config: ") + e.what());
  }
  if (!result.errors.empty()) result.config = nullptr;
  return result;
}

}  // namespace

bool IsValidKeyName(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  auto ok = [](char c) { return IsIdentChar(c) || c == '-' || c == '.'; };
  if (s.front() == '.') return false;
  return std::all_of(s.begin(), s.end(), ok);
}

namespace {

// The YAML node the JSON text of `v` would parse to (strings as themselves, other scalars as
// their JSON text), without writing the text and scanning it again.
YAML::Node YamlOf(const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::object: {
      YAML::Node node(YAML::NodeType::Map);
      for (const auto& field : v.get_object())
        node[std::string(field.key())] = YamlOf(field.value());
      return node;
    }
    case boost::json::kind::array: {
      YAML::Node node(YAML::NodeType::Sequence);
      for (const auto& item : v.get_array()) node.push_back(YamlOf(item));
      return node;
    }
    case boost::json::kind::string:
      return YAML::Node(std::string(v.get_string()));
    case boost::json::kind::null:
      return YAML::Node(YAML::NodeType::Null);
    default:
      return YAML::Node(boost::json::serialize(v));
  }
}

}  // namespace

LimitsParse ParseLimitsJson(const boost::json::value& limits, const std::string& path,
                            const Config* models_from) {
  LimitsParse result;
  try {
    Parser parser(result.errors);
    if (models_from) {
      parser.IndexModels(*models_from);
    } else {
      parser.AcceptAnyModel();
    }
    result.limits = parser.ParseLimits(YamlOf(limits), path);
  } catch (const YAML::Exception& e) {
    result.errors.push_back(path + ": not a list of limits (" + e.msg + ")");
  }
  if (!result.errors.empty()) result.limits.clear();
  return result;
}

QueueParse ParseQueueJson(const boost::json::value& queue, const std::string& path) {
  QueueParse result;
  try {
    Parser parser(result.errors);
    result.queue = parser.ParseQueue(YamlOf(queue), path);
  } catch (const YAML::Exception& e) {
    result.errors.push_back(path + ": not a queue (" + e.msg + ")");
  }
  if (!result.errors.empty()) result.queue = {};
  return result;
}

std::vector<std::string> RestartOnlyChanges(const Config& running, const Config& next) {
  std::vector<std::string> changed;
  auto check = [&changed](const char* path, bool same) {
    if (!same) changed.push_back(path);
  };
  auto same_address = [](const std::optional<HostPort>& a, const std::optional<HostPort>& b) {
    return a.has_value() == b.has_value() && (!a || (a->host == b->host && a->port == b->port));
  };
  const ServerConfig &s = running.server, &t = next.server;
  check("listen", same_address(running.listen, next.listen));
  check("server.threads", s.threads == t.threads);
  check("server.max_body_bytes", s.max_body_bytes == t.max_body_bytes);
  check("server.max_header_bytes", s.max_header_bytes == t.max_header_bytes);
  check("server.header_timeout", s.header_timeout == t.header_timeout);
  check("server.idle_timeout", s.idle_timeout == t.idle_timeout);
  check("server.shutdown_grace", s.shutdown_grace == t.shutdown_grace);
  check("server.max_connections", s.max_connections == t.max_connections);
  check("server.reuse_port", s.reuse_port == t.reuse_port);
  check("admin.listen", same_address(running.admin.listen, next.admin.listen));
  check("store.backend", running.store.backend == next.store.backend);
  check("store.data_dir", running.store.data_dir == next.store.data_dir);
  check("store.journal", running.store.journal == next.store.journal);
  check("store.redis.url", running.store.redis.urls == next.store.redis.urls);
  check("store.redis.timeout", running.store.redis.timeout == next.store.redis.timeout);
  check("store.concurrency_lease_ttl",
        running.store.concurrency_lease_ttl == next.store.concurrency_lease_ttl);
  check("usage.retention", running.usage.retention == next.usage.retention);
  check("usage.flush_interval", running.usage.flush_interval == next.usage.flush_interval);
  check("metrics.key_label", running.metrics.key_label == next.metrics.key_label);
  check("access_log.output", running.access_log.output == next.access_log.output);
  check("access_log.level", running.access_log.level == next.access_log.level);
  return changed;
}

LoadResult LoadConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadResult r;
    r.errors.push_back(path + ": cannot read (" + std::strerror(errno) + ")");
    return r;
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  return Load(buf.str(), [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  });
}

LoadResult LoadConfigText(const std::string& yaml_text, const EnvLookup& env) {
  return Load(yaml_text, env);
}

std::optional<IpRange> ParseIpRange(std::string_view text) {
  const size_t slash = text.find('/');
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(std::string(text.substr(0, slash)), ec);
  if (ec) return std::nullopt;
  IpRange range;
  const int width = address.is_v4() ? 32 : 128;
  int bits = width;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    auto [end, parse] = std::from_chars(digits.data(), digits.data() + digits.size(), bits);
    if (parse != std::errc() || end != digits.data() + digits.size() || bits < 0 || bits > width) {
      return std::nullopt;
    }
  }
  range.bytes =
      address.is_v4()
          ? boost::asio::ip::make_address_v6(boost::asio::ip::v4_mapped, address.to_v4()).to_bytes()
          : address.to_v6().to_bytes();
  range.prefix_bits = bits + (128 - width);
  return range;
}

bool IsTrustedProxy(const ServerConfig& server, std::string_view address) {
  if (server.trusted_proxies.empty()) return false;
  const std::optional<IpRange> host = ParseIpRange(address);
  if (!host) return false;
  return std::any_of(server.trusted_proxies.begin(), server.trusted_proxies.end(),
                     [&](const IpRange& range) {
                       for (int bit = 0; bit < range.prefix_bits; ++bit) {
                         const uint8_t mask = 0x80 >> (bit % 8);
                         if ((host->bytes[bit / 8] & mask) != (range.bytes[bit / 8] & mask)) {
                           return false;
                         }
                       }
                       return true;
                     });
}

std::optional<Millis> ParseDuration(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return std::nullopt;
  int64_t n = 0;
  if (std::from_chars(text.data(), text.data() + digits, n).ec != std::errc()) return std::nullopt;
  std::string_view unit = text.substr(digits);
  int64_t scale = 0;
  if (unit == "ms") {
    scale = 1;
  } else if (unit == "s") {
    scale = 1000;
  } else if (unit == "m") {
    scale = int64_t{60} * 1000;
  } else if (unit == "h") {
    scale = int64_t{3600} * 1000;
  } else if (unit == "d") {
    scale = int64_t{24} * 3600 * 1000;
  } else {
    return std::nullopt;
  }
  if (n > std::numeric_limits<int64_t>::max() / scale) return std::nullopt;
  return Millis(n * scale);
}

void AppendDuration(std::string& out, Millis d) {
  int64_t ms = d.count();
  if (ms < 0) {
    out.push_back('-');
    ms = -ms;  // durations here are never near INT64_MIN
  }
  auto number = [&out](int64_t v, std::string_view unit) {
    out.append(Decimal(v).View()).append(unit);
  };
  if (ms < 1000) return number(ms, ms == 0 ? "s" : "ms");
  const int64_t h = ms / 3'600'000;
  const int64_t m = ms / 60'000 % 60;
  const int64_t s = ms / 1000 % 60;
  int64_t frac = ms % 1000;
  if (h > 0) number(h, "h");
  if (h > 0 || m > 0) number(m, "m");
  if (frac == 0) return number(s, "s");
  number(s, ".");
  // Milliseconds as a decimal fraction without trailing zeros: 500 -> "5", 250 -> "25".
  out.push_back(static_cast<char>('0' + frac / 100));
  frac %= 100;
  if (frac != 0) out.push_back(static_cast<char>('0' + frac / 10));
  if (frac % 10 != 0) out.push_back(static_cast<char>('0' + frac % 10));
  out.push_back('s');
}

std::string FormatDuration(Millis d) {
  std::string out;
  AppendDuration(out, d);
  return out;
}

}  // namespace trl
