#include "mock/mock_server.h"

#include <fmt/format.h>
#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/detail/socket_option.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <functional>
#include <iterator>
#include <optional>
#include <thread>
#include <variant>

#include "mock/mock_api.h"
#include "mock/mock_gzip.h"
#include "mock/mock_responses.h"
#include "mock/mock_score.h"
#include "mock/mock_tokenize.h"
#include "mock/mock_transcription.h"

namespace trl {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using asio::ip::tcp;
using std::chrono::steady_clock;
using namespace asio::experimental::awaitable_operators;

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr auto kIoTimeout = std::chrono::seconds(60);  // idle keep-alive and stalled writes
constexpr uint64_t kBodyLimit = 64ull << 20;
constexpr uint32_t kHeaderLimit = 64 << 10;
constexpr std::string_view kJson = "application/json";
using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

// Holds a gauge up for one scope.
class GaugeGuard {
 public:
  explicit GaugeGuard(std::atomic<int64_t>& gauge) : gauge_(gauge) { ++gauge_; }
  ~GaugeGuard() { --gauge_; }
  GaugeGuard(const GaugeGuard&) = delete;
  GaugeGuard& operator=(const GaugeGuard&) = delete;

 private:
  std::atomic<int64_t>& gauge_;
};

// Holds vllm:num_requests_running up for one scope.
class RunningGuard {
 public:
  explicit RunningGuard(Gauge& gauge) : gauge_(gauge) { gauge_.Add(1); }
  ~RunningGuard() { gauge_.Add(-1); }
  RunningGuard(const RunningGuard&) = delete;
  RunningGuard& operator=(const RunningGuard&) = delete;

 private:
  Gauge& gauge_;
};

double SecondsSince(steady_clock::time_point start) {
  return std::chrono::duration<double>(steady_clock::now() - start).count();
}

struct SessionDeps {
  const MockOptions* options;
  MockStats* stats;
  const MockMetrics* metrics;
  MockRequestLog* request_log;
  std::atomic<uint64_t>* next_response_seq;
  MockVocabulary* vocabulary;
};

// A utility route's pure half (MockCall, MockReply: mock_api.h).
using MockAnswerer = MockResult (*)(MockCall&);

// What the connection does after a response: keep serving (unless the request asked to close),
// or stop at once because the socket is closed, reset or dead.
enum class Next { kKeepAlive, kGone };

// GCC 12 destroyed the temporary in `co_await WriteError(MockError{...})` twice (a double free
// seen in tests), so arguments with destructors are named locals before a co_await.
//
// One connection; lives in its coroutine frame and runs on its worker's thread only.
// Responses are written as raw bytes from two reused buffers (head_, body_), so a warm
// keep-alive connection allocates little beyond Beast's request parser.
class Session {
 public:
  Session(tcp::socket socket, SessionDeps deps)
      : stream_(std::move(socket)), timer_(stream_.get_executor()), deps_(deps) {}

  awaitable<void> Run() {
    GaugeGuard connection(deps_.stats->open_connections);
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(kHeaderLimit);
      parser.body_limit(kBodyLimit);
      stream_.expires_after(kIoTimeout);
      accepts_gzip_ = false;
      gzip_response_ = false;
      auto [ec, bytes] = co_await http::async_read(stream_, buffer_, parser, kUseTuple);
      if (ec == http::error::body_limit) {
        keep_alive_ = false;
        const MockError too_large{
            413, "request body exceeds 64 MiB", "invalid_request_error", {}, {}};
        co_await WriteError(too_large);
        break;
      }
      if (ec) break;
      http::request<http::string_body>& request = parser.get();
      keep_alive_ = request.keep_alive();
      http10_ = request.version() < 11;
      watch_peer_ = true;
      auto [first, last] = request.equal_range(http::field::accept_encoding);
      for (auto field = first; field != last; ++field) {
        accepts_gzip_ = accepts_gzip_ || AcceptsGzip(field->value());
      }
      Next next = co_await Handle(request);
      if (next == Next::kGone) co_return;
      if (!keep_alive_) break;
    }
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

