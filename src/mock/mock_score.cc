#include "mock/mock_score.h"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <numeric>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "mock/mock_json.h"

namespace trl {
namespace {

namespace dom = simdjson::dom;

std::unordered_set<std::string> DistinctWords(std::string_view text) {
  std::unordered_set<std::string> words;
  std::string word;
  for (size_t at = 0; at <= text.size(); ++at) {
    const char c = at < text.size() ? text[at] : ' ';
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      if (!word.empty()) words.insert(std::move(word));
      word.clear();
    } else {
      word += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    }
  }
  return words;
}

// A token count as a wrong usage report writes it (mock_score.h).
std::string UsageNumber(int64_t tokens, MockUsageReport report) {
  switch (report) {
    case MockUsageReport::kNegative:
      return "-1000000";
    case MockUsageReport::kHuge:
      return "1000000001";
    case MockUsageReport::kFloat:
      return std::to_string(tokens) + ".5";
    default:
      return std::to_string(tokens);
  }
}

// A string, or with `objects` also {text: string}; false for anything else.
bool ReadText(dom::element value, bool objects, std::string_view& text) {
  if (value.is_string()) {
    text = std::string_view(value);
    return true;
  }
  if (!objects || !value.is_object()) return false;
  auto member = LastValue(dom::object(value), "text");
  if (!member || !member->is_string()) return false;
  text = std::string_view(*member);
  return true;
}

// A string or a non-empty array of texts (ReadText).
std::optional<std::vector<std::string_view>> ReadTexts(std::optional<dom::element> value,
                                                       bool objects) {
  std::vector<std::string_view> texts;
  std::string_view text;
  if (!value) return std::nullopt;
  if (ReadText(*value, false, text)) return std::vector<std::string_view>{text};
  if (!value->is_array() || dom::array(*value).size() == 0) return std::nullopt;
  for (dom::element item : dom::array(*value)) {
    if (!ReadText(item, objects, text)) return std::nullopt;
    texts.push_back(text);
  }
  return texts;
}

struct RerankOptions {
  int64_t top_n = 0;
  bool return_documents = true;
};

std::optional<MockError> ReadRerankOptions(dom::object root, RerankOptions& options) {
  auto top_n = LastValue(root, "top_n");
  if (top_n && (top_n->get_int64().get(options.top_n) || options.top_n < 0)) {
    return BadRequest("top_n must be an integer >= 0", "top_n");
  }
  auto documents = LastValue(root, "return_documents");
  if (documents && documents->get_bool().get(options.return_documents)) {
    return BadRequest("return_documents must be a boolean", "return_documents");
  }
  return std::nullopt;
}

void AppendRerankResults(std::string& out, std::string_view query,
                         const std::vector<std::string_view>& documents,
                         const RerankOptions& options) {
  std::vector<double> scores;
  scores.reserve(documents.size());
  for (std::string_view document : documents) scores.push_back(MockRelevance(query, document));
  std::vector<size_t> order(documents.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  if (options.top_n > 0 && static_cast<size_t>(options.top_n) < order.size()) {
    order.resize(static_cast<size_t>(options.top_n));
  }
  out += R"("results":[)";
  for (size_t i = 0; i < order.size(); ++i) {
    if (i > 0) out += ',';
    fmt::format_to(std::back_inserter(out), R"({{"index":{},)", order[i]);
    if (options.return_documents) {
      out += R"("document":{"text":)";
      AppendJsonString(out, documents[order[i]]);
      out += "},";
    }
    fmt::format_to(std::back_inserter(out), R"("relevance_score":{}}})", scores[order[i]]);
  }
  out += "]}";
}

// vLLM's pairing of text_1 and text_2: one with each, or one to one.
std::optional<MockError> PairTexts(std::vector<std::string_view>& first,
                                   const std::vector<std::string_view>& second) {
  if (first.size() == 1) {
    first.assign(second.size(), first.front());
    return std::nullopt;
  }
  if (first.size() != second.size()) {
    return BadRequest("text_1 must have one text or as many as text_2", "text_1");
  }
  return std::nullopt;
}

}  // namespace

double MockRelevance(std::string_view query, std::string_view document) {
  const std::unordered_set<std::string> asked = DistinctWords(query);
  if (asked.empty()) return 0;
  const std::unordered_set<std::string> found = DistinctWords(document);
  const auto hits = std::count_if(asked.begin(), asked.end(),
                                  [&](const std::string& word) { return found.count(word) > 0; });
  return static_cast<double>(hits) / static_cast<double>(asked.size());
}

MockResult AnswerRerank(MockCall& call) {
  std::optional<dom::object> root = ParseJsonObject(call.body);
  if (!root) return BadRequest("request body is not a valid JSON object");
  MockReply reply;
  RerankOptions options;
  if (auto error = ReadRerankOptions(*root, options)) return *error;
  if (auto error = ReadModel(*root, call.options, reply.model)) return *error;
  auto query = LastValue(*root, "query");
  if (!query || !query->is_string()) return BadRequest("query must be a string", "query");
  auto documents = ReadTexts(LastValue(*root, "documents"), /*objects=*/true);
  if (!documents || !LastValue(*root, "documents")->is_array()) {
    return BadRequest("documents must be a non-empty array of strings or {text} objects",
                      "documents");
  }
  const int64_t query_words = CountWords(std::string_view(*query));
  for (std::string_view document : *documents) {
    reply.prompt_tokens += query_words + CountWords(document);
  }
  fmt::format_to(std::back_inserter(reply.body), R"({{"id":"rerank-mock{}","model":)", call.seq);
  AppendJsonString(reply.body, reply.model);
  reply.body += ',';
  if (call.report != MockUsageReport::kNone) {
    fmt::format_to(std::back_inserter(reply.body), R"("usage":{{"total_tokens":{}}},)",
                   UsageNumber(reply.prompt_tokens, call.report));
  }
  AppendRerankResults(reply.body, std::string_view(*query), *documents, options);
  reply.usage_reported =
      call.report == MockUsageReport::kValid || call.report == MockUsageReport::kNoCompletion;
  return reply;
}

MockResult AnswerScore(MockCall& call) {
  std::optional<dom::object> root = ParseJsonObject(call.body);
  if (!root) return BadRequest("request body is not a valid JSON object");
  MockReply reply;
  if (auto error = ReadModel(*root, call.options, reply.model)) return *error;
  auto first = ReadTexts(LastValue(*root, "text_1"), /*objects=*/false);
  if (!first) return BadRequest("text_1 must be a string or a non-empty array of them", "text_1");
  auto second = ReadTexts(LastValue(*root, "text_2"), /*objects=*/false);
  if (!second) return BadRequest("text_2 must be a string or a non-empty array of them", "text_2");
  if (auto error = PairTexts(*first, *second)) return *error;
  fmt::format_to(std::back_inserter(reply.body),
                 R"({{"id":"score-mock{}","object":"list","created":{},"model":)", call.seq,
                 call.created);
  AppendJsonString(reply.body, reply.model);
  reply.body += R"(,"data":[)";
  for (size_t i = 0; i < first->size(); ++i) {
    reply.prompt_tokens += CountWords((*first)[i]) + CountWords((*second)[i]);
    fmt::format_to(std::back_inserter(reply.body),
                   R"({}{{"index":{},"object":"score","score":{}}})", i > 0 ? "," : "", i,
                   MockRelevance((*first)[i], (*second)[i]));
  }
  reply.body += ']';
  if (call.report != MockUsageReport::kNone) {
    const std::string prompt = UsageNumber(reply.prompt_tokens, call.report);
    fmt::format_to(std::back_inserter(reply.body),
                   R"(,"usage":{{"prompt_tokens":{},"total_tokens":{},"completion_tokens":0,)"
                   R"("prompt_tokens_details":null}})",
                   prompt, prompt);
  }
  reply.body += '}';
  reply.usage_reported =
      call.report == MockUsageReport::kValid || call.report == MockUsageReport::kNoCompletion;
  return reply;
}

}  // namespace trl
