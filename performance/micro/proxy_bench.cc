// Proxy hot path, per request and per streamed chunk, without any I/O:
//
//   BM_ExtractRequestFields/<bytes>   the "parse" step: ExtractRequestFields on a chat body of
//                                     1 KiB, 64 KiB and 1 MiB (one long conversation: many
//                                     messages of prose). bytes_per_second is the parse rate;
//                                     the time per iteration is what one request of that size
//                                     costs before admission.
//   BM_ParseAndCount/<bytes>          the same plus CountPromptTokens (ApproxTokenCounter): the
//                                     whole prompt-side cost of a reservation.
//   BM_CountText/<bytes>              token estimation alone on prose of that size.
//   BM_CountTextCjk/<bytes>           the same on Chinese text (not ASCII: byte by byte).
//   BM_SseRelayChunk                  one 200-token stream's work per chunk as the relay does
//                                     it: SseSplitter::Feed of one upstream chunk (one event)
//                                     and ParseStreamEvent of the event, then counting its text.
//                                     items_per_second = chunks (tokens) per second.
//   BM_SseRelayChunkSplit             the same event arriving in two reads (split mid-JSON), so
//                                     the splitter has to keep the first part.
//   BM_ParseResponseBody              settlement of a non-streaming answer: usage + texts out of
//                                     a 16-token chat.completion body.
//   BM_AccessLogFormat                one access-log line (AccessLog::Format): what logging a
//                                     request costs its I/O thread before the line is batched.
//
// Build Release: cmake --build --preset release --target trl_micro_bench
#include <benchmark/benchmark.h>

#include <string>

#include "limits/token_counter.h"
#include "proxy/access_log.h"
#include "proxy/request_fields.h"
#include "proxy/sse.h"

namespace trl {
namespace {

const char* const kProse =
    "Rate limits protect the backend from bursts: a request may cost ten tokens or a hundred "
    "thousand, so the gateway charges the prompt and the output allowance before forwarding. ";

// A chat request of about `bytes` bytes: messages of prose alternating user/assistant.
std::string ChatBody(size_t bytes) {
  std::string body = R"({"model":"llama2-7b","max_tokens":256,"stream":false,"messages":[)";
  std::string content;
  bool first = true;
  int i = 0;
  while (body.size() + 128 < bytes) {
    content.clear();
    // Messages of up to ~4 KiB, like a pasted document in a conversation.
    while (content.size() < 4000 && body.size() + content.size() + 128 < bytes) content += kProse;
    if (content.empty()) content = "hi";
    body += first ? "" : ",";
    body += R"({"role":")";
    body += (i++ % 2 == 0) ? "user" : "assistant";
    body += R"(","content":")" + content + R"("})";
    first = false;
  }
  body += "]}";
  return body;
}

void BM_ExtractRequestFields(benchmark::State& state) {
  const std::string original = ChatBody(static_cast<size_t>(state.range(0)));
  std::string body = original;
  body.reserve(body.size() + 64);  // the padding the gateway's body already has
  RequestFields fields;
  for (auto _ : state) {
    fields = RequestFields{};
    auto err = ExtractRequestFields(ApiEndpoint::kChatCompletions, body, fields);
    if (err) {
      state.SkipWithError(err->message.c_str());
      break;
    }
    benchmark::DoNotOptimize(fields.texts.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(original.size()));
  state.counters["messages"] = static_cast<double>(fields.messages);
}
BENCHMARK(BM_ExtractRequestFields)->Arg(1 << 10)->Arg(64 << 10)->Arg(1 << 20);

void BM_ParseAndCount(benchmark::State& state) {
  const std::string original = ChatBody(static_cast<size_t>(state.range(0)));
  std::string body = original;
  body.reserve(body.size() + 64);
  ApproxTokenCounter counter;
  RequestFields fields;
  int64_t tokens = 0;
  for (auto _ : state) {
    fields = RequestFields{};
    if (ExtractRequestFields(ApiEndpoint::kChatCompletions, body, fields)) {
      state.SkipWithError("extraction failed");
      break;
    }
    tokens = CountPromptTokens(fields, counter, MediaTokens{});
    benchmark::DoNotOptimize(tokens);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(original.size()));
  state.counters["tokens"] = static_cast<double>(tokens);
}
BENCHMARK(BM_ParseAndCount)->Arg(1 << 10)->Arg(64 << 10)->Arg(1 << 20);

void BM_CountText(benchmark::State& state) {
  ApproxTokenCounter counter;
  std::string text;
  while (text.size() < static_cast<size_t>(state.range(0))) text += kProse;
  text.resize(static_cast<size_t>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(counter.CountText(text));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(text.size()));
}
BENCHMARK(BM_CountText)->Arg(64)->Arg(1 << 10)->Arg(64 << 10);

// The same on text that is not ASCII (Chinese with ASCII punctuation), which is counted byte by
// byte instead of 64 bytes at a time.
void BM_CountTextCjk(benchmark::State& state) {
  ApproxTokenCounter counter;
  const std::string sentence =
      "\u901f\u7387\u9650\u5236\u4fdd\u62a4\u540e\u7aef, "
      "\u6bcf\u4e2a\u8bf7\u6c42\u5148\u9884\u7559\u4ee4\u724c. ";
  std::string text;
  while (text.size() < static_cast<size_t>(state.range(0))) text += sentence;
  for (auto _ : state) benchmark::DoNotOptimize(counter.CountText(text));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(text.size()));
}
BENCHMARK(BM_CountTextCjk)->Arg(64 << 10);