 private:
  const MockOptions& Options() const { return *deps_.options; }
  MockStats& Stats() { return *deps_.stats; }

  awaitable<Next> Handle(http::request<http::string_body>& request) {
    std::string_view target = request.target();
    target = target.substr(0, target.find('?'));
    bool get = request.method() == http::verb::get;
    bool post = request.method() == http::verb::post;
    body_.clear();
    if (get && target == "/health") {
      co_return co_await WriteBody(200, "text/plain");
    }
    if (get && target == "/v1/models") {
      AppendModelsBody(body_, Options().models, std::time(nullptr));
      co_return co_await WriteBody(200, kJson);
    }
    if (get && target == "/metrics") {
      body_ = deps_.metrics->Render();
      co_return co_await WriteBody(200, "text/plain; version=0.0.4; charset=utf-8");
    }
    const bool reset_stats = post && target == "/mock/reset-stats";
    if (reset_stats || (get && target == "/mock/stats")) {
      if (reset_stats) {
        Stats().ResetTotals();
        deps_.request_log->Clear();
      }
      Stats().AppendJson(body_);
      co_return co_await WriteBody(200, kJson);
    }
    if (get && target == "/mock/requests") {
      deps_.request_log->AppendJson(body_);
      co_return co_await WriteBody(200, kJson);
    }
    if (post && target == "/v1/chat/completions") {
      co_return co_await HandleInference(MockEndpoint::kChat, request);
    }
    if (post && target == "/v1/completions") {
      co_return co_await HandleInference(MockEndpoint::kCompletions, request);
    }
    if (post && target == "/v1/embeddings") {
      co_return co_await HandleInference(MockEndpoint::kEmbeddings, request);
    }
    if (post && target == "/v1/responses") {
      co_return co_await HandleInference(MockEndpoint::kResponses, request);
    }
    if (post) {
      if (MockAnswerer answerer = UtilityRoute(target)) {
        co_return co_await HandleUtility(answerer, request);
      }
    }
    const MockError no_route{
        404, "no route for " + std::string(target), "invalid_request_error", {}, {}};
    co_return co_await WriteError(no_route);
  }

  // Where an answer's generation is recorded (mock_metrics.h), and when its request arrived.
  struct Generation {
    const MockMetrics::Model& metrics;
    steady_clock::time_point arrival;

    void FirstToken() const { metrics.time_to_first_token->Observe(SecondsSince(arrival)); }
    void Tokens(int64_t count) const { metrics.generation_tokens->Add(static_cast<double>(count)); }
  };

  static MockAnswerer UtilityRoute(std::string_view target) {
    if (target == "/v1/rerank") return AnswerRerank;
    if (target == "/v1/score") return AnswerScore;
    if (target == "/tokenize") return AnswerTokenize;
    if (target == "/detokenize") return AnswerDetokenize;
    if (target == "/v1/audio/transcriptions") return AnswerTranscription;
    return nullptr;
  }

  // Counts and records a request to a model route and reads its x-mock-fault. `answered` is set
  // when the fault is the whole answer (a 500, a reset, a hang).
  awaitable<MockFault> Admit(http::request<http::string_body>& http,
                             std::optional<Next>& answered) {
    ++Stats().requests_total;
    Record(http);
    MockFault fault = Options().faults ? ParseMockFault(http["x-mock-fault"]) : MockFault::kNone;
    switch (fault) {
      case MockFault::kHttp500: {
        const MockError injected{500, "mock-llm injected fault: http500", "api_error", {}, {}};
        answered = co_await WriteError(injected);
        break;
      }
      case MockFault::kReset:
        Reset();
        answered = Next::kGone;
        break;
      case MockFault::kHang:
        co_await WaitForPeerClose();
        answered = Next::kGone;
        break;
      default:
        break;
    }
    co_return fault;
  }

