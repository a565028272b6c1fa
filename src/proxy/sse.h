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

struct StreamEvent {
  bool done = false;               // data: [DONE]
  bool usage_only = false;         // the include_usage chunk: no choices, usage set
  std::optional<Usage> usage;
  TextViews texts;  // delta.content / text of every choice (views into the parser's buffer:
                    // valid until the next parse)
};

// Reads one event (as produced by SseSplitter). Events that are not JSON data lines give an
// empty StreamEvent. Thread-safe (a parser per thread).
StreamEvent ParseStreamEvent(std::string_view event);

// Reads usage and the generated texts from a whole (non-streaming) JSON response body.
struct ResponseSummary {
  std::optional<Usage> usage;
  TextViews texts;
};
ResponseSummary ParseResponseBody(std::string& body);

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
