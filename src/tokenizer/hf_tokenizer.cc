#include "tokenizer/hf_tokenizer.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <array>
#include <optional>
#include <stdexcept>
#include <string_view>

#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/pipeline.h"

namespace trl::tok {

namespace {

namespace dom = simdjson::dom;

class HfTokenizer final : public Tokenizer {
 public:
  AddedTokens added;
  Pipeline pipeline;
  BpeModel model;

 private:
  void EncodeUtf8(std::string_view text, std::vector<uint32_t>& ids) const override {
    const auto encode = [&](std::string_view section, bool at_start) {
      pipeline.Pieces(section, at_start, [&](std::string_view piece) { model.Encode(piece, ids); });
    };
    if (added.Empty()) {
      encode(text, true);
      return;
    }
    bool at_start = true;
    added.Split(text, [&](std::string_view section, std::optional<uint32_t> token) {
      if (token) {
        ids.push_back(*token);
      } else {
        encode(section, at_start);
      }
      at_start = false;
    });
  }
};

[[noreturn]] void Unsupported(std::string_view what) {
  throw std::invalid_argument(std::string(what));
}

std::string_view StringAt(dom::element e, std::string_view key) {
  std::string_view s;
  if (e[key].get_string().get(s)) Unsupported(fmt::format("'{}' must be a string", key));
  return s;
}

bool BoolAt(dom::element e, std::string_view key, bool absent) {
  dom::element v;
  if (e[key].get(v) || v.is_null()) return absent;
  bool b = false;
  if (v.get_bool().get(b)) Unsupported(fmt::format("'{}' must be a boolean", key));
  return b;
}

bool IsNullOrAbsent(dom::element e, std::string_view key) {
  dom::element v;
  return e[key].get(v) || v.is_null();
}

// The steps of a Sequence normalizer or pre-tokenizer, under `key`.
dom::array SequenceSteps(dom::element sequence, std::string_view key, std::string_view kind) {
  dom::array steps;
  if (sequence[key].get_array().get(steps)) {
    Unsupported(fmt::format("a Sequence {} needs '{}'", kind, key));
  }
  return steps;
}

void ReadNormalizer(dom::element n, Pipeline& pipeline) {
  if (n.is_null()) return;
  const std::string_view type = StringAt(n, "type");
  if (type == "Sequence") {
    for (dom::element step : SequenceSteps(n, "normalizers", "normalizer")) {
      ReadNormalizer(step, pipeline);
    }
  } else if (type == "Prepend") {
    pipeline.normalizer.push_back(
        {NormalizeStep::Kind::kPrepend, "", std::string(StringAt(n, "prepend"))});
  } else if (type == "Replace") {
    std::string_view from;
    if (n["pattern"]["String"].get_string().get(from)) {
      Unsupported("the normalizer Replace with a Regex pattern is not supported");
    }
    pipeline.normalizer.push_back(
        {NormalizeStep::Kind::kReplace, std::string(from), std::string(StringAt(n, "content"))});
  } else {
    Unsupported(fmt::format("the normalizer {} is not supported", type));
  }
}

// GPT-2's expression, which ByteLevel splits with when use_regex is on.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

PreTokenizeStep RegexStep(std::string_view pattern) {
  PreTokenizeStep step{PreTokenizeStep::Kind::kRegex, {}, {}, {}, false};
  step.regex = std::make_shared<const RegexSplit>(pattern);
  return step;
}

void ReadSplit(dom::element p, Pipeline& pipeline) {
  if (StringAt(p, "behavior") != "Isolated" || BoolAt(p, "invert", false)) {
    Unsupported(fmt::format("the pre-tokenizer Split with behavior {}{} is not supported",
                            StringAt(p, "behavior"),
                            BoolAt(p, "invert", false) ? " (inverted)" : ""));
  }
  std::string_view pattern;
  if (!p["pattern"]["Regex"].get_string().get(pattern)) {
    pipeline.pre_tokenizer.push_back(RegexStep(pattern));
  } else if (!p["pattern"]["String"].get_string().get(pattern)) {
    pipeline.pre_tokenizer.push_back(RegexStep("\\Q" + std::string(pattern) + "\\E"));
  } else {
    Unsupported("a Split pre-tokenizer needs a Regex or String pattern");
  }
}

void ReadMetaspace(dom::element p, Pipeline& pipeline) {
  PreTokenizeStep step{PreTokenizeStep::Kind::kMetaspace,
                       {},
                       std::string(StringAt(p, "replacement")),
                       {},
                       BoolAt(p, "split", true)};
  std::string_view scheme;
  if (!p["prepend_scheme"].get_string().get(scheme)) {
    if (scheme == "first") {
      step.prepend = PreTokenizeStep::Prepend::kFirst;
    } else if (scheme == "never") {
      step.prepend = PreTokenizeStep::Prepend::kNever;
    } else if (scheme != "always") {
      Unsupported(fmt::format("Metaspace prepend_scheme {} is not supported", scheme));
    }
  } else if (!BoolAt(p, "add_prefix_space", true)) {
    step.prepend = PreTokenizeStep::Prepend::kNever;
  }
  pipeline.pre_tokenizer.push_back(std::move(step));
}

// Adds the steps of pre-tokenizer `p`; *byte_level is set when one is ByteLevel.
void ReadPreTokenizer(dom::element p, Pipeline& pipeline, bool* byte_level) {
  if (p.is_null()) return;
  const std::string_view type = StringAt(p, "type");
  if (type == "Sequence") {
    for (dom::element step : SequenceSteps(p, "pretokenizers", "pre-tokenizer")) {
      ReadPreTokenizer(step, pipeline, byte_level);
    }
  } else if (type == "Split") {
    ReadSplit(p, pipeline);
  } else if (type == "ByteLevel") {
    *byte_level = true;
    if (BoolAt(p, "add_prefix_space", true)) {
      pipeline.pre_tokenizer.push_back({PreTokenizeStep::Kind::kPrefixSpace, {}, {}, {}, false});
    }
    if (BoolAt(p, "use_regex", true)) pipeline.pre_tokenizer.push_back(RegexStep(kGpt2Pattern));
  } else if (type == "Metaspace") {
    ReadMetaspace(p, pipeline);
  } else {
    Unsupported(fmt::format("the pre-tokenizer {} is not supported", type));
  }
}

// The bytes a vocabulary or merge entry stands for.
std::optional<std::string> EntryBytes(std::string_view entry, bool byte_level) {
  if (!byte_level) return std::string(entry);
  return FromByteLevel(entry);
}

void ReadVocabulary(dom::object vocab, bool byte_level, BpeModel& model) {
  for (const auto field : vocab) {
    uint64_t id = 0;
    if (field.value.get_uint64().get(id) || id > UINT32_MAX)
      Unsupported("vocab ids must be integers");
    if (auto bytes = EntryBytes(field.key, byte_level))
      model.AddToken(*bytes, static_cast<uint32_t>(id));
  }
}

std::pair<std::string_view, std::string_view> MergePair(dom::element merge, size_t rank) {
  std::string_view text;
  if (!merge.get_string().get(text)) {
    const size_t space = text.find(' ');
    if (space != std::string_view::npos && space > 0 && space + 1 < text.size()) {
      return {text.substr(0, space), text.substr(space + 1)};
    }
  } else {
    dom::array pair;
    std::string_view left;
    std::string_view right;
    if (!merge.get_array().get(pair) && pair.size() == 2 && !pair.at(0).get_string().get(left) &&
        !pair.at(1).get_string().get(right)) {
      return {left, right};
    }
  }
  Unsupported(fmt::format("merges[{}] is neither \"a b\" nor [\"a\", \"b\"]", rank));
}

void ReadMerges(dom::array merges, bool byte_level, BpeModel& model) {
  size_t rank = 0;
  for (dom::element merge : merges) {
    const auto [left, right] = MergePair(merge, rank);
    const auto l = EntryBytes(left, byte_level);
    const auto r = EntryBytes(right, byte_level);
    const auto left_id = l ? model.Find(*l) : std::nullopt;
    const auto right_id = r ? model.Find(*r) : std::nullopt;
    const auto merged = left_id && right_id ? model.Find(*l + *r) : std::nullopt;
    if (!merged) {
      Unsupported(fmt::format("merges[{}] ({} {}) names a token outside the vocabulary", rank, left,
                              right));
    }
    model.AddMerge(*left_id, *right_id, static_cast<uint32_t>(rank), *merged);
    ++rank;
  }
}

void ReadModel(dom::element m, bool byte_level, BpeModel& model) {
  std::string_view type = "BPE";
  if (!IsNullOrAbsent(m, "type")) type = StringAt(m, "type");
  if (type != "BPE") Unsupported(fmt::format("the model {} is not supported (only BPE)", type));
  double dropout = 0;
  if (!IsNullOrAbsent(m, "dropout") && (m["dropout"].get_double().get(dropout) || dropout != 0)) {
    Unsupported("BPE dropout is not supported (it makes the count random)");
  }
  for (const std::string_view affix : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (!IsNullOrAbsent(m, affix) && !StringAt(m, affix).empty()) {
      Unsupported(fmt::format("BPE {} is not supported", affix));
    }
  }
  dom::object vocab;
  dom::array merges;
  if (m["vocab"].get_object().get(vocab) || m["merges"].get_array().get(merges)) {
    Unsupported("a BPE model needs 'vocab' (an object) and 'merges' (an array)");
  }
  ReadVocabulary(vocab, byte_level, model);
  ReadMerges(merges, byte_level, model);
  BpeModel::Options options;
  options.symbols = byte_level ? BpeModel::Symbols::kBytes : BpeModel::Symbols::kCharacters;
  options.ignore_merges = BoolAt(m, "ignore_merges", false);
  options.byte_fallback = BoolAt(m, "byte_fallback", false);
  options.fuse_unk = BoolAt(m, "fuse_unk", false);
  if (!IsNullOrAbsent(m, "unk_token")) options.unk = model.Find(StringAt(m, "unk_token"));
  if (const std::string missing = model.Finish(options); !missing.empty()) Unsupported(missing);
}

void ReadAddedTokens(dom::element root, bool has_normalizer, AddedTokens& added) {
  dom::array tokens;
  if (root["added_tokens"].get_array().get(tokens)) return;
  for (dom::element t : tokens) {
    const std::string_view content = StringAt(t, "content");
    uint64_t id = 0;
    if (t["id"].get_uint64().get(id) || id > UINT32_MAX)
      Unsupported("added_tokens ids must be integers");
    for (const std::string_view flag : {"lstrip", "rstrip", "single_word"}) {
      if (BoolAt(t, flag, false)) {
        Unsupported(
            fmt::format("the added token {} has {}, which is not supported", content, flag));
      }
    }
    if (has_normalizer && BoolAt(t, "normalized", false)) {
      Unsupported(fmt::format(
          "the added token {} is matched after normalization, which is not supported", content));
    }
    added.Add(std::string(content), static_cast<uint32_t>(id));
  }
}

}  // namespace

std::unique_ptr<Tokenizer> LoadHuggingFace(const std::string& path) {
  dom::parser parser;
  dom::element root;
  if (const auto error = parser.load(path).get(root)) {
    throw std::runtime_error(
        fmt::format("{}: cannot read it as JSON ({})", path, simdjson::error_message(error)));
  }
  try {
    auto tokenizer = std::make_unique<HfTokenizer>();
    dom::element part;
    const bool has_normalizer = !root["normalizer"].get(part) && !part.is_null();
    if (has_normalizer) ReadNormalizer(part, tokenizer->pipeline);
    bool byte_level = false;
    if (!root["pre_tokenizer"].get(part)) ReadPreTokenizer(part, tokenizer->pipeline, &byte_level);
    if (root["model"].get(part)) Unsupported("it has no 'model'");
    ReadModel(part, byte_level, tokenizer->model);
    ReadAddedTokens(root, has_normalizer, tokenizer->added);
    return tokenizer;
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(fmt::format("{}: {}", path, e.what()));
  }
}

}  // namespace trl::tok