  // rerank, score, tokenize, detokenize, transcriptions: one body, after --ttft when the reply
  // asks for a prefill.
  awaitable<Next> HandleUtility(MockAnswerer answerer, http::request<http::string_body>& http) {
    std::optional<Next> answered;
    const MockFault fault = co_await Admit(http, answered);
    if (answered) co_return *answered;
    const uint64_t seq = deps_.next_response_seq->fetch_add(1, std::memory_order_relaxed);
    MockCall call{http.body(),
                  http[http::field::content_type],
                  Options(),
                  *deps_.vocabulary,
                  seq,
                  std::time(nullptr),
                  UsageReportFor(fault)};
    MockResult result = answerer(call);
    if (auto* error = std::get_if<MockError>(&result)) {
      co_return co_await WriteError(*error);
    }
    MockReply& reply = std::get<MockReply>(result);
    Stats().served_prompt_tokens_total += reply.prompt_tokens;
    deps_.metrics->For(reply.model).prompt_tokens->Add(static_cast<double>(reply.prompt_tokens));
    if (reply.prefill && !co_await WaitUntil(steady_clock::now() + Options().ttft)) {
      co_return Next::kGone;
    }
    body_ = std::move(reply.body);
    EncodeBody(reply.content_type);
    const MockUsage usage{reply.prompt_tokens, 0};
    const int sign = reply.usage_reported ? 1 : 0;
    Report(usage, sign);  // before the write, as Whole does
    Next next = co_await WriteEncodedBody(200, reply.content_type);
    if (next == Next::kGone) Report(usage, -sign);
    co_return next;
  }

  awaitable<Next> HandleInference(MockEndpoint endpoint, http::request<http::string_body>& http) {
    const steady_clock::time_point arrival = steady_clock::now();
    std::optional<Next> answered;
    const MockFault fault = co_await Admit(http, answered);
    if (answered) co_return *answered;
    auto parsed = endpoint == MockEndpoint::kResponses
                      ? ParseResponsesRequest(http.body(), Options())
                      : ParseMockRequest(endpoint, http.body(), Options());
    if (auto* error = std::get_if<MockError>(&parsed)) {
      co_return co_await WriteError(*error);
    }
    MockRequest& request = std::get<MockRequest>(parsed);
    if (endpoint == MockEndpoint::kChat || endpoint == MockEndpoint::kCompletions) {
      if (auto error = ReadCachedTokens(http, request)) {
        co_return co_await WriteError(*error);
      }
    }
    const MockAnswer answer = PlanMockAnswer(request, Options());
    Stats().served_prompt_tokens_total += request.prompt_tokens;  // the prefill has happened
    const MockMetrics::Model& metrics = deps_.metrics->For(request.model);
    metrics.prompt_tokens->Add(static_cast<double>(request.prompt_tokens));
    RunningGuard running(*metrics.running);
    const Generation generation{metrics, arrival};
    const uint64_t seq = deps_.next_response_seq->fetch_add(1, std::memory_order_relaxed);
    id_.clear();
    AppendResponseId(id_, endpoint, seq);
    tool_call_id_.clear();
    if (answer.tool_call) AppendToolCallId(tool_call_id_, seq);
    item_id_.clear();
    if (endpoint == MockEndpoint::kResponses) AppendResponsesItemId(item_id_, seq);
    const MockResponseMeta meta{id_,           std::time(nullptr), request.model,
                                tool_call_id_, request.tool_name,  item_id_};
    if (request.stream) {
      co_return co_await Stream(request, answer, meta, fault, generation);
    }
    co_return co_await Whole(request, answer, meta, fault, generation);
  }