// One chunk as mock-llm (and vLLM) send it: one event per token.
std::string TokenEvent(int n) {
  return R"(data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1700000000,)"
         R"("model":"llama2-7b","choices":[{"index":0,"delta":{"content":" w)" +
         std::to_string(n) + R"("},"logprobs":null,"finish_reason":null}]})" + "\n\n";
}

void BM_SseRelayChunk(benchmark::State& state) {
  ApproxTokenCounter counter;
  SseSplitter splitter;
  const std::string chunk = TokenEvent(42);
  int64_t tokens = 0;
  for (auto _ : state) {
    splitter.Feed(chunk, [&](std::string_view event) {
      StreamEvent e = ParseStreamEvent(event, UsageFields::kPromptAndCompletion);
      for (std::string_view t : e.texts) tokens += counter.CountText(t);
    });
  }
  benchmark::DoNotOptimize(tokens);
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(chunk.size()));
}
BENCHMARK(BM_SseRelayChunk);

void BM_SseRelayChunkSplit(benchmark::State& state) {
  ApproxTokenCounter counter;
  SseSplitter splitter;
  const std::string chunk = TokenEvent(42);
  const std::string_view a = std::string_view(chunk).substr(0, chunk.size() / 2);
  const std::string_view b = std::string_view(chunk).substr(chunk.size() / 2);
  int64_t tokens = 0;
  auto on_event = [&](std::string_view event) {
    StreamEvent e = ParseStreamEvent(event, UsageFields::kPromptAndCompletion);
    for (std::string_view t : e.texts) tokens += counter.CountText(t);
  };
  for (auto _ : state) {
    splitter.Feed(a, on_event);
    splitter.Feed(b, on_event);
  }
  benchmark::DoNotOptimize(tokens);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SseRelayChunkSplit);

void BM_ParseResponseBody(benchmark::State& state) {
  const std::string original =
      R"({"id":"chatcmpl-mock1","object":"chat.completion","created":1795881546,"model":"m",)"
      R"("choices":[{"index":0,"message":{"role":"assistant","content":"w1 w2 w3 w4 w5 w6 w7 )"
      R"(w8 w9 w10 w11 w12 w13 w14 w15 w16"},"logprobs":null,"finish_reason":"length"}],)"
      R"("usage":{"prompt_tokens":8,"completion_tokens":16,"total_tokens":24}})";
  std::string body = original;
  body.reserve(body.size() + 64);
  for (auto _ : state) {
    ResponseSummary s = ParseResponseBody(body, UsageFields::kPromptAndCompletion);
    benchmark::DoNotOptimize(s.usage);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseResponseBody);

}  // namespace
// One access-log line: what each logged request costs its I/O thread (access_log.h).
void BM_AccessLogFormat(benchmark::State& state) {
  AccessRecord r;
  r.unix_micros = 1'796'579'031'123'456;
  r.request_id = "req-03e545c18ffd00000000000001";
  r.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  r.client = "127.0.0.1";
  r.method = "POST";
  r.path = "/v1/chat/completions";
  r.key = "team-a";
  r.tenant = "acme";
  r.model = "llama2-7b";
  r.backend = "http://127.0.0.1:8000";
  r.status = 200;
  r.reserved_tokens = 270;
  r.prompt_tokens = 14;
  r.completion_tokens = 256;
  r.cost_source = "usage";
  r.queue_us = 42;
  r.ttft_us = 52'500;
  r.total_us = 6'419'250;
  for (auto _ : state) benchmark::DoNotOptimize(AccessLog::Format(r));
}
BENCHMARK(BM_AccessLogFormat);

}  // namespace trl
