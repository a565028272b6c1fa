// trl-loadgen: the benchmark's open-loop HTTP/1.1 load generator.
//
// Requests are sent on a fixed schedule (request i at start + i/rate) over a fixed set of
// keep-alive connections, and every latency is measured from the *scheduled* send time, not
// from when a connection happened to be free: if the system under test falls behind, the
// queueing shows in the percentiles instead of slowing the generator down (the "coordinated
// omission" that closed-loop tools such as plain wrk hide).
//
// Modes (one JSON object with the results is printed on stdout; progress goes to stderr):
//   rate    non-streaming requests at --rate for --duration.
//   stream  streaming requests at --rate; also records, for every token event, its lateness:
//           arrival - (scheduled send + --ttft-us + (k-1) * --interval-us), i.e. how much later
//           than the backend's own schedule token k arrived (direct to the backend this is the
//           floor; through a proxy it adds the forwarding of the request and the relay of that
//           token).
//           When the backend stamps its token events (mock-llm --stamp-tokens: a first line
//           ": sent_us=<µs on the host's monotonic clock>"), also every token's relay time:
//           arrival - that stamp, i.e. how long the token took from the backend's write to
//           here (direct to the backend this is the floor; through a proxy it adds the relay
//           of that token and nothing else).
//   idle    first opens --idle connections that each make one request and then stay idle
//           (keep-alive), leaves them idle for --settle seconds, then runs the `rate`
//           measurement on other connections next to them.
//   hold    --streams connections that each run streaming requests back to back for
//           --duration (slow streams: the backend paces the tokens).
// --watch-pid P (repeatable) samples VmRSS and CPU time of those processes at the phase
// boundaries (before, when the idle connections / streams are all established, at the end).
//
// Single-threaded (one io_context): it must not steal the CPU it is measuring.
#include <unistd.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using asio::awaitable;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::nanoseconds;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

struct Options {
  std::string mode = "rate";
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string path = "/v1/chat/completions";
  std::string body;
  std::vector<std::string> headers;
  double rate = 1000;
  double duration_s = 5;
  int connections = 16;
  double timeout_s = 10;
  int64_t ttft_us = 0;
  int64_t interval_us = 0;
  int64_t expect_tokens = 0;  // stream/hold: a stream with another count of tokens is an error
  int idle = 0;
  int streams = 0;
  double ramp_s = 5;      // hold/idle: how long establishing the connections may take
  double settle_s = 0.5;  // idle: how long they sit idle before the sample "with_idle"
  std::vector<int> watch_pids;
};

[[noreturn]] void Usage(const std::string& why) {
  std::cerr << "trl-loadgen: " << why << "\n"
            << "usage: trl-loadgen --port P [--host H] [--path /v1/...] --body-file F\n"
               "  [--header 'K: V']... [--mode rate|stream|idle|hold] [--rate R] [--duration S]\n"
               "  [--connections C] [--timeout S] [--ttft-us N] [--interval-us N]\n"
               "  [--expect-tokens N] [--idle N] [--streams N] [--ramp S] [--settle S]\n"
               "  [--watch-pid P]...\n";
  std::exit(2);
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "--mode")
      o.mode = value();
    else if (a == "--host")
      o.host = value();
    else if (a == "--port")
      o.port = static_cast<uint16_t>(std::stoi(value()));
    else if (a == "--path")
      o.path = value();
    else if (a == "--body-file") {
      std::ifstream f(value(), std::ios::binary);
      if (!f) Usage("cannot read the body file");
      std::ostringstream s;
      s << f.rdbuf();
      o.body = s.str();
    } else if (a == "--header")
      o.headers.push_back(value());
    else if (a == "--rate")
      o.rate = std::stod(value());
    else if (a == "--duration")
      o.duration_s = std::stod(value());
    else if (a == "--connections")
      o.connections = std::stoi(value());
    else if (a == "--timeout")
      o.timeout_s = std::stod(value());
    else if (a == "--ttft-us")
      o.ttft_us = std::stoll(value());
    else if (a == "--interval-us")
      o.interval_us = std::stoll(value());
    else if (a == "--expect-tokens")
      o.expect_tokens = std::stoll(value());
    else if (a == "--idle")
      o.idle = std::stoi(value());
    else if (a == "--streams")
      o.streams = std::stoi(value());
    else if (a == "--ramp")
      o.ramp_s = std::stod(value());
    else if (a == "--settle")
      o.settle_s = std::stod(value());
    else if (a == "--watch-pid")
      o.watch_pids.push_back(std::stoi(value()));
    else
      Usage("unknown argument " + a);
  }
  if (o.port == 0) Usage("--port is required");
  if (o.mode != "rate" && o.mode != "stream" && o.mode != "idle" && o.mode != "hold") {
    Usage("unknown mode " + o.mode);
  }
  if (o.rate <= 0 || o.duration_s <= 0 || o.connections <= 0)
    Usage("rate, duration, connections > 0");
  return o;
}