  // x-mock-cached-tokens, when given; repeated, its values joined by ", " (so a 400).
  static std::optional<MockError> ReadCachedTokens(const http::request<http::string_body>& http,
                                                   MockRequest& request) {
    auto [field, end] = http.equal_range(kCachedTokensHeader);
    if (field == end) return std::nullopt;
    std::string value(field->value());
    while (++field != end) {
      value += ", ";
      value += field->value();
    }
    return ReadCachedTokensHeader(value, request);
  }

  // A non-streaming answer, delayed as long as its stream would take.
  awaitable<Next> Whole(const MockRequest& request, const MockAnswer& answer,
                        const MockResponseMeta& meta, MockFault fault,
                        const Generation& generation) {
    const MockUsageReport report = UsageReportFor(fault);
    // A usage that is wrong on purpose is not counted as reported (MockStats).
    const bool with_usage = report == MockUsageReport::kValid;
    if (request.endpoint == MockEndpoint::kEmbeddings) {
      AppendEmbeddingsBody(body_, request, report);
    } else if (request.endpoint == MockEndpoint::kResponses) {
      AppendResponsesBody(body_, request, meta, answer, report);
    } else {
      AppendCompletionBody(body_, request.endpoint, meta, answer, report);
    }
    EncodeBody(kJson);
    const auto first_token = steady_clock::now() + Options().ttft;
    if (!co_await WaitUntil(first_token)) co_return Next::kGone;
    if (request.endpoint != MockEndpoint::kEmbeddings) generation.FirstToken();
    if (!co_await WaitUntil(first_token + answer.words * Options().TokenInterval())) {
      co_return Next::kGone;
    }
    generation.Tokens(answer.words);
    if (fault == MockFault::kTruncateStream) {
      FormatHead(200, kJson, body_.size());
      co_await WriteAll(std::array<asio::const_buffer, 2>{
          asio::buffer(head_), asio::buffer(body_.data(), body_.size() / 2)});
      stream_.close();
      co_return Next::kGone;
    }
    // Counted before the write, and taken back if it fails, so a client that has the response
    // also sees it in the stats.
    if (with_usage) Report(answer.usage, +1);
    Stats().served_completion_tokens_total += answer.words;
    Next next = co_await WriteEncodedBody(200, kJson);
    if (next == Next::kGone) {
      if (with_usage) Report(answer.usage, -1);
      Stats().served_completion_tokens_total -= answer.words;
    }
    co_return next;
  }

  awaitable<Next> Stream(const MockRequest& request, const MockAnswer& answer,
                         const MockResponseMeta& meta, MockFault fault,
                         const Generation& generation) {
    GaugeGuard open_stream(Stats().open_streams);
    std::optional<MockGzip> gzip;
    if (!co_await StartStream(gzip)) co_return Next::kGone;
    MockGzip* const encoder = gzip_response_ ? &*gzip : nullptr;
    if (request.endpoint == MockEndpoint::kResponses) {
      co_return co_await StreamResponses(request, answer, meta, fault, generation, encoder);
    }

    const bool truncate = fault == MockFault::kTruncateStream;
    const int64_t words = truncate ? (answer.words + 1) / 2 : answer.words;
    const MockUsageReport report = UsageReportFor(fault);
    const bool usage_chunk = request.include_usage && report != MockUsageReport::kNone;
    // vLLM's continuous_usage_stats: the usage so far on every chunk with choices.
    const auto so_far = [&](int64_t generated) {
      if (!usage_chunk || !request.continuous_usage) return MockChunkUsage{};
      return MockChunkUsage{report, MockUsage{answer.usage.prompt_tokens, generated}};
    };
    // A tool call's name goes first, as its own event.
    std::function<void()> head;
    if (answer.tool_call) head = [&] { AppendStreamToolCallHead(body_, meta, so_far(0)); };
    const std::function<void(int64_t)> token = [&](int64_t word) {
      if (answer.tool_call) {
        AppendStreamToolCallToken(body_, meta, word, answer.words, so_far(word));
      } else {
        AppendStreamToken(body_, request.endpoint, meta, word, so_far(word));
      }
    };
    if (!co_await PaceTokens(words, generation, encoder, head, token)) co_return Next::kGone;
    if (truncate) {
      stream_.close();
      co_return Next::kGone;
    }
    body_.clear();
    AppendStreamFinish(body_, request.endpoint, meta, answer.finish_reason, so_far(answer.words));
    if (!co_await WriteEvent(false, encoder)) co_return Next::kGone;
    if (usage_chunk) {
      body_.clear();
      AppendStreamUsage(body_, request.endpoint, meta, answer.usage, report);
      // A usage that is wrong on purpose is not counted as reported (MockStats).
      const int sign = report == MockUsageReport::kValid ? 1 : 0;
      Report(answer.usage, sign);
      if (!co_await WriteEvent(false, encoder)) {
        Report(answer.usage, -sign);
        co_return Next::kGone;
      }
    }
    body_.assign(kStreamDone);
    co_return co_await WriteEvent(true, encoder) ? Next::kKeepAlive : Next::kGone;
  }

