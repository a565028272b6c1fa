// Token counting over the corpus of the tokenizer speed comparison (issue 32; run by
// performance/tokenizers.sh, which writes the corpus and the .tiktoken files and sets the
// environment): single thread, each tokenizer's Count over
//   documents  the corpus cut as requests come: ~4 KB documents, each the shortest run of whole
//              lines of at least 4096 bytes (performance/tokenizers/corpus.mjs cuts the same way,
//              so the references count the same strings);
//   whole      the corpus (~4 MB) as one text.
// One iteration is one pass over the corpus. bytes_per_second is the corpus bytes counted per
// second; tokens_per_second the tokens counted per second; tokens the tokens of one pass (equal
// to the references' count over the same documents, or the comparison is between different work);
// documents the texts of one pass.
//
// Environment (a missing variable skips that tokenizer's benchmarks):
//   TRL_TOKENIZER_CORPUS   the corpus file (build/tokenizer-corpus.txt)
//   TRL_TOKENIZER_LLAMA3   SPEC of the Llama 3 tokenizer.json   (a path)
//   TRL_TOKENIZER_LLAMA2   SPEC of the Llama 2 tokenizer.json   (a path)
//   TRL_TOKENIZER_CL100K   SPEC of cl100k_base                  (tiktoken:PATH)
//   TRL_TOKENIZER_O200K    SPEC of o200k_base                   (tiktoken:PATH)
// BM_Count/approx/... is the estimate (ApproxTokenCounter) on the same corpus: the cost the exact
// counters are weighed against.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "limits/token_counter.h"
#include "tokenizer/tokenizer.h"

namespace trl {
namespace {

constexpr size_t kDocumentBytes = 4096;

struct Corpus {
  std::string text;
  std::vector<std::string_view> documents;
};

// The corpus of TRL_TOKENIZER_CORPUS, read once; null (and *error set) if it cannot be.
const Corpus* LoadCorpus(std::string* error) {
  static const std::unique_ptr<Corpus> corpus = []() -> std::unique_ptr<Corpus> {
    const char* file = std::getenv("TRL_TOKENIZER_CORPUS");
    if (file == nullptr) return nullptr;
    std::ifstream in(file, std::ios::binary);
    if (!in) return nullptr;
    auto c = std::make_unique<Corpus>();
    std::ostringstream s;
    s << in.rdbuf();
    c->text = std::move(s).str();
    std::string_view rest = c->text;
    while (!rest.empty()) {
      size_t nl = rest.size() > kDocumentBytes ? rest.find('\n', kDocumentBytes - 1)
                                               : std::string_view::npos;
      size_t end = nl == std::string_view::npos ? rest.size() : nl + 1;
      c->documents.push_back(rest.substr(0, end));
      rest.remove_prefix(end);
    }
    return c;
  }();
  if (corpus == nullptr) *error = "TRL_TOKENIZER_CORPUS is unset or unreadable";
  return corpus.get();
}

// The tokenizer named by environment variable `var`, loaded once (loading is not what is
// measured, and Google Benchmark calls a benchmark function several times); null (and *error
// set) if it is unset or cannot be loaded.
const Tokenizer* LoadFromEnv(const char* var, std::string* error) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> loaded;
  static std::map<std::string, std::string> failed;
  const char* spec = std::getenv(var);
  if (spec == nullptr) {
    *error = std::string(var) + " is unset";
    return nullptr;
  }
  if (auto it = failed.find(var); it != failed.end()) {
    *error = it->second;
    return nullptr;
  }
  auto it = loaded.find(var);
  if (it == loaded.end()) {
    try {
      it = loaded.emplace(var, LoadTokenizer(spec)).first;
    } catch (const std::exception& e) {
      *error = failed[var] = e.what();
      return nullptr;
    }
  }
  return it->second.get();
}

enum class Input { kDocuments, kWhole };

// Runs passes of `count` over the corpus (as documents or whole) and reports bytes, tokens.
template <typename CountFn>
void CountPasses(benchmark::State& state, const Corpus& corpus, Input input, CountFn count) {
  std::vector<std::string_view> texts =
      input == Input::kDocuments ? corpus.documents : std::vector<std::string_view>{corpus.text};
  int64_t tokens = 0;
  for (auto _ : state) {
    tokens = 0;
    for (std::string_view text : texts) tokens += static_cast<int64_t>(count(text));
    benchmark::DoNotOptimize(tokens);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(corpus.text.size()));
  state.counters["tokens_per_second"] = benchmark::Counter(
      static_cast<double>(tokens * state.iterations()), benchmark::Counter::kIsRate);
  state.counters["tokens"] = static_cast<double>(tokens);
  // bench.mjs checks this against its own cut: the same strings, or no comparison.
  state.counters["documents"] = static_cast<double>(texts.size());
}

// `var` names the tokenizer's environment variable; null means the approx estimate.
void BM_Count(benchmark::State& state, const char* var, Input input) {
  std::string error;
  const Corpus* corpus = LoadCorpus(&error);
  const Tokenizer* tokenizer = corpus && var ? LoadFromEnv(var, &error) : nullptr;
  if (corpus == nullptr || (var && tokenizer == nullptr)) {
    state.SkipWithError(error.c_str());
    for (auto _ : state) {  // not entered after SkipWithError
    }
    return;
  }
  if (tokenizer) {
    CountPasses(state, *corpus, input, [&](std::string_view t) { return tokenizer->Count(t); });
  } else {
    ApproxTokenCounter counter;
    CountPasses(state, *corpus, input, [&](std::string_view t) { return counter.CountText(t); });
  }
}

// Names are BM_Count/<tokenizer>/<documents|whole>: performance/tokenizers/bench.mjs reads them.
const bool registered = [] {
  struct Case {
    const char* name;
    const char* var;  // null: the approx estimate
  };
  for (Case c : {Case{"llama3", "TRL_TOKENIZER_LLAMA3"}, Case{"llama2", "TRL_TOKENIZER_LLAMA2"},
                 Case{"cl100k_base", "TRL_TOKENIZER_CL100K"},
                 Case{"o200k_base", "TRL_TOKENIZER_O200K"}, Case{"approx", nullptr}}) {
    for (auto [input, label] :
         {std::pair{Input::kDocuments, "documents"}, std::pair{Input::kWhole, "whole"}}) {
      std::string name = std::string("BM_Count/") + c.name + "/" + label;
      // Wall time, as the references are timed in bench.mjs (single thread: equal to CPU time
      // on an idle machine).
      benchmark::RegisterBenchmark(name.c_str(), BM_Count, c.var, input)->UseRealTime();
    }
  }
  return true;
}();

}  // namespace
}  // namespace trl