// --- /proc sampling -------------------------------------------------------------------------

struct ProcSample {
  int pid = 0;
  int64_t rss_kb = -1;
  double cpu_s = -1;
};

ProcSample SampleProc(int pid) {
  ProcSample s{pid};
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) s.rss_kb = std::strtoll(line.c_str() + 6, nullptr, 10);
  }
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // Fields after the ")" that closes the command name: state is field 3, utime 14, stime 15.
  size_t close = text.rfind(')');
  if (close != std::string::npos) {
    std::istringstream rest(text.substr(close + 2));
    std::string field;
    double ticks = 0;
    for (int n = 3; n <= 15 && rest >> field; ++n) {
      if (n == 14 || n == 15) ticks += std::stod(field);
    }
    s.cpu_s = ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  return s;
}

std::string SamplesJson(const std::vector<int>& pids) {
  std::string out = "[";
  for (size_t i = 0; i < pids.size(); ++i) {
    ProcSample s = SampleProc(pids[i]);
    char buf[128];
    std::snprintf(buf, sizeof buf, "%s{\"pid\":%d,\"rss_kb\":%lld,\"cpu_s\":%.3f}", i ? "," : "",
                  s.pid, static_cast<long long>(s.rss_kb), s.cpu_s);
    out += buf;
  }
  return out + "]";
}

// --- statistics -----------------------------------------------------------------------------

struct Stats {
  std::vector<int64_t> ns;  // one sample per event
  void Add(Clock::duration d) { ns.push_back(duration_cast<nanoseconds>(d).count()); }
  std::string Json() {
    std::sort(ns.begin(), ns.end());
    auto pct = [&](double p) -> double {
      if (ns.empty()) return 0;
      size_t idx = static_cast<size_t>(std::ceil(p / 100.0 * ns.size()));
      idx = std::clamp<size_t>(idx, 1, ns.size()) - 1;
      return ns[idx] / 1000.0;
    };
    double mean = 0;
    for (int64_t v : ns) mean += v;
    if (!ns.empty()) mean /= ns.size();
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "{\"count\":%zu,\"mean_us\":%.1f,\"p50_us\":%.1f,\"p90_us\":%.1f,"
                  "\"p95_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f}",
                  ns.size(), mean / 1000.0, pct(50), pct(90), pct(95), pct(99), pct(99.9),
                  pct(100));
    return buf;
  }
};

// --- HTTP exchange --------------------------------------------------------------------------

struct Totals {
  int64_t scheduled = 0;
  int64_t completed = 0;  // a full response was read (any status)
  int64_t non2xx = 0;
  int64_t errors = 0;  // connect/read/write failures, timeouts, wrong token counts
  int64_t tokens = 0;
  std::map<unsigned, int64_t> statuses;  // completed responses by HTTP status
  Stats latency;                         // scheduled send -> last byte of the response
  Stats ttft;                            // stream: scheduled send -> first token event
  Stats token_lateness;                  // stream: per token, see the header comment
  Stats token_gap;    // stream: token k's arrival - (first token's + (k-1) * interval):
                      // relay delay not counting the time to the first token
  Stats token_relay;  // stream, stamped tokens: arrival - the backend's stamp
  std::string first_error;
};