  // A Responses stream (mock_responses.h): the head events at once, then the deltas paced as
  // chat's tokens, then the tail with the usage as the fault says.
  awaitable<Next> StreamResponses(const MockRequest& request, const MockAnswer& answer,
                                  const MockResponseMeta& meta, MockFault fault,
                                  const Generation& generation, MockGzip* encoder) {
    body_.clear();
    AppendResponsesStreamHead(body_, request, meta);
    if (!co_await WriteEvent(false, encoder)) co_return Next::kGone;
    const bool truncate = fault == MockFault::kTruncateStream;
    const int64_t words = truncate ? (answer.words + 1) / 2 : answer.words;
    const std::function<void()> no_head;
    const std::function<void(int64_t)> delta = [&](int64_t word) {
      AppendResponsesStreamDelta(body_, meta, word);
    };
    if (!co_await PaceTokens(words, generation, encoder, no_head, delta)) co_return Next::kGone;
    if (truncate) {
      stream_.close();
      co_return Next::kGone;
    }
    const MockUsageReport report = UsageReportFor(fault);
    body_.clear();
    AppendResponsesStreamTail(body_, request, meta, answer, report);
    // A usage that is wrong on purpose, or none, is not counted as reported (MockStats).
    const int sign = report == MockUsageReport::kValid ? 1 : 0;
    Report(answer.usage, sign);
    if (!co_await WriteEvent(true, encoder)) {
      Report(answer.usage, -sign);
      co_return Next::kGone;
    }
    co_return Next::kKeepAlive;
  }

  // Streams `words` token events paced by --ttft and --tokens-per-second, each its own write:
  // `head`, when set, appends an event written just before the first token's; `token` appends
  // word k's event. False when the client is gone.
  awaitable<bool> PaceTokens(int64_t words, const Generation& generation, MockGzip* encoder,
                             const std::function<void()>& head,
                             const std::function<void(int64_t)>& token) {
    auto deadline = steady_clock::now() + Options().ttft;
    for (int64_t word = 1; word <= words; ++word) {
      if (word > 1) deadline += Options().TokenInterval();
      if (!co_await WaitUntil(deadline)) co_return false;
      if (word == 1) generation.FirstToken();
      generation.Tokens(1);
      if (word == 1 && head) {
        body_.clear();
        head();
        if (!co_await WriteEvent(false, encoder)) co_return false;
      }
      body_.clear();
      StampToken();
      token(word);
      if (!co_await WriteEvent(false, encoder)) co_return false;
      ++Stats().served_completion_tokens_total;
    }
    co_return true;
  }

  // Writes an event stream's head, through `gzip` when the client accepts it.
  awaitable<bool> StartStream(std::optional<MockGzip>& gzip) {
    if (http10_) keep_alive_ = false;  // no chunked encoding: the close delimits the body
    if (accepts_gzip_ && gzip.emplace().Ok()) gzip_response_ = true;
    FormatHead(200, "text/event-stream", std::string_view::npos);
    co_return co_await WriteAll(asio::buffer(head_));
  }

