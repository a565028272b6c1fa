#include "proxy/upstream_exchange.h"

#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/container/small_vector.hpp>
#include <optional>

#include "common/decimal.h"
#include "http/socket_io.h"
#include "proxy/errors.h"
#include "proxy/request_fields.h"
#include "proxy/trace_context.h"
#include "upstream/connection_pool.h"

namespace trl {
namespace {

namespace bhttp = http::bhttp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::chrono::milliseconds kConnectTimeout{3000};
constexpr uint64_t kMaxResponseBody = uint64_t{64} * 1024 * 1024;
// A pooled connection keeps at most this much read buffer from a large answer.
constexpr size_t kKeptBufferBytes = size_t{16} * 1024;

// The backend's answer: its header fields in the connection's FieldArena.
template <class Body>
using AnswerParser = bhttp::response_parser<Body, http::FieldAllocator<char>>;
using Answer = bhttp::response<bhttp::string_body, bhttp::basic_fields<http::FieldAllocator<char>>>;

bool HopByHop(bhttp::field name) {
  switch (name) {
    case bhttp::field::connection:
    case bhttp::field::keep_alive:
    case bhttp::field::proxy_connection:
    case bhttp::field::transfer_encoding:
    case bhttp::field::te:
    case bhttp::field::trailer:
    case bhttp::field::upgrade:
    case bhttp::field::host:
    case bhttp::field::content_length:
    case bhttp::field::authorization:
    case bhttp::field::proxy_authorization:
    case bhttp::field::expect:
    case bhttp::field::accept_encoding:  // ours is identity: a compressed answer can't be read
      return true;
    default:
      return false;
  }
}

// The request head for the backend: the client's end-to-end headers (not its credentials), our
// own Host and Content-Length, and the body's Content-Type. The body is written after it as it is.
// Where a request came from, as a client says: believed from a trusted proxy only.
bool IsForwarding(const http::Request::value_type& field) {
  if (field.name() == bhttp::field::forwarded) return true;
  if (field.name() != bhttp::field::unknown) return false;
  const std::string_view name = field.name_string();
  constexpr std::string_view kPrefix = "x-forwarded-";
  return (name.size() > kPrefix.size() &&
          beast::iequals(name.substr(0, kPrefix.size()), kPrefix)) ||
         beast::iequals(name, "x-real-ip");
}

// X-Forwarded-For and X-Forwarded-Proto from the gateway's view: the client's address (added to
// a trusted proxy's list), and the scheme a trusted proxy says, else the gateway's own (http).
void AppendForwardedFor(std::string& head, const ExchangeRequest& req,
                        std::string_view forwarded_for, std::string_view forwarded_proto) {
  if (!req.client_address.empty()) {
    head.append(std::string_view("X-Forwarded-For: "));
    if (!forwarded_for.empty()) head.append(forwarded_for).append(std::string_view(", "));
    head.append(req.client_address).append(std::string_view("\r\n"));
  }
  head.append(std::string_view("X-Forwarded-Proto: "))
      .append(forwarded_proto.empty() ? std::string_view("http") : forwarded_proto)
      .append(std::string_view("\r\n"));
}

bool IsTraceContext(const http::Request::value_type& field) {
  return field.name() == bhttp::field::unknown &&
         (beast::iequals(field.name_string(), "traceparent") ||
          beast::iequals(field.name_string(), "tracestate"));
}

// No traceparent, or one valid one: the trace context goes on as it came (trace_context.h).
bool ValidTraceContext(const http::Request& request) {
  auto [first, last] = request.equal_range("traceparent");
  if (first == last) return true;
  return std::next(first) == last && !TraceIdOf(first->value()).empty();
}

std::string UpstreamHead(const ExchangeRequest& req, const BackendUrl& backend) {
  std::string head;
  head.reserve(512);
  head.append(req.method).push_back(' ');
  head.append(backend.base_path).append(req.target);
  head.append(std::string_view(" HTTP/1.1\r\n"));
  // The fields the client's Connection header names are its hop's too (RFC 9110, 7.6.1).
  const auto connection = req.client->find(bhttp::field::connection);
  std::optional<bhttp::token_list> named =  // token_list::exists is not const
      connection == req.client->end()
          ? std::nullopt
          : std::optional<bhttp::token_list>(std::in_place, connection->value());
  std::string_view forwarded_for, forwarded_proto;
  const bool trace_context = ValidTraceContext(*req.client);
  for (const auto& field : *req.client) {
    // Beast's parser names every field it knows, in any case, by its enum: no string compares.
    if (HopByHop(field.name()) || field.name() == bhttp::field::content_type) continue;
    if (named && named->exists(field.name_string())) continue;
    if (!trace_context && IsTraceContext(field)) continue;
    if (!req.request_id.empty() && beast::iequals(field.name_string(), "x-request-id")) continue;
    if (IsForwarding(field)) {
      if (!req.client_is_trusted_proxy) continue;
      if (beast::iequals(field.name_string(), "x-forwarded-for")) {
        forwarded_for = field.value();
        continue;
      }
      if (beast::iequals(field.name_string(), "x-forwarded-proto")) {
        forwarded_proto = field.value();
        continue;
      }
    }
    http::AppendField(head, field.name_string(), field.value());
  }
  AppendForwardedFor(head, req, forwarded_for, forwarded_proto);
  if (!req.request_id.empty()) http::AppendField(head, "X-Request-Id", req.request_id);
  head.append(std::string_view("Host: ")).append(backend.host).push_back(':');
  head.append(Decimal(backend.port).View());
  head.append(std::string_view("\r\nAccept-Encoding: identity"));
  if (!req.content_type.empty()) {
    head.append(std::string_view("\r\nContent-Type: ")).append(req.content_type);
  }
  head.append(std::string_view("\r\nContent-Length: "));
  head.append(Decimal(static_cast<int64_t>(req.body.size())).View());
  head.append(std::string_view("\r\n\r\n"));
  return head;
}

// Outcome of one attempt on one backend.
enum class Attempt { kDone, kRetryOther, kRetryFresh };

// Watches the client for the whole exchange with one backend: when the client leaves, the
// upstream socket's pending operation is cancelled, so the read in progress ends at once and
// the exchange is abandoned (the backend stops generating for nobody). Lives on the session's
// executor, inside the exchange.
class ClientWatch {
 public:
  ClientWatch(http::ResponseWriter& writer, UpstreamSocket& upstream) : writer_(writer) {
    writer_.WatchClient([this, &upstream] {
      client_left_ = true;
      boost::system::error_code ignored;
      upstream.socket.cancel(ignored);
    });
  }
  ~ClientWatch() { writer_.UnwatchClient(); }
  ClientWatch(const ClientWatch&) = delete;
  ClientWatch& operator=(const ClientWatch&) = delete;