class Generator {
 public:
  Generator(asio::io_context& io, Options o) : io_(io), o_(std::move(o)) {
    request_ = "POST " + o_.path + " HTTP/1.1\r\nHost: " + o_.host + ":" + std::to_string(o_.port) +
               "\r\nContent-Type: application/json\r\n";
    for (const auto& h : o_.headers) request_ += h + "\r\n";
    request_ += "Content-Length: " + std::to_string(o_.body.size()) + "\r\n\r\n" + o_.body;
  }

  Totals& totals() { return totals_; }
  const Options& options() const { return o_; }

  awaitable<bool> Connect(tcp::socket& socket) {
    tcp::endpoint ep(asio::ip::make_address(o_.host), o_.port);
    auto [ec] = co_await socket.async_connect(ep, kTuple);
    if (ec) {
      Fail("connect: " + ec.message());
      co_return false;
    }
    socket.set_option(tcp::no_delay(true));
    co_return true;
  }

  // One request/response on `socket`. `scheduled` is when it should have been sent. With
  // `streaming`, token events are timed as they arrive. Returns false if the connection is
  // unusable afterwards.
  awaitable<bool> Exchange(tcp::socket& socket, beast::flat_buffer& buffer,
                           Clock::time_point scheduled, bool streaming, bool record) {
    auto [wec, wn] = co_await asio::async_write(socket, asio::buffer(request_), kTuple);
    if (wec) {
      if (record) Fail("write: " + wec.message());
      co_return false;
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    int64_t tokens = 0;
    bool first = true;
    Clock::time_point first_at;
    std::string carry;
    auto on_chunk = [&](uint64_t, std::string_view data, beast::error_code&) -> size_t {
      if (!streaming) return data.size();
      Clock::time_point now = Clock::now();
      carry.append(data);
      size_t start = 0;
      for (;;) {
        size_t end = carry.find("\n\n", start);
        if (end == std::string::npos) break;
        std::string_view event(carry.data() + start, end - start);
        start = end + 2;
        // A token event carries generated text; role-only, finish and usage chunks do not.
        if (event.find("\"content\":\"") == std::string_view::npos &&
            event.find("\"text\":\"") == std::string_view::npos) {
          continue;
        }
        ++tokens;
        if (!record) continue;
        if (first) {
          totals_.ttft.Add(now - scheduled);
          first = false;
          first_at = now;
        } else {
          totals_.token_gap.Add(now - (first_at + microseconds((tokens - 1) * o_.interval_us)));
        }
        auto due = scheduled + microseconds(o_.ttft_us + (tokens - 1) * o_.interval_us);
        totals_.token_lateness.Add(now - due);
        if (size_t at = event.find(": sent_us="); at != std::string_view::npos) {
          int64_t sent_us = 0;
          const char* digits = event.data() + at + 10;
          if (std::from_chars(digits, event.data() + event.size(), sent_us).ec == std::errc()) {
            totals_.token_relay.Add(now.time_since_epoch() - microseconds(sent_us));
          }
        }
      }
      carry.erase(0, start);
      return data.size();
    };
    parser.on_chunk_body(on_chunk);
    auto [rec, rn] = co_await http::async_read(socket, buffer, parser, kTuple);
    if (rec) {
      if (record) Fail("read: " + rec.message());
      co_return false;
    }
    if (!record) co_return parser.keep_alive();
    totals_.completed++;
    totals_.latency.Add(Clock::now() - scheduled);
    totals_.tokens += tokens;
    unsigned status = parser.get().result_int();
    totals_.statuses[status]++;
    if (status < 200 || status >= 300) {
      totals_.non2xx++;
      if (totals_.first_error.empty()) {
        totals_.first_error =
            "HTTP " + std::to_string(status) + ": " + parser.get().body().substr(0, 200);
      }
    } else if (streaming && o_.expect_tokens > 0 && tokens != o_.expect_tokens) {
      Fail("stream had " + std::to_string(tokens) + " tokens, expected " +
           std::to_string(o_.expect_tokens));
    }
    co_return parser.keep_alive();
  }

  void Fail(const std::string& why) {
    totals_.errors++;
    if (totals_.first_error.empty()) totals_.first_error = why;
  }

 private:
  asio::io_context& io_;
  Options o_;
  std::string request_;
  Totals totals_;
};

// --- open loop (rate, stream, idle) ---------------------------------------------------------

// Scheduled requests wait here for a free connection; idle workers wait on their timer.
struct Queue {
  std::deque<Clock::time_point> pending;
  std::vector<asio::steady_timer*> idle_workers;
  bool closed = false;
  void Wake() {
    if (!idle_workers.empty()) {
      idle_workers.back()->cancel();
      idle_workers.pop_back();
    }
  }
};

awaitable<void> Worker(Generator& g, Queue& q, bool streaming, int& live) {
  auto ex = co_await asio::this_coro::executor;
  tcp::socket socket(ex);
  beast::flat_buffer buffer;
  asio::steady_timer wait(ex);
  bool connected = false;
  ++live;
  for (;;) {
    while (q.pending.empty() && !q.closed) {
      wait.expires_at(Clock::time_point::max());
      q.idle_workers.push_back(&wait);
      co_await wait.async_wait(kTuple);
    }
    if (q.pending.empty()) break;
    Clock::time_point scheduled = q.pending.front();
    q.pending.pop_front();
    if (!connected) {
      socket = tcp::socket(ex);
      connected = co_await g.Connect(socket);
      if (!connected) continue;
    }
    connected = co_await g.Exchange(socket, buffer, scheduled, streaming, true);
    if (!connected) {
      beast::error_code ignored;
      socket.close(ignored);
      buffer.clear();
    }
  }
  --live;
}

// Opens `n` connections that each make one (unrecorded) request and then stay open, idle.
awaitable<void> OpenIdle(Generator& g, std::vector<std::unique_ptr<tcp::socket>>& sockets, int n,
                         int& ready) {
  auto ex = co_await asio::this_coro::executor;
  auto one = [&]() -> awaitable<void> {
    auto socket = std::make_unique<tcp::socket>(ex);
    if (!co_await g.Connect(*socket)) co_return;
    beast::flat_buffer buffer;
    if (co_await g.Exchange(*socket, buffer, Clock::now(), false, false)) {
      sockets.push_back(std::move(socket));
      ++ready;
    } else {
      g.Fail("idle connection was not kept alive");
    }
  };
  // At most 128 being set up at once: a burst of thousands of SYNs overflows accept backlogs.
  int started = 0, running = 0;
  asio::steady_timer tick(ex);
  while (started < n || running > 0) {
    while (started < n && running < 128) {
      ++started;
      ++running;
      asio::co_spawn(
          ex,
          [&, one]() -> awaitable<void> {
            co_await one();
            --running;
          },
          asio::detached);
    }
    tick.expires_after(std::chrono::milliseconds(1));
    co_await tick.async_wait(kTuple);
  }
}

awaitable<void> RunOpenLoop(Generator& g, std::string& extra) {
  const Options& o = g.options();
  auto ex = co_await asio::this_coro::executor;
  std::vector<std::unique_ptr<tcp::socket>> idle_sockets;
  if (o.mode == "idle") {
    extra += ",\"before_idle\":" + SamplesJson(o.watch_pids);
    int ready = 0;
    auto t0 = Clock::now();
    co_await OpenIdle(g, idle_sockets, o.idle, ready);
    std::cerr << "trl-loadgen: " << ready << " idle connections open in "
              << duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count() << " ms\n";
    asio::steady_timer settle(
        ex, duration_cast<Clock::duration>(std::chrono::duration<double>(o.settle_s)));
    co_await settle.async_wait(kTuple);
    // Failures setting up idle connections are reported apart from the measured requests.
    extra += ",\"idle_errors\":" + std::to_string(g.totals().errors);
    g.totals().errors = 0;
    extra +=
        ",\"idle_open\":" + std::to_string(ready) + ",\"with_idle\":" + SamplesJson(o.watch_pids);
  }
  const bool streaming = o.mode == "stream";
  Queue q;
  int live = 0;
  for (int i = 0; i < o.connections; ++i) {
    asio::co_spawn(ex, Worker(g, q, streaming, live), asio::detached);
  }
  // Let the workers park before the clock starts.
  asio::steady_timer timer(ex);
  timer.expires_after(std::chrono::milliseconds(1));
  co_await timer.async_wait(kTuple);

  const auto start = Clock::now();
  const auto end =
      start + duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration_s));
  const double period_ns = 1e9 / o.rate;
  for (int64_t i = 0;; ++i) {
    auto due = start + nanoseconds(static_cast<int64_t>(i * period_ns));
    if (due >= end) break;
    if (due > Clock::now()) {
      timer.expires_at(due);
      co_await timer.async_wait(kTuple);
    }
    q.pending.push_back(due);
    g.totals().scheduled++;
    q.Wake();
  }
  // Drain: whatever has not finished within the timeout after the schedule ended is an error.
  q.closed = true;
  while (!q.idle_workers.empty()) q.Wake();
  auto give_up =
      Clock::now() + duration_cast<Clock::duration>(std::chrono::duration<double>(o.timeout_s));
  while (live > 0 && Clock::now() < give_up) {
    timer.expires_after(std::chrono::milliseconds(2));
    co_await timer.async_wait(kTuple);
  }
  int64_t unfinished = g.totals().scheduled - g.totals().completed - g.totals().errors;
  if (unfinished > 0) {
    g.totals().errors += unfinished;
    if (g.totals().first_error.empty()) g.totals().first_error = "timed out";
  }
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  char buf[128];
  std::snprintf(buf, sizeof buf, ",\"achieved_rps\":%.1f", g.totals().completed / elapsed);
  extra += buf;
  if (o.mode == "idle") extra += ",\"after\":" + SamplesJson(o.watch_pids);
}