  // --stamp-tokens: the SSE comment ": sent_us=<µs>" before a token event.
  void StampToken() {
    if (!Options().stamp_tokens) return;
    const auto sent = std::chrono::duration_cast<std::chrono::microseconds>(
        steady_clock::now().time_since_epoch());
    fmt::format_to(std::back_inserter(body_), ": sent_us={}\n", sent.count());
  }

  void Record(const http::request<http::string_body>& request) {
    std::vector<MockHeader> headers;
    for (const auto& field : request) headers.push_back({field.name_string(), field.value()});
    deps_.request_log->Add(MakeRequestRecord(request.method_string(), request.target(), headers,
                                             request.body(), MockRequestLog::kBodyLimit));
  }

  void Report(const MockUsage& usage, int sign) {
    Stats().prompt_tokens_total += sign * usage.prompt_tokens;
    Stats().completion_tokens_total += sign * usage.completion_tokens;
    Stats().cached_tokens_total += sign * usage.cached_tokens.value_or(0);
  }

  // content_length npos = a chunked (or, for HTTP/1.0, close-delimited) event stream.
  void FormatHead(int status, std::string_view content_type, size_t content_length) {
    head_.clear();
    auto out = std::back_inserter(head_);
    fmt::format_to(out, "HTTP/1.1 {} {}\r\nServer: mock-llm\r\nContent-Type: {}\r\n", status,
                   http::obsolete_reason(http::int_to_status(status)), content_type);
    if (gzip_response_) head_ += "Content-Encoding: gzip\r\n";
    if (content_length != std::string_view::npos) {
      fmt::format_to(out, "Content-Length: {}\r\n", content_length);
    } else {
      head_ += "Cache-Control: no-cache\r\n";
      if (!http10_) head_ += "Transfer-Encoding: chunked\r\n";
    }
    if (!keep_alive_) {
      head_ += "Connection: close\r\n";
    } else if (http10_) {
      head_ += "Connection: keep-alive\r\n";
    }
    head_ += "\r\n";
  }

  // Replaces body_ with its gzip form when it is JSON and the client accepts gzip.
  void EncodeBody(std::string_view content_type) {
    if (!accepts_gzip_ || content_type != kJson) return;
    MockGzip gzip;
    encoded_.clear();
    // Should zlib fail (out of memory), identity is always an acceptable answer.
    if (!gzip.Compress(body_, encoded_, MockGzip::Flush::kFinish)) return;
    body_.swap(encoded_);
    gzip_response_ = true;
  }

  awaitable<Next> WriteBody(int status, std::string_view content_type) {
    EncodeBody(content_type);
    co_return co_await WriteEncodedBody(status, content_type);
  }

  // body_ as EncodeBody left it.
  awaitable<Next> WriteEncodedBody(int status, std::string_view content_type) {
    FormatHead(status, content_type, body_.size());
    bool ok = co_await WriteAll(
        std::array<asio::const_buffer, 2>{asio::buffer(head_), asio::buffer(body_)});
    co_return ok ? Next::kKeepAlive : Next::kGone;
  }

  awaitable<Next> WriteError(const MockError& error) {
    body_.clear();
    AppendErrorBody(body_, error);
    co_return co_await WriteBody(error.status, kJson);
  }