  // True once the client has gone: the upstream operation that just ended was cancelled for it.
  bool ClientLeft() const { return client_left_; }

 private:
  http::ResponseWriter& writer_;
  bool client_left_ = false;
};

struct Relay {
  ExchangeRequest& req;
  http::ResponseWriter& writer;
  ExchangeResult& result;
  ConnectionPool& pool;
  bool whole_deadline = false;  // the deadline last armed was the request's own, not the idle one
};

// Arms `stream`'s deadline for its next operation: the model's timeout (the longest wait for the
// backend's next bytes), or what is left of the request's own deadline when that comes first.
void ArmDeadline(Relay& r, UpstreamSocket& stream) {
  const auto idle = r.req.model->config->timeout;
  const auto left = r.req.deadline - std::chrono::steady_clock::now();
  r.whole_deadline = left < idle;
  stream.deadline.ExpiresAfter(r.whole_deadline ? std::max(left, decltype(left)::zero())
                                                : std::chrono::steady_clock::duration(idle));
}

// The 503 for a request the gateway stops because it is shutting down.
http::Response ShuttingDown(ExchangeResult& result) {
  result.status = ErrorStatus(ApiError::kShuttingDown);
  result.failure = UpstreamFailure::kShutdown;
  return ErrorResponse(ApiError::kShuttingDown);
}

// What a timeout was: the backend silent for the model's timeout, or the request past its own.
std::string TimeoutText(const Relay& r) {
  const ModelConfig& model = *r.req.model->config;
  return r.whole_deadline ? "did not finish within the request timeout (" +
                                FormatDuration(model.request_timeout) + ")"
                          : "did not answer within " + FormatDuration(model.timeout);
}

// The error event that ends a stream the gateway could not finish.
std::string StreamEndedEarly(const Relay& r) {
  switch (r.result.failure) {
    case UpstreamFailure::kShutdown:
      return ErrorBody(ApiError::kShuttingDown,
                       "The gateway is shutting down; the stream was cut. Retry the request.");
    case UpstreamFailure::kTimeout:
      return ErrorBody(ApiError::kBackendTimeout,
                       "The model backend " + TimeoutText(r) + "; the stream was cut.");
    default:
      return ErrorBody(ApiError::kBackendError,
                       "The model backend ended the stream early. Retry the request.");
  }
}

void CountTexts(const TextViews& texts, const TokenCounter& counter, int64_t& total) {
  for (auto t : texts) total += counter.CountText(t);
}

// Keeps the usage of a streamed event for settlement. One invalid usage makes the whole stream
// count as without usage: a later valid one may be a partial count (continuous usage stats).
void TakeUsage(const StreamEvent& e, ExchangeResult& result) {
  if (e.usage_invalid) {
    result.usage_invalid = true;
    result.usage.reset();
  } else if (e.usage && !result.usage_invalid) {
    result.usage = e.usage;
  }
}

// Relays an SSE body event by event; removes the usage the gateway asked for on the client's
// behalf (the usage-only chunk dropped, a usage on a chunk with choices made null); counts the
// text relayed.
asio::awaitable<bool> RelayStream(Relay& r, UpstreamSocket& stream, beast::flat_buffer& buffer,
                                  AnswerParser<bhttp::buffer_body>& parser,
                                  const ClientWatch& watch) {
  std::array<char, size_t{16} * 1024> chunk;
  SseSplitter splitter;
  std::string out;
  out.reserve(chunk.size());
  bool done = false;
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    ArmDeadline(r, stream);
    const beast::error_code ec =
        co_await http::ReadMessage(stream.socket, buffer, parser, http::ReadUntil::kSome);
    stream.deadline.Clear();
    if (watch.ClientLeft()) {
      if (!r.writer.Cut()) co_return false;  // the client left: abandon the upstream too
      r.result.failure = UpstreamFailure::kShutdown;
      break;
    }
    if (ec && ec != bhttp::error::need_buffer) {
      r.result.failure =
          stream.deadline.Expired() ? UpstreamFailure::kTimeout : UpstreamFailure::kTruncated;
      break;
    }
    // A read of kSome stops after one chunk of the backend's chunked body; the chunks already
    // received are parsed here too, so one client write carries all of them.
    bool garbage = false;
    while (!ec && buffer.size() != 0 && !parser.is_done() && parser.get().body().size != 0) {
      beast::error_code pec;
      size_t used = parser.put(buffer.data(), pec);
      buffer.consume(used);
      if (pec == bhttp::error::need_more || pec == bhttp::error::need_buffer || used == 0) break;
      if (pec) {
        r.result.failure = UpstreamFailure::kTruncated;
        garbage = true;
        break;
      }
    }
    size_t got = chunk.size() - parser.get().body().size;
    if (got == 0) continue;
    if (!r.result.first_byte) r.result.first_byte = std::chrono::steady_clock::now();
    out.clear();
    splitter.Feed(std::string_view(chunk.data(), got), [&](std::string_view event) {
      StreamEvent e = ParseStreamEvent(event, r.req.usage_fields);
      if (e.done) done = true;
      TakeUsage(e, r.result);
      CountTexts(e.texts, *r.req.counter, r.result.relayed_tokens);
      if (e.usage_length == 0 || r.req.client_wants_usage) {
        out.append(event);
      } else if (!e.usage_only) {
        // Usage on a chunk with choices (vLLM's continuous_usage_stats, and backends that
        // always do): the choices go on, the usage the client did not ask for does not.
        AppendWithoutUsage(e, out);
      }
    });
    if (!out.empty() && !co_await r.writer.WriteChunk(out)) co_return false;
    if (garbage) break;
  }
  std::string rest = splitter.TakeRest();
  if (!rest.empty() && !co_await r.writer.WriteChunk(rest)) co_return false;
  if (r.result.failure != UpstreamFailure::kNone || (!done && !parser.is_done())) {
    if (r.result.failure == UpstreamFailure::kNone) r.result.failure = UpstreamFailure::kTruncated;
    // The status line is gone already: tell the client in the stream, as OpenAI does.
    std::string event = "data: " + StreamEndedEarly(r) + "\n\n";
    co_await r.writer.WriteChunk(event);
  }
  co_return co_await r.writer.FinishStream() && r.result.failure == UpstreamFailure::kNone;
}

// The answer to a backend that timed out (504) or failed (502), recorded in `result`. Built
// before any co_await: GCC 12 mishandles temporaries of ?: inside co_await expressions.
http::Response BackendFailure(Relay& r, UpstreamFailure failure, std::string_view what) {
  r.result.failure = failure;
  const ApiError error =
      failure == UpstreamFailure::kTimeout ? ApiError::kBackendTimeout : ApiError::kBackendError;
  r.result.status = ErrorStatus(error);
  if (failure == UpstreamFailure::kTimeout) {
    return ErrorResponse(error, "The model backend " + TimeoutText(r) + ". Retry later.");
  }
  return ErrorResponse(error, "The model backend " + std::string(what) + ". Retry the request.");
}

// A read from the backend that failed: it timed out, or else `otherwise`.
UpstreamFailure ReadFailure(const UpstreamSocket& stream, UpstreamFailure otherwise) {
  return stream.deadline.Expired() ? UpstreamFailure::kTimeout : otherwise;
}

// A streamed answer (200, text/event-stream) whose head `header_parser` has read, relayed to
// the client. Sets `reusable` when the connection may go back to the pool. (Each kind of answer
// has a coroutine of its own: a frame holding every parser and message of both would be too
// large for Asio's per-thread frame cache, and cost a malloc per request.)
asio::awaitable<void> RelayStreamedAnswer(Relay& r, UpstreamSocket& stream,
                                          beast::flat_buffer& buffer,
                                          AnswerParser<bhttp::empty_body>& header_parser,
                                          std::string_view content_type, const ClientWatch& watch,
                                          bool& reusable) {
  AnswerParser<bhttp::buffer_body> parser{std::move(header_parser)};
  http::Fields fields;
  fields.set(bhttp::field::content_type, content_type);
  fields.set(bhttp::field::cache_control, "no-cache");
  r.result.status = 200;
  if (!co_await r.writer.StartStream(200, std::move(fields), r.req.head_lines)) co_return;
  // A stream the backend broke off still ends properly for the client (an error event, then
  // the last chunk): the client's connection stays usable. One whose writes failed, or that
  // was left unfinished, is closed by the writer itself.
  bool complete = co_await RelayStream(r, stream, buffer, parser, watch);
  reusable = complete && parser.is_done() && parser.keep_alive();
}

// What the client gets for a plain answer the backend sent whole: a 5xx as the gateway's own
// 502; anything else as it is, its usage and texts taken into r.result.
http::Response PlainAnswer(Relay& r, Answer& response, unsigned status,
                           std::string_view content_type) {
  // An error answer carries no output: the request costs nothing (docs/limits.md).
  if (status >= 400) r.result.backend_rejected = true;
  if (status >= 500) {
    r.result.failure = UpstreamFailure::kHttpStatus;
    r.result.status = ErrorStatus(ApiError::kBackendError);
    return ErrorResponse(
        ApiError::kBackendError,
        "The model backend failed with HTTP " + std::to_string(status) + ". Retry the request.");
  }
  ResponseSummary summary = ParseResponseBody(response.body(), r.req.usage_fields);
  r.result.usage = summary.usage;
  r.result.usage_invalid = summary.usage_invalid;
  r.result.audio_seconds = summary.audio_seconds;
  // The gateway's own count is the fallback for an answer without usage (the settlement's
  // rule in Gateway::HandleInference); the backend's usage makes counting it needless.
  if (!summary.usage) CountTexts(summary.texts, *r.req.counter, r.result.relayed_tokens);
  http::Response out{static_cast<bhttp::status>(status), 11};
  out.set(bhttp::field::content_type,
          content_type.empty() ? std::string_view("application/json") : content_type);
  out.body() = std::move(response.body());
  r.result.status = status;
  r.result.first_byte = std::chrono::steady_clock::now();
  return out;
}

// A plain answer whose head `header_parser` has read: its body read whole, then sent on.
asio::awaitable<void> RelayPlainAnswer(Relay& r, UpstreamSocket& stream, beast::flat_buffer& buffer,
                                       AnswerParser<bhttp::empty_body>& header_parser,
                                       unsigned status, std::string_view content_type,
                                       const ClientWatch& watch, bool& reusable) {
  const auto length = header_parser.content_length();
  AnswerParser<bhttp::string_body> parser{std::move(header_parser)};
  parser.body_limit(kMaxResponseBody);
  // Room for the parser's padding now, so that reading the answer's fields does not copy it.
  if (length && *length <= kMaxResponseBody)
    parser.get().body().reserve(*length + kJsonBodyPadding);
  ArmDeadline(r, stream);
  const beast::error_code bec =
      co_await http::ReadMessage(stream.socket, buffer, parser, http::ReadUntil::kMessage);
  stream.deadline.Clear();
  if (watch.ClientLeft()) {
    if (r.writer.Cut()) {
      co_await r.writer.Send(ShuttingDown(r.result));
    }
    co_return;
  }
  if (bec) {
    co_await r.writer.Send(BackendFailure(r, ReadFailure(stream, UpstreamFailure::kTruncated),
                                          "sent an incomplete answer"));
    co_return;
  }
  reusable = parser.get().keep_alive();
  const bool relayed = status < 500;
  co_await r.writer.Send(PlainAnswer(r, parser.get(), status, content_type),
                         relayed ? std::string_view(r.req.head_lines) : std::string_view());
}

// Counts a failure against `backend`; the one that takes it out of rotation is logged with
// `reason` (once per outage: the log costs the request path nothing in steady state).
void ReportBackendFailure(Backend& backend, std::string_view reason) {
  if (backend.ReportFailure(std::chrono::steady_clock::now())) {
    spdlog::warn("backend {} is down: {}; taken out of rotation", backend.Url().url, reason);
  }
}

// The backend's answer, relayed to the client while `watch` looks out for the client leaving.
// Sets `reusable` when the connection may go back to the pool.
asio::awaitable<Attempt> ReadAnswer(Relay& r, Backend& backend, UpstreamConnection& conn,
                                    const ClientWatch& watch, bool& reusable) {
  auto& stream = *conn.stream;
  beast::flat_buffer& buffer = stream.buffer;
  buffer.clear();
  AnswerParser<bhttp::empty_body> header_parser(
      std::piecewise_construct, std::make_tuple(),
      std::make_tuple(http::FieldAllocator<char>(&stream.fields)));
  header_parser.body_limit(kMaxResponseBody);
  ArmDeadline(r, stream);
  const beast::error_code hec = co_await http::ReadMessage(
      stream.socket, buffer, header_parser, http::ReadUntil::kHeader, http::Reading::kAnswer);
  stream.deadline.Clear();
  if (watch.ClientLeft()) {  // connection dropped with the client (or cut: shutting down)
    if (r.writer.Cut()) {
      co_await r.writer.Send(ShuttingDown(r.result));
    }
    co_return Attempt::kDone;
  }
  if (hec) {
    const bool timeout = stream.deadline.Expired();
    if (conn.reused && !timeout && buffer.size() == 0) {
      r.result.reached_backend = false;
      co_return Attempt::kRetryFresh;
    }
    if (!timeout) ReportBackendFailure(backend, "closed the connection without answering");
    co_await r.writer.Send(BackendFailure(r, ReadFailure(stream, UpstreamFailure::kReset),
                                          "closed the connection without answering"));
    co_return Attempt::kDone;
  }
  backend.ReportSuccess();
  const auto& header = header_parser.get();
  const unsigned status = header.result_int();
  r.result.backend_status = status;
  const std::string_view content_type = http::FieldValue(header, bhttp::field::content_type);
  const std::string_view encoding = http::FieldValue(header, bhttp::field::content_encoding);
  if (!encoding.empty() && !beast::iequals(encoding, "identity")) {
    // Asked for identity, answered compressed: nothing in it can be counted.
    r.result.uncountable = true;
    co_await r.writer.Send(BackendFailure(
        r, UpstreamFailure::kEncoding,
        "answered in an encoding the gateway cannot read (" + std::string(encoding) + ")"));
    co_return Attempt::kDone;
  }
  if (status == 200 && content_type.substr(0, 17) == "text/event-stream") {
    co_await RelayStreamedAnswer(r, stream, buffer, header_parser, content_type, watch, reusable);
  } else {
    co_await RelayPlainAnswer(r, stream, buffer, header_parser, status, content_type, watch,
                              reusable);
  }
  co_return Attempt::kDone;
}

asio::awaitable<Attempt> TryBackend(Relay& r, Backend& backend, bool fresh) {
  const ModelConfig& model = *r.req.model->config;
  UpstreamConnection conn;
  if (auto ec = co_await r.pool.Acquire(backend.Url(), std::min(kConnectTimeout, model.timeout),
                                        fresh, conn)) {
    ReportBackendFailure(backend, "connect: " + ec.message());
    r.result.failure = UpstreamFailure::kConnect;
    co_return Attempt::kRetryOther;
  }
  auto& stream = *conn.stream;
  const std::string head = UpstreamHead(r.req, backend.Url());
  const std::array<asio::const_buffer, 2> request{asio::buffer(head), asio::buffer(r.req.body)};
  ArmDeadline(r, stream);
  const beast::error_code wec = co_await http::WriteAll(stream.socket, request);
  stream.deadline.Clear();
  if (wec) {
    // A pooled connection the backend closed meanwhile: it never saw the request.
    if (conn.reused) co_return Attempt::kRetryFresh;
    ReportBackendFailure(backend, "sending the request: " + wec.message());
    r.result.failure = UpstreamFailure::kReset;
    co_return Attempt::kRetryOther;
  }
  r.result.reached_backend = true;

  bool reusable = false;
  bool client_left = false;
  Attempt attempt;
  {
    ClientWatch watch(r.writer, stream);
    attempt = co_await ReadAnswer(r, backend, conn, watch, reusable);
    client_left = watch.ClientLeft();
  }
  // Bytes past the answer would be taken for the start of the next one: not reused then.
  if (reusable && !client_left && stream.buffer.size() == 0) {
    if (stream.buffer.capacity() > kKeptBufferBytes) stream.buffer.shrink_to_fit();
    r.pool.Release(std::move(conn));
  }
  co_return attempt;
}

}  // namespace