// --- hold: slow streams back to back --------------------------------------------------------

awaitable<void> RunHold(Generator& g, std::string& extra) {
  const Options& o = g.options();
  auto ex = co_await asio::this_coro::executor;
  extra += ",\"before\":" + SamplesJson(o.watch_pids);
  int streaming_now = 0, done = 0;
  bool stop = false;
  std::vector<std::shared_ptr<tcp::socket>> sockets;
  auto one = [&](std::shared_ptr<tcp::socket> socket) -> awaitable<void> {
    beast::flat_buffer buffer;
    bool connected = false;
    bool counted = false;
    while (!stop) {
      if (!connected) {
        *socket = tcp::socket(ex);
        connected = co_await g.Connect(*socket);
        if (!connected) break;
      }
      if (!counted) {
        ++streaming_now;
        counted = true;
      }
      connected = co_await g.Exchange(*socket, buffer, Clock::now(), true, true);
    }
    if (counted) --streaming_now;
    ++done;
  };
  asio::steady_timer timer(ex);
  auto ramp_end =
      Clock::now() + duration_cast<Clock::duration>(std::chrono::duration<double>(o.ramp_s));
  for (int i = 0; i < o.streams; ++i) {
    auto socket = std::make_shared<tcp::socket>(ex);
    sockets.push_back(socket);
    asio::co_spawn(ex, one(socket), asio::detached);
    if (i % 100 == 99) {
      timer.expires_after(std::chrono::milliseconds(20));
      co_await timer.async_wait(kTuple);
    }
  }
  // Until every stream has had its first token (each has then gone through the proxy to the
  // backend and back), or the ramp time is over.
  while (g.totals().ttft.ns.size() < static_cast<size_t>(o.streams) && Clock::now() < ramp_end) {
    timer.expires_after(std::chrono::milliseconds(10));
    co_await timer.async_wait(kTuple);
  }
  // Give every stream time to be past its first token before sampling memory.
  timer.expires_after(std::chrono::milliseconds(o.ttft_us / 1000 + 2 * o.interval_us / 1000 + 200));
  co_await timer.async_wait(kTuple);
  std::cerr << "trl-loadgen: " << streaming_now << " streams running, " << g.totals().ttft.ns.size()
            << " past their first token\n";
  const size_t started_streams = g.totals().ttft.ns.size();
  int64_t tokens_at_start = g.totals().tokens;
  auto t1 = Clock::now();
  extra += ",\"streams_open\":" + std::to_string(streaming_now) +
           ",\"streams_started\":" + std::to_string(started_streams) +
           ",\"during\":" + SamplesJson(o.watch_pids);
  timer.expires_after(duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration_s)));
  co_await timer.async_wait(kTuple);
  // Token events counted so far include only completed streams; count the window by time.
  double window = std::chrono::duration<double>(Clock::now() - t1).count();
  extra += ",\"end\":" + SamplesJson(o.watch_pids);
  char buf[160];
  std::snprintf(buf, sizeof buf, ",\"window_s\":%.3f,\"streams_at_end\":%d", window, streaming_now);
  extra += buf;
  (void)tokens_at_start;
  // Closing the sockets below fails the streams in flight: those are not errors.
  const int64_t errors_in_window = g.totals().errors;
  stop = true;
  for (auto& s : sockets) {
    beast::error_code ignored;
    s->close(ignored);
  }
  auto give_up = Clock::now() + std::chrono::seconds(5);
  while (done < o.streams && Clock::now() < give_up) {
    timer.expires_after(std::chrono::milliseconds(5));
    co_await timer.async_wait(kTuple);
  }
  g.totals().errors = errors_in_window;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = ParseArgs(argc, argv);
  if (o.mode == "hold" && o.streams <= 0) Usage("hold needs --streams");
  if (o.mode == "idle" && o.idle <= 0) Usage("idle needs --idle");
  asio::io_context io(1);
  Generator g(io, o);
  std::string extra;
  bool finished = false;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        if (o.mode == "hold")
          co_await RunHold(g, extra);
        else
          co_await RunOpenLoop(g, extra);
        finished = true;
        io.stop();
      },
      asio::detached);
  io.run();
  if (!finished) return 1;
  Totals& t = g.totals();
  std::string err;
  if (t.errors == 0 && t.non2xx == 0) t.first_error.clear();
  for (char c : t.first_error) {
    if (c == '"' || c == '\\') err += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) err += c;
  }
  std::cout << "{\"mode\":\"" << o.mode << "\",\"rate\":" << o.rate
            << ",\"duration_s\":" << o.duration_s << ",\"connections\":" << o.connections
            << ",\"scheduled\":" << t.scheduled << ",\"completed\":" << t.completed
            << ",\"non2xx\":" << t.non2xx << ",\"errors\":" << t.errors
            << ",\"tokens\":" << t.tokens << ",\"statuses\":{";
  for (auto it = t.statuses.begin(); it != t.statuses.end(); ++it) {
    std::cout << (it == t.statuses.begin() ? "" : ",") << '"' << it->first << "\":" << it->second;
  }
  std::cout << "},\"latency\":" << t.latency.Json() << ",\"ttft\":" << t.ttft.Json()
            << ",\"token_lateness\":" << t.token_lateness.Json()
            << ",\"token_gap\":" << t.token_gap.Json()
            << ",\"token_relay\":" << t.token_relay.Json() << ",\"first_error\":\"" << err << "\""
            << extra << "}\n";
  return 0;
}
