#include "proxy/forward_body.h"

#include <algorithm>
#include <array>
#include <boost/container/small_vector.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <cassert>
#include <cstring>

#include "common/decimal.h"
#include "common/saturating.h"

namespace trl {
namespace {

// One replacement of body bytes [offset, offset + length) by `text` (length 0: an insertion).
struct Edit {
  size_t offset = 0;
  size_t length = 0;
  std::string_view text;
};

// The fields added after the root's '{', built on the stack: a request without a cap is common,
// and adding to it must not cost an allocation.
class StackText {
 public:
  void Append(std::string_view s) {
    assert(size_ + s.size() <= data_.size());
    std::memcpy(data_.data() + size_, s.data(), s.size());
    size_ += s.size();
  }
  std::string_view View() const { return {data_.data(), size_}; }

 private:
  // "max_output_tokens":<19 digits>, and "stream_options":{"include_usage":true}, fit.
  std::array<char, 96> data_;
  size_t size_ = 0;
};

// At most: model, two cap fields, stream_options, the fields added after the root's '{'.
using Edits = boost::container::small_vector<Edit, 5>;

constexpr std::string_view kUsageObject = R"({"include_usage":true})";

// Sets every cap field the client sent to `cap`; adds max_tokens (the Responses API:
// max_output_tokens) when the backend would find no cap it reads (none sent; or completions,
// whose only cap is max_tokens, without it).
void CapEdits(ApiEndpoint endpoint, const RequestFields& fields, const std::string& body,
              std::string_view cap, Edits& edits, StackText& added) {
  for (const ByteSpan& span : {fields.max_tokens_span, fields.max_completion_tokens_span}) {
    // An accepted cap is an integer without sign, fraction or exponent: its text is its value.
    if (span.Present() && std::string_view(body).substr(span.offset, span.length) != cap) {
      edits.push_back({span.offset, span.length, cap});
    }
  }
  const bool backend_sees_none =
      endpoint == ApiEndpoint::kChatCompletions
          ? !fields.max_tokens_span.Present() && !fields.max_completion_tokens_span.Present()
          : !fields.max_tokens_span.Present();
  if (backend_sees_none) {
    added.Append(endpoint == ApiEndpoint::kResponses ? R"("max_output_tokens":)"
                                                     : R"("max_tokens":)");
    added.Append(cap);
    added.Append(",");
  }
}

// Makes stream_options.include_usage true, keeping the object's other members as they are.
void UsageEdits(const RequestFields& fields, Edits& edits, StackText& added) {
  if (!fields.stream_options_span.Present()) {
    added.Append(R"("stream_options":)");
    added.Append(kUsageObject);
    added.Append(",");
  } else if (!fields.has_stream_options) {  // null
    edits.push_back(
        {fields.stream_options_span.offset, fields.stream_options_span.length, kUsageObject});
  } else if (fields.include_usage_span.Present()) {  // false or null
    edits.push_back({fields.include_usage_span.offset, fields.include_usage_span.length, "true"});
  } else {
    const std::string_view member = fields.stream_options_members > 0
                                        ? std::string_view(R"("include_usage":true,)")
                                        : std::string_view(R"("include_usage":true)");
    edits.push_back({fields.stream_options_span.offset + 1, 0, member});
  }
}

}  // namespace

int64_t ReservedCap(ApiEndpoint endpoint, const RequestFields& fields, int64_t max_output_tokens) {
  // A transcription names no cap: the model's is what it may write.
  if (endpoint == ApiEndpoint::kTranscriptions) return max_output_tokens;
  if (!Generates(endpoint)) return 0;
  if (!fields.max_tokens) return max_output_tokens;
  return std::min(*fields.max_tokens, max_output_tokens);
}

int64_t OutputAllowance(const RequestFields& fields, int64_t cap) {
  return ClampedMul(cap, fields.choices, kMaxTokenCount);
}

bool RewriteForwardBody(ApiEndpoint endpoint, const RequestFields& fields,
                        std::string_view canonical_model, int64_t cap, std::string& body) {
  Edits edits;
  std::string quoted_model;  // allocated only for a request that named an alias
  if (fields.model != canonical_model) {
    // A form field's value is raw bytes; a JSON body's, a JSON string.
    quoted_model = endpoint == ApiEndpoint::kTranscriptions
                       ? std::string(canonical_model)
                       : boost::json::serialize(boost::json::string(canonical_model));
    edits.push_back({fields.model_span.offset, fields.model_span.length, quoted_model});
  }
  const Decimal cap_text(cap);
  StackText added;
  if (Generates(endpoint)) {
    CapEdits(endpoint, fields, body, cap_text.View(), edits, added);
    // The Responses API's stream always ends with its usage (response.completed).
    if (fields.stream && !fields.include_usage && endpoint != ApiEndpoint::kResponses) {
      UsageEdits(fields, edits, added);
    }
  }
  // The root always has a member (model), so what is added ends with a comma.
  if (!added.View().empty()) edits.push_back({fields.after_root_brace, 0, added.View()});
  if (edits.empty()) return false;
  // From the end of the body backwards: an edit never moves the bytes of one still to come.
  std::sort(edits.begin(), edits.end(),
            [](const Edit& a, const Edit& b) { return a.offset > b.offset; });
  for (const Edit& e : edits) body.replace(e.offset, e.length, e.text);
  return true;
}

}  // namespace trl