asio::awaitable<ExchangeResult> PooledUpstream::ForwardAndRelay(ExchangeRequest& request,
                                                                http::ResponseWriter& writer) {
  ExchangeResult result;
  Relay relay{request, writer, result, pool_ ? *pool_ : ConnectionPool::ForThisThread()};
  boost::container::small_vector<const Backend*, 4> tried;
  bool fresh = false;
  // Each backend once, plus one retry on a fresh connection when a pooled one was stale.
  for (size_t attempts = 0; attempts <= request.model->backends.size() + 1; ++attempts) {
    Backend* backend =
        fresh && !tried.empty()
            ? const_cast<Backend*>(tried.back())
            : ModelRegistry::Pick(*request.model, tried, std::chrono::steady_clock::now());
    if (!backend) break;
    if (!fresh) tried.push_back(backend);
    result.backend = backend->Url().url;
    result.failure = UpstreamFailure::kNone;
    backend->BeginRequest();
    Attempt attempt = co_await TryBackend(relay, *backend, fresh);
    backend->EndRequest();
    if (attempt == Attempt::kDone) co_return result;
    fresh = attempt == Attempt::kRetryFresh;
  }
  result.status = ErrorStatus(ApiError::kNoBackend);
  co_await writer.Send(
      ErrorResponse(ApiError::kNoBackend, "No healthy backend is available for model '" +
                                              request.model->config->name + "'. Retry later."));
  if (result.failure == UpstreamFailure::kNone) result.failure = UpstreamFailure::kUnavailable;
  co_return result;
}

}  // namespace trl