  // One SSE event (body_) as its own write, so the client sees each token when it is made;
  // through `gzip` when not null, sync-flushed so the event decodes on arrival.
  awaitable<bool> WriteEvent(bool last, MockGzip* gzip) {
    std::string_view payload = body_;
    if (gzip != nullptr) {
      encoded_.clear();
      if (!gzip->Compress(body_, encoded_,
                          last ? MockGzip::Flush::kFinish : MockGzip::Flush::kSync)) {
        stream_.close();  // the gzip stream is broken; a clean end would claim otherwise
        co_return false;
      }
      payload = encoded_;
    }
    if (http10_) {
      co_return co_await WriteAll(asio::buffer(payload));
    }
    auto [end, size] =
        fmt::format_to_n(chunk_head_, sizeof(chunk_head_), "{:x}\r\n", payload.size());
    std::string_view tail = last ? "\r\n0\r\n\r\n" : "\r\n";
    co_return co_await WriteAll(std::array<asio::const_buffer, 3>{
        asio::buffer(chunk_head_, end - chunk_head_), asio::buffer(payload), asio::buffer(tail)});
  }

  template <typename Buffers>
  awaitable<bool> WriteAll(const Buffers& buffers) {
    stream_.expires_after(kIoTimeout);
    auto [ec, bytes] = co_await asio::async_write(stream_, buffers, kUseTuple);
    co_return !ec;
  }

  // Waits until `deadline`; false when the client closed the connection meanwhile, so paced
  // answers notice a hang-up without waiting for a write to fail.
  awaitable<bool> WaitUntil(steady_clock::time_point deadline) {
    if (deadline <= steady_clock::now()) co_return true;
    timer_.expires_at(deadline);
    if (watch_peer_) {
      auto woke = co_await (timer_.async_wait(kUseTuple) ||
                            stream_.socket().async_wait(tcp::socket::wait_read, kUseTuple));
      if (woke.index() == 0) co_return !std::get<0>(std::get<0>(woke));
      if (PeerClosed()) co_return false;
      // A pipelined request arrived; it stays in the kernel for the next read, and we stop
      // watching rather than spin on a socket that stays readable.
      watch_peer_ = false;
    }
    auto [ec] = co_await timer_.async_wait(kUseTuple);
    co_return !ec;
  }

  bool PeerClosed() {
    char byte;
    ssize_t got = ::recv(stream_.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
  }

  // x-mock-fault: hang. Reads and discards until EOF or error, with no deadline.
  awaitable<void> WaitForPeerClose() {
    stream_.expires_never();
    char scratch[512];
    for (;;) {
      auto [ec, bytes] =
          co_await stream_.socket().async_read_some(asio::buffer(scratch), kUseTuple);
      if (ec) break;
    }
    stream_.close();
  }

  // x-mock-fault: reset. SO_LINGER 0 turns the close into an RST.
  void Reset() {
    beast::error_code ignored;
    stream_.socket().set_option(asio::socket_base::linger(true, 0), ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  asio::steady_timer timer_;
  SessionDeps deps_;
  beast::flat_buffer buffer_;
  std::string head_;
  std::string body_;
  std::string encoded_;  // body_ or one event gzipped
  std::string id_;
  std::string tool_call_id_;
  std::string item_id_;
  char chunk_head_[24];
  bool accepts_gzip_ = false;   // this request's Accept-Encoding accepts gzip
  bool gzip_response_ = false;  // this response goes out gzipped
  bool keep_alive_ = true;
  bool http10_ = false;
  bool watch_peer_ = true;
};

awaitable<void> ServeConnection(tcp::socket socket, SessionDeps deps) {
  Session session(std::move(socket), deps);
  co_await session.Run();
}

awaitable<void> Accept(tcp::acceptor& acceptor, SessionDeps deps) {
  asio::steady_timer backoff(acceptor.get_executor());
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(kUseTuple);
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // Out of descriptors and the like: back off instead of spinning on the error.
      backoff.expires_after(std::chrono::milliseconds(10));
      co_await backoff.async_wait(kUseTuple);
      continue;
    }
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);  // SSE events must not wait for Nagle
    // The session boundary: anything thrown inside a session ends only that session.
    asio::co_spawn(acceptor.get_executor(), ServeConnection(std::move(socket), deps),
                   [](const std::exception_ptr&) {});
  }
}

}  // namespace

struct MockServer::Worker {
  asio::io_context io_context{1};
  tcp::acceptor acceptor{io_context};
};

