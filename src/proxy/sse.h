// Server-sent events as OpenAI streams them: splitting a byte stream into events, and reading
// the two things settlement needs from each event (the usage chunk, and the text relayed).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/text_views.h"

namespace trl {

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  // Of prompt_tokens, those the backend served from its prefix cache
  // (prompt_tokens_details.cached_tokens; the Responses API's input_tokens_details), at most
  // prompt_tokens. Missing, null or not a count: 0, every prompt token charged in full.
  int64_t cached_tokens = 0;
  int64_t Total() const { return prompt_tokens + completion_tokens; }
};

// Splits bytes into events ("...\n\n", CRLF tolerated). Keeps at most `max_event_bytes` of an
// unfinished event; beyond that the event is passed on as it is (never buffered without bound).
// Used by one stream at a time.
class SseSplitter {
 public:
  explicit SseSplitter(size_t max_event_bytes = 1 << 20) : max_event_bytes_(max_event_bytes) {}
  // Appends `data`; calls `on_event(event)` for every complete event, terminator included.
  template <typename F>
  void Feed(std::string_view data, F&& on_event);
  // What is left at the end of the stream (an unterminated event), and clears it.
  std::string TakeRest();

 private:
  size_t max_event_bytes_;
  std::string pending_;
};

// What a valid usage holds: chat and completions report prompt_tokens and completion_tokens;
// embeddings, rerank and score generate nothing and report prompt_tokens (else total_tokens, all
// that vLLM's rerank reports) only (a completion_tokens they do send must still be valid); the
// Responses API reports input_tokens and output_tokens (read as prompt
// and completion), at the root of a response and in `response` of a streamed
// response.completed.
// A transcription reports {"type": "tokens", input_tokens, output_tokens} (read as prompt and
// completion), or {"type": "duration", seconds}: no token usage, the seconds reported apart
// (audio_seconds below); its `text` is what the model wrote, and so is the whole of an answer
// that is not JSON (response_format text, srt, vtt).
enum class UsageFields { kPromptAndCompletion, kPromptOnly, kResponses, kTranscription };

// The most tokens a usage count may claim. Beyond it (or negative, fractional, not a number) the
// backend is broken: trusting it would refund or charge a budget absurdly, so the gateway's own
// count is used instead.
constexpr int64_t kMaxUsageTokens = 1'000'000'000;

// The `texts` below are what a model wrote, in every choice, counted when the backend reports
// no usage: `text` (completions), and in a streamed `delta` or a whole `message`: content,
// reasoning_content, reasoning, refusal, tool_calls[].function.name and .arguments,
// function_call.name and .arguments. Only these strings, not a delta's JSON, whose keys and ids
// would be counted again with every one-token chunk. The Responses API: the `delta` of a
// streamed response.*.delta event of generated text (output_text, refusal, reasoning_text,
// reasoning_summary_text, function_call_arguments); in a whole response, the `text` and
// `refusal` of each output item's content and summary parts, and a function call's name and
// arguments.
struct StreamEvent {
  bool done = false;                     // data: [DONE]
  bool usage_only = false;               // a usage member (not null) and no choices
  std::optional<Usage> usage;            // a valid usage only
  bool usage_invalid = false;            // a usage member that is not null and not valid
  TextViews texts;                       // what the model wrote (above)
  std::optional<int64_t> audio_seconds;  // a transcription's duration usage
  // The event's JSON (its data lines joined) and where its usage member's value sits in it
  // (length 0: none, or null), so that it can be relayed without usage. Like `texts`, views
  // into the parser's buffer: valid until the next ParseStreamEvent on this thread.
  std::string_view json;
  size_t usage_offset = 0;
  size_t usage_length = 0;
};

// Reads one event (as produced by SseSplitter). Events that are not JSON data lines give an
// empty StreamEvent. Thread-safe (a parser per thread).
StreamEvent ParseStreamEvent(std::string_view event, UsageFields usage_fields);

// Appends `event` (the last one ParseStreamEvent returned on this thread, with usage_length > 0)
// to `out` as one line "data: <json>\n\n" whose usage value is null: for a client that did not
// ask for usage, from a backend that puts usage on a chunk that also carries choices. Other
// fields of the event (event:, id:) are not kept; OpenAI streams have none. Not for the Responses
// API, whose usage is relayed as it is.
void AppendWithoutUsage(const StreamEvent& event, std::string& out);

// Reads usage and the generated texts from a whole (non-streaming) JSON response body.
struct ResponseSummary {
  std::optional<Usage> usage;  // a valid usage only
  bool usage_invalid = false;  // a usage member that is not null and not valid
  TextViews texts;
  std::optional<int64_t> audio_seconds;  // a transcription's duration usage
};
ResponseSummary ParseResponseBody(std::string& body, UsageFields usage_fields);

template <typename F>
void SseSplitter::Feed(std::string_view data, F&& on_event) {
  size_t start = 0;
  // Look for "\n\n" or "\n\r\n" across the pending bytes and the new ones.
  std::string_view scan;
  if (!pending_.empty()) {
    pending_.append(data);
    scan = pending_;
  } else {
    scan = data;
  }
  size_t pos = 0;
  while (pos < scan.size()) {
    size_t nl = scan.find('\n', pos);
    if (nl == std::string_view::npos) break;
    size_t next = nl + 1;
    if (next < scan.size() && scan[next] == '\n') {
      on_event(scan.substr(start, next + 1 - start));
      start = pos = next + 1;
      continue;
    }
    if (next + 1 < scan.size() && scan[next] == '\r' && scan[next + 1] == '\n') {
      on_event(scan.substr(start, next + 2 - start));
      start = pos = next + 2;
      continue;
    }
    pos = next;
  }
  std::string_view rest = scan.substr(start);
  if (rest.size() > max_event_bytes_) {
    on_event(rest);
    rest = {};
  }
  if (scan.data() == pending_.data()) {
    pending_.erase(0, pending_.size() - rest.size());
  } else {
    pending_.assign(rest);
  }
}

}  // namespace trl
