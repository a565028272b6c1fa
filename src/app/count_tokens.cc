#include "app/count_tokens.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "limits/token_counter.h"
#include "proxy/request_fields.h"

namespace trl {

namespace {

struct CountOptions {
  std::string tokenizer;
  std::string chat;  // "" or a chat framing's name
  bool ids = false;
  bool jsonl = false;
};

std::optional<CountOptions> ParseOptions(int argc, char** argv) {
  CountOptions o;
  for (int i = 2; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--ids") {
      o.ids = true;
    } else if (arg == "--jsonl") {
      o.jsonl = true;
    } else if ((arg == "--tokenizer" || arg == "--chat") && i + 1 < argc) {
      (arg == "--tokenizer" ? o.tokenizer : o.chat) = argv[++i];
    } else {
      return std::nullopt;
    }
  }
  if (o.tokenizer.empty()) return std::nullopt;
  return o;
}

// What one input counts to: its count, or its ids as a JSON array.
class PromptCounter {
 public:
  PromptCounter(const CountOptions& options, std::unique_ptr<TokenCounter> counter)
      : options_(options), counter_(std::move(counter)) {}

  bool Chat() const { return !options_.chat.empty(); }

  // The output line for one input; nullopt and *error when it cannot be counted.
  std::optional<std::string> Line(std::string input, std::string* error) const {
    if (!Chat()) return Text(input);
    RequestFields fields;
    if (auto e = ExtractRequestFields(ApiEndpoint::kChatCompletions, input, fields)) {
      *error = "not a chat request: " + e->message;
      return std::nullopt;
    }
    if (!options_.ids) {
      return std::to_string(CountPromptTokens(fields, *counter_, MediaTokens{}));
    }
    const auto& exact = static_cast<const ExactTokenCounter&>(*counter_);
    return Text(exact.Framing()->Render(ChatTurns(fields)));
  }

 private:
  std::string Text(std::string_view text) const {
    if (!options_.ids) return std::to_string(counter_->CountText(text));
    std::vector<uint32_t> ids;
    static_cast<const ExactTokenCounter&>(*counter_).Encoder().Encode(text, ids);
    return fmt::format("[{}]", fmt::join(ids, ","));
  }

  const CountOptions& options_;
  std::unique_ptr<TokenCounter> counter_;
};

int CountLines(const PromptCounter& counter, const std::string& input) {
  simdjson::dom::parser parser;
  size_t number = 0;
  std::string out;
  for (size_t at = 0; at < input.size();) {
    size_t end = input.find('\n', at);
    if (end == std::string::npos) end = input.size();
    const std::string_view line = std::string_view(input).substr(at, end - at);
    at = end + 1;
    ++number;
    std::string_view text = line;  // --chat: the line is a request body as it is
    std::string error;
    if (!counter.Chat() && parser.parse(line.data(), line.size()).get_string().get(text)) {
      error = "not a JSON string";
    } else if (auto counted = counter.Line(std::string(text), &error)) {
      out += *counted;
      out += '\n';
      continue;
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fprintf(stderr, "count-tokens: line %zu: %s\n", number, error.c_str());
    return 2;
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace

int CountTokensCommand(int argc, char** argv) {
  const std::optional<CountOptions> options = ParseOptions(argc, argv);
  if (!options) {
    std::fprintf(stderr,
                 "usage: token-rate-limiter count-tokens --tokenizer SPEC [--ids] [--jsonl] "
                 "[--chat llama2|llama3|chatml]\n"
                 "  SPEC: approx, a tokenizer.json path, or tiktoken:PATH\n");
    return 2;
  }
  std::unique_ptr<TokenCounter> counter;
  try {
    counter = MakeTokenCounter(options->tokenizer, options->chat);
  } catch (const std::runtime_error& e) {
    std::fprintf(stderr, "count-tokens: %s\n", e.what());
    return 1;
  }
  if (options->ids && !counter->Exact()) {
    std::fprintf(stderr, "count-tokens: --ids needs a tokenizer file (approx has no ids)\n");
    return 2;
  }
  std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  const PromptCounter count(*options, std::move(counter));
  if (options->jsonl) return CountLines(count, input);
  std::string error;
  const std::optional<std::string> line = count.Line(std::move(input), &error);
  if (!line) {
    std::fprintf(stderr, "count-tokens: %s\n", error.c_str());
    return 2;
  }
  std::printf("%s\n", line->c_str());
  return 0;
}

}  // namespace trl
