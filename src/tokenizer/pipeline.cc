#include "tokenizer/pipeline.h"

namespace trl::tok {

namespace {

std::string ReplaceAll(std::string_view text, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(text.size());
  size_t at = 0;
  for (size_t hit = text.find(from); hit != std::string_view::npos; hit = text.find(from, at)) {
    out.append(text.substr(at, hit - at));
    out.append(to);
    at = hit + from.size();
  }
  out.append(text.substr(at));
  return out;
}

}  // namespace

std::string Pipeline::Normalize(std::string_view text) const {
  std::string out(text);
  for (const NormalizeStep& step : normalizer) {
    if (step.kind == NormalizeStep::Kind::kPrepend) {
      if (!out.empty()) out.insert(0, step.to);
    } else if (!step.from.empty()) {
      out = ReplaceAll(out, step.from, step.to);
    }
  }
  return out;
}

std::string Pipeline::Metaspace(const PreTokenizeStep& step, std::string_view text, bool at_start) {
  std::string out = ReplaceAll(text, " ", step.replacement);
  const bool prepend = step.prepend == PreTokenizeStep::Prepend::kAlways ||
                       (step.prepend == PreTokenizeStep::Prepend::kFirst && at_start);
  if (prepend && !out.starts_with(step.replacement)) out.insert(0, step.replacement);
  return out;
}

}  // namespace trl::tok