void MockStats::ResetTotals() {
  requests_total = 0;
  prompt_tokens_total = 0;
  completion_tokens_total = 0;
  cached_tokens_total = 0;
  served_prompt_tokens_total = 0;
  served_completion_tokens_total = 0;
}

void MockStats::AppendJson(std::string& out) const {
  fmt::format_to(std::back_inserter(out),
                 R"({{"requests_total":{},"open_streams":{},"open_connections":{},)"
                 R"("prompt_tokens_total":{},"completion_tokens_total":{},)"
                 R"("cached_tokens_total":{},)"
                 R"("served_prompt_tokens_total":{},"served_completion_tokens_total":{}}})",
                 requests_total.load(), open_streams.load(), open_connections.load(),
                 prompt_tokens_total.load(), completion_tokens_total.load(),
                 cached_tokens_total.load(), served_prompt_tokens_total.load(),
                 served_completion_tokens_total.load());
}

void MockRequestLog::Add(MockRequestRecord record) {
  auto shared = std::make_shared<const MockRequestRecord>(std::move(record));
  std::lock_guard lock(mutex_);
  if (records_.size() == kCapacity) records_.pop_front();
  records_.push_back(std::move(shared));
}

void MockRequestLog::Clear() {
  std::lock_guard lock(mutex_);
  records_.clear();
}

void MockRequestLog::AppendJson(std::string& out) const {
  std::vector<std::shared_ptr<const MockRequestRecord>> snapshot;
  {
    std::lock_guard lock(mutex_);
    snapshot.assign(records_.begin(), records_.end());
  }
  out += '[';
  for (size_t i = 0; i < snapshot.size(); ++i) {
    if (i > 0) out += ',';
    AppendRequestRecord(out, *snapshot[i]);
  }
  out += ']';
}

MockServer::MockServer(MockOptions options)
    : options_(std::move(options)), metrics_(options_.models) {
  asio::io_context resolver_context;
  tcp::resolver resolver(resolver_context);
  tcp::endpoint endpoint =
      resolver.resolve(options_.host, std::to_string(options_.port)).begin()->endpoint();
  const bool reuse_port = options_.threads > 1;
  if (reuse_port && endpoint.port() != 0) {
    // SO_REUSEPORT would let us silently share a port another server already listens on;
    // a plain bind fails with EADDRINUSE instead.
    tcp::acceptor probe(resolver_context, endpoint.protocol());
    probe.set_option(asio::socket_base::reuse_address(true));
    probe.bind(endpoint);
  }
  for (int i = 0; i < options_.threads; ++i) {
    auto worker = std::make_unique<Worker>();
    tcp::acceptor& acceptor = worker->acceptor;
    acceptor.open(endpoint.protocol());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    if (reuse_port) acceptor.set_option(ReusePort(true));
    acceptor.bind(endpoint);
    acceptor.listen(asio::socket_base::max_listen_connections);
    endpoint = acceptor.local_endpoint();  // later acceptors share the real port
    workers_.push_back(std::move(worker));
  }
}

MockServer::~MockServer() { Stop(); }

tcp::endpoint MockServer::Endpoint() const { return workers_.front()->acceptor.local_endpoint(); }

void MockServer::Run() {
  SessionDeps deps{&options_, &stats_, &metrics_, &request_log_, &next_response_seq_, &vocabulary_};
  for (auto& worker : workers_) {
    asio::co_spawn(worker->io_context, Accept(worker->acceptor, deps), asio::detached);
  }
  std::vector<std::thread> threads;
  for (size_t i = 1; i < workers_.size(); ++i) {
    threads.emplace_back([&worker = *workers_[i]] { worker.io_context.run(); });
  }
  workers_.front()->io_context.run();
  for (auto& thread : threads) thread.join();
}

void MockServer::Stop() {
  for (auto& worker : workers_) worker->io_context.stop();
}

}  // namespace trl
