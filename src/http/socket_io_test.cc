#include "http/socket_io.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <functional>
#include <optional>
#include <string>

#include "fakes/socket_pair.h"
#include "http/deadline.h"
#include "http/draining_buffer.h"

// The test binary is linked with --wrap=recv (CMakeLists.txt): every recv, Asio's included,
// comes here first, and those on the socket watched are counted.
namespace {
std::atomic<int> watched_fd{-1};
std::atomic<int> recvs{0};
}  // namespace

extern "C" ssize_t __real_recv(int fd, void* data, size_t size, int flags);
extern "C" ssize_t __wrap_recv(int fd, void* data, size_t size, int flags) {
  if (fd == watched_fd.load()) recvs.fetch_add(1);
  return __real_recv(fd, data, size, flags);
}

namespace trl::http {
namespace {

using asio::ip::tcp;
using Pair = testing::SocketPair;
namespace bhttp = beast::http;

// Starts ReadMessage; `result` is set when it completes.
template <bool isRequest>
void Start(asio::io_context& io, Pair& pair, beast::flat_buffer& buffer,
           bhttp::basic_parser<isRequest>& parser, ReadUntil until,
           std::optional<beast::error_code>& result, Reading reading = Reading::kAny) {
  asio::co_spawn(io, ReadMessage(pair.near, buffer, parser, until, reading),
                 [&result](std::exception_ptr e, beast::error_code ec) {
                   if (e) std::rethrow_exception(e);
                   result = ec;
                 });
}

// Runs the handlers ready now; returns whether the read has completed.
bool Progress(asio::io_context& io, const std::optional<beast::error_code>& result) {
  io.restart();
  io.poll();
  return result.has_value();
}

// Runs until the read completes, or gives up after a while instead of waiting forever: a read
// that missed a readiness event would wait for good.
void Finish(asio::io_context& io, const std::optional<beast::error_code>& result) {
  io.restart();
  while (!result && io.run_one_for(std::chrono::seconds(5)) != 0) {
  }
  ASSERT_TRUE(result) << "the read never completed";
}

constexpr std::string_view kRequest =
    "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";

TEST(ReadMessageTest, ABufferedMessageIsParsedWithoutReadingTheSocket) {
  asio::io_context io(1);
  Pair pair(io);
  beast::flat_buffer buffer;
  const std::string next = "GET / HTTP/1.1\r\n";  // a pipelined request's start
  asio::buffer_copy(buffer.prepare(kRequest.size() + next.size()),
                    asio::buffer(std::string(kRequest) + next));
  buffer.commit(kRequest.size() + next.size());
  pair.Send("unread");  // would land in the buffer if the socket were read
  bhttp::request_parser<bhttp::string_body> parser;
  std::optional<beast::error_code> result;
  Start(io, pair, buffer, parser, ReadUntil::kMessage, result);
  Finish(io, result);
  EXPECT_FALSE(*result) << result->message();
  EXPECT_EQ(parser.get().body(), "hello");
  EXPECT_EQ(parser.get().target(), "/v1/chat/completions");
  EXPECT_EQ(beast::buffers_to_string(buffer.data()), next);
  EXPECT_EQ(pair.near.available(), 6u);
}

TEST(ReadMessageTest, HeadThenBodyAcrossSegments) {
  asio::io_context io(1);
  Pair pair(io);
  beast::flat_buffer buffer;
  bhttp::request_parser<bhttp::string_body> parser;
  std::optional<beast::error_code> head;
  pair.Send(kRequest.substr(0, 20));
  Start(io, pair, buffer, parser, ReadUntil::kHeader, head);
  // Half a head read (loopback had it before the read started): the reader waits for the rest.
  EXPECT_FALSE(Progress(io, head));
  EXPECT_EQ(buffer.size(), 20u);
  pair.Send(kRequest.substr(20, kRequest.size() - 20 - 3));  // all but "llo"
  Finish(io, head);
  ASSERT_FALSE(*head) << head->message();
  EXPECT_TRUE(parser.is_header_done());
  EXPECT_FALSE(parser.is_done());
  EXPECT_EQ(parser.content_length().value_or(0), 5u);

  std::optional<beast::error_code> body;
  Start(io, pair, buffer, parser, ReadUntil::kMessage, body);
  EXPECT_FALSE(Progress(io, body));
  pair.Send("llo");
  Finish(io, body);
  ASSERT_FALSE(*body) << body->message();
  EXPECT_EQ(parser.get().body(), "hello");
  EXPECT_EQ(buffer.size(), 0u);
}

// What reading a request ends with when the peer sends `sent`, then closes: before the read
// starts, or (`while_waiting`) once the read is waiting for bytes.
beast::error_code ReadRequestClosedAfter(std::string_view sent, bool while_waiting = false) {
  asio::io_context io(1);
  Pair pair(io);
  beast::flat_buffer buffer;
  bhttp::request_parser<bhttp::string_body> parser;
  std::optional<beast::error_code> result;
  if (while_waiting) {
    Start(io, pair, buffer, parser, ReadUntil::kMessage, result);
    EXPECT_FALSE(Progress(io, result));  // waiting
  }
  if (!sent.empty()) pair.Send(sent);
  pair.far.close();
  if (!while_waiting) Start(io, pair, buffer, parser, ReadUntil::kMessage, result);
  Finish(io, result);
  return result.value_or(beast::error_code{});
}

TEST(ReadMessageTest, ThePeerClosing) {
  EXPECT_EQ(ReadRequestClosedAfter(""), bhttp::error::end_of_stream);
  EXPECT_EQ(ReadRequestClosedAfter(kRequest.substr(0, kRequest.size() - 2)),
            bhttp::error::partial_message);
  EXPECT_EQ(ReadRequestClosedAfter(kRequest), beast::error_code{});
}

// The peer's last bytes and its end of stream arrive together while the read waits: the read
// that takes the bytes finds the queue empty of data but not of the end of stream, which raises
// no further readiness event. The next read must still see it (a read that counted a short read
// as "drained" would wait for the connection's timeout here: a backend that dies mid-answer).
TEST(ReadMessageTest, AnEndOfStreamBehindTheLastBytesIsSeen) {
  EXPECT_EQ(ReadRequestClosedAfter(kRequest.substr(0, kRequest.size() - 2), true),
            bhttp::error::partial_message);
}

TEST(ReadMessageTest, ABodyThatEndsWithTheConnectionIsComplete) {
  asio::io_context io(1);
  Pair pair(io);
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  std::optional<beast::error_code> result;
  pair.Send("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"ok\":");
  pair.Send("true}");
  pair.far.close();
  Start(io, pair, buffer, parser, ReadUntil::kMessage, result);
  Finish(io, result);
  ASSERT_FALSE(*result) << result->message();
  EXPECT_TRUE(parser.is_done());
  EXPECT_EQ(parser.get().body(), "{\"ok\":true}");
}

// What reading kRequest ends with, given the parser's limits and the buffer's.
beast::error_code ReadRequestWith(size_t header_limit, uint64_t body_limit, size_t buffer_limit,
                                  ReadUntil until) {
  asio::io_context io(1);
  Pair pair(io);
  beast::flat_buffer buffer(buffer_limit);
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(static_cast<uint32_t>(header_limit));
  parser.body_limit(body_limit);
  std::optional<beast::error_code> result;
  pair.Send(kRequest);
  Start(io, pair, buffer, parser, until, result);
  Finish(io, result);
  return result.value_or(beast::error_code{});
}

TEST(ReadMessageTest, LimitsAreBeastsOwn) {
  constexpr size_t kRoomy = 1024;
  EXPECT_EQ(ReadRequestWith(kRoomy, kRoomy, kRoomy, ReadUntil::kMessage), beast::error_code{});
  EXPECT_EQ(ReadRequestWith(32, kRoomy, kRoomy, ReadUntil::kHeader), bhttp::error::header_limit);
  EXPECT_EQ(ReadRequestWith(kRoomy, 4, kRoomy, ReadUntil::kMessage), bhttp::error::body_limit);
  // A buffer smaller than the head:
  EXPECT_EQ(ReadRequestWith(kRoomy, kRoomy, 16, ReadUntil::kHeader), bhttp::error::buffer_overflow);
}

// Counts the recv calls made on `socket` while it lives.
struct RecvCount {
  explicit RecvCount(tcp::socket& socket) {
    watched_fd = socket.native_handle();
    recvs = 0;
  }
  ~RecvCount() { watched_fd = -1; }
  int operator()() const { return recvs.load(); }
};

constexpr std::string_view kAnswer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";

// Reads one answer (kAnswer), which the peer sends (then closes, with `close`) while the read
// waits: a short read, so the socket counts as drained afterwards. (Bytes that came before a
// read started are read at once, and their readiness, reported later, makes the next read try
// the socket first again.)
void ReadOneAnswer(asio::io_context& io, Pair& pair, beast::flat_buffer& buffer,
                   bool close = false) {
  bhttp::response_parser<bhttp::string_body> parser;
  std::optional<beast::error_code> result;
  Start(io, pair, buffer, parser, ReadUntil::kMessage, result, Reading::kAnswer);
  ASSERT_FALSE(Progress(io, result));
  pair.Send(kAnswer);
  if (close) pair.far.close();
  Finish(io, result);
  ASSERT_FALSE(*result) << result->message();
  ASSERT_EQ(parser.get().body(), "{}");
}

// The read of an answer, after a read that drained the socket, waits for the socket's next
// event without a recv that would find nothing: the recv Asio makes first on every read.
TEST(ReadMessageTest, AnAnswerAfterADrainedReadMakesNoRecvBeforeItComes) {
  if (!kDrainsOnShortRead) GTEST_SKIP() << "plain socket reads (http/draining_buffer.h)";
  asio::io_context io(1);
  Pair pair(io);
  RecvCount count(pair.near);
  beast::flat_buffer buffer;
  ReadOneAnswer(io, pair, buffer);
  EXPECT_EQ(count(), 2);  // Asio's first try, then the answer

  bhttp::response_parser<bhttp::string_body> parser;
  std::optional<beast::error_code> result;
  Start(io, pair, buffer, parser, ReadUntil::kHeader, result, Reading::kAnswer);
  EXPECT_FALSE(Progress(io, result));
  EXPECT_EQ(count(), 2) << "a recv before the answer came";
  pair.Send(kAnswer);
  Finish(io, result);
  ASSERT_FALSE(*result) << result->message();
  EXPECT_EQ(count(), 3);
  EXPECT_EQ(beast::buffers_to_string(buffer.data()), "{}");  // the body, read with the head
}

// Any other read may follow a read that took the peer's end of stream unreported, so it tries
// the socket first.
TEST(ReadMessageTest, ReadsOtherThanAnAnswerTryTheSocketFirst) {
  // (Plain reads go through recvmsg, which the wrapper does not count.)
  if (!kDrainsOnShortRead) GTEST_SKIP() << "plain socket reads (http/draining_buffer.h)";
  asio::io_context io(1);
  Pair pair(io);
  RecvCount count(pair.near);
  beast::flat_buffer buffer;
  ReadOneAnswer(io, pair, buffer);
  ASSERT_EQ(count(), 2);

  bhttp::response_parser<bhttp::string_body> parser;
  std::optional<beast::error_code> result;
  Start(io, pair, buffer, parser, ReadUntil::kHeader, result);
  EXPECT_FALSE(Progress(io, result));
  EXPECT_EQ(count(), 3) << "no recv before waiting";
  pair.Send(kAnswer);
  Finish(io, result);
  ASSERT_FALSE(*result) << result->message();
  EXPECT_EQ(count(), 4);
}

// A backend that closed after its last answer (its end of stream taken, unreported, with the
// answer's bytes) resets the connection when the next request reaches it: the read of the
// answer to that request, which makes no recv first, still ends (and the gateway retries the
// request on a fresh connection).
TEST(ReadMessageTest, AnAnswerFromAPeerThatClosedEndsInAReset) {
  asio::io_context io(1);
  Pair pair(io);
  beast::flat_buffer buffer;
  ReadOneAnswer(io, pair, buffer, /*close=*/true);
  asio::write(pair.near, asio::buffer(kRequest));

  bhttp::response_parser<bhttp::string_body> parser;
  std::optional<beast::error_code> result;
  Start(io, pair, buffer, parser, ReadUntil::kHeader, result, Reading::kAnswer);
  Finish(io, result);
  // The reset wakes the read; its recv then reports the end of stream the backend sent first.
  EXPECT_EQ(*result, bhttp::error::end_of_stream) << result->message();
}

// A chunked answer (a stream's) whose head the peer has sent and the reader has read.
struct StreamedAnswer {
  StreamedAnswer() {
    pair.Send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    EXPECT_FALSE(Read(ReadUntil::kHeader, Reading::kAnswer));
  }
  // Reads until `until`; what the read ended with.
  beast::error_code Read(ReadUntil until, Reading reading = Reading::kAny) {
    std::optional<beast::error_code> result;
    Start(io, pair, buffer, parser, until, result, reading);
    Finish(io, result);
    return result.value_or(asio::error::timed_out);
  }
  asio::io_context io{1};
  Pair pair{io};
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
};

// The last bytes of an answer and the backend's end of stream come together while the read
// waits (a backend that dies mid-answer): the read after them sees the end.
TEST(ReadMessageTest, AnAnswerCutShortByTheBackendClosingEnds) {
  for (ReadUntil until : {ReadUntil::kMessage, ReadUntil::kSome}) {
    StreamedAnswer answer;
    std::optional<beast::error_code> result;
    Start(answer.io, answer.pair, answer.buffer, answer.parser, until, result);
    EXPECT_FALSE(Progress(answer.io, result));
    answer.pair.Send("5\r\nhel");  // a chunk's first bytes, then the end
    answer.pair.far.close();
    Finish(answer.io, result);
    ASSERT_TRUE(result);
    // kSome returns as the parser takes the chunk's head, then its first bytes; the read after
    // those ends.
    beast::error_code ec = *result;
    for (int i = 0; i < 3 && !ec; ++i) ec = answer.Read(until);
    EXPECT_EQ(ec, bhttp::error::partial_message) << ec.message();
  }
}

// kSome returns once the parser has taken bytes, as Beast's async_read_some.
TEST(ReadMessageTest, SomeOfAStreamedBodyIsReturnedAsItComes) {
  StreamedAnswer answer;
  std::string events;
  for (std::string_view chunk : {"6\r\nfirst \r\n", "6\r\nsecond\r\n", "0\r\n\r\n"}) {
    answer.pair.Send(chunk);
    while (answer.parser.get().body().size() == events.size() && !answer.parser.is_done()) {
      const beast::error_code ec = answer.Read(ReadUntil::kSome);
      ASSERT_FALSE(ec) << ec.message();
    }
    events = answer.parser.get().body();
  }
  EXPECT_TRUE(answer.parser.is_done());
  EXPECT_EQ(events, "first second");
}

// After a short read the socket counts as drained and the next read waits for the socket's
// next readiness event instead of trying a recv first. Bytes must never be left unread by that:
// neither those sent after the next read started, nor those sent between two reads, whether or
// not the event loop ran before the next read started.
TEST(DrainingBufferTest, NoBytesAreLeftUnreadAfterAShortRead) {
  asio::io_context io(1);
  Pair pair(io);
  std::array<char, 16> into;
  std::optional<size_t> got;
  auto read = [&] {
    got.reset();
    pair.near.async_read_some(DrainingBuffer{asio::buffer(into)},
                              [&got](beast::error_code ec, size_t n) {
                                ASSERT_FALSE(ec) << ec.message();
                                got = n;
                              });
  };
  auto text = [&] { return std::string(into.data(), got.value_or(0)); };
  // Each step's bytes are on loopback before the step polls, so a poll that does not complete
  // the read means the read is waiting for an event that already passed.
  auto poll = [&] {
    io.restart();
    io.poll();
  };

  pair.Send("abc");
  read();
  poll();
  ASSERT_EQ(text(), "abc");  // short: drained

  read();  // nothing there yet: waits
  poll();
  EXPECT_FALSE(got);
  pair.Send("defg");
  poll();
  ASSERT_EQ(text(), "defg");  // sent after the read started

  pair.Send("hi");
  poll();  // the event loop sees the bytes while no read is waiting
  read();
  poll();
  ASSERT_EQ(text(), "hi");

  pair.Send("jk");
  read();  // started before the event loop saw the bytes
  poll();
  ASSERT_EQ(text(), "jk");

  pair.Send(std::string(into.size() + 3, 'x'));  // a full read: not drained
  read();
  poll();
  ASSERT_EQ(got, into.size());
  read();
  poll();
  EXPECT_EQ(text(), "xxx");
}

// A ReadWhenReady started on `pair`: `result` is set when it completes.
struct Wait {
  Wait(asio::io_context& io, Pair& pair) {
    asio::co_spawn(io, ReadWhenReady(pair.near, buffer, 4096),
                   [this](std::exception_ptr e, beast::error_code ec) {
                     if (e) std::rethrow_exception(e);
                     result = ec;
                   });
  }
  beast::flat_buffer buffer;
  std::optional<beast::error_code> result;
};

TEST(ReadWhenReadyTest, WaitsHoldingNoBufferThenReadsWhatCame) {
  asio::io_context io(1);
  Pair pair(io);
  Wait wait(io, pair);
  EXPECT_FALSE(Progress(io, wait.result));
  EXPECT_EQ(wait.buffer.capacity(), 0u);  // nothing held while waiting
  pair.Send(kRequest);
  Finish(io, wait.result);
  EXPECT_FALSE(*wait.result) << wait.result->message();
  EXPECT_EQ(beast::buffers_to_string(wait.buffer.data()), kRequest);
}

TEST(ReadWhenReadyTest, BytesWhoseReadinessWasReportedBeforeTheWaitAreRead) {
  asio::io_context io(1);
  Pair pair(io);
  // The reactor polls while another socket is read, and sees `pair`'s bytes arrive while nothing
  // waits on it: that readiness is reported once (edge-triggered), before the wait starts.
  Pair other(io);
  char byte = 0;
  other.near.async_read_some(asio::buffer(&byte, 1), [](beast::error_code, size_t) {});
  pair.Send(kRequest);
  io.poll();
  Wait wait(io, pair);
  other.near.cancel();
  Finish(io, wait.result);
  EXPECT_FALSE(*wait.result) << wait.result->message();
  EXPECT_EQ(beast::buffers_to_string(wait.buffer.data()), kRequest);
}

TEST(ReadWhenReadyTest, ThePeerClosingIsEndOfFile) {
  asio::io_context io(1);
  Pair pair(io);
  Wait wait(io, pair);
  EXPECT_FALSE(Progress(io, wait.result));
  pair.far.close();
  Finish(io, wait.result);
  EXPECT_EQ(*wait.result, asio::error::eof);
  EXPECT_EQ(wait.buffer.size(), 0u);
}

TEST(ReadWhenReadyTest, ADeadlineEndsTheWait) {
  asio::io_context io(1);
  Pair pair(io);
  Deadline deadline(pair.near);
  deadline.ExpiresAfter(std::chrono::seconds(0));  // already past
  Wait wait(io, pair);
  Finish(io, wait.result);
  EXPECT_EQ(*wait.result, asio::error::operation_aborted);
  EXPECT_TRUE(deadline.Expired());
  EXPECT_EQ(wait.buffer.capacity(), 0u);
}

// Runs WriteAll of `buffers` while the peer reads everything into `received`, until the
// write completes and the peer has all of it.
beast::error_code WriteAndReceive(std::span<const asio::const_buffer> buffers,
                                  std::string& received) {
  asio::io_context io(1);
  Pair pair(io);
  std::optional<beast::error_code> result;
  asio::co_spawn(io, WriteAll(pair.near, buffers),
                 [&result](std::exception_ptr e, beast::error_code ec) {
                   if (e) std::rethrow_exception(e);
                   result = ec;
                 });
  const size_t total = asio::buffer_size(buffers);
  std::array<char, 65536> chunk;
  std::function<void(boost::system::error_code, size_t)> on_read = [&](boost::system::error_code ec,
                                                                       size_t n) {
    received.append(chunk.data(), n);
    if (!ec && received.size() < total) pair.far.async_read_some(asio::buffer(chunk), on_read);
  };
  pair.far.async_read_some(asio::buffer(chunk), on_read);
  io.run();
  return result.value_or(asio::error::operation_aborted);
}

TEST(WriteAllTest, WritesEveryBufferInOrder) {
  const std::string head = "HTTP/1.1 200 OK\r\n\r\n", body = "{}";
  const std::array<asio::const_buffer, 2> buffers{asio::buffer(head), asio::buffer(body)};
  std::string received;
  EXPECT_EQ(WriteAndReceive(buffers, received), beast::error_code{});
  EXPECT_EQ(received, head + body);
}

TEST(WriteAllTest, WaitsForWhatTheSocketDidNotTakeAtOnce) {
  // Far more than loopback's socket buffers hold: the first sendmsg takes part of it.
  std::string big(32 << 20, 'x');
  for (size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>('a' + i / 4096 % 26);
  const std::string tail = "end";
  const std::array<asio::const_buffer, 2> buffers{asio::buffer(big), asio::buffer(tail)};
  std::string received;
  EXPECT_EQ(WriteAndReceive(buffers, received), beast::error_code{});
  EXPECT_EQ(received.size(), big.size() + tail.size());
  EXPECT_TRUE(received == big + tail);
}

TEST(WriteAllTest, AClosedPeerIsAnError) {
  asio::io_context io(1);
  Pair pair(io);
  pair.far.close();
  std::string big(32 << 20, 'x');
  const asio::const_buffer buffer = asio::buffer(big);
  std::optional<beast::error_code> result;
  asio::co_spawn(io, WriteAll(pair.near, {&buffer, 1}),
                 [&result](std::exception_ptr e, beast::error_code ec) {
                   if (e) std::rethrow_exception(e);
                   result = ec;
                 });
  io.run();
  ASSERT_TRUE(result);
  EXPECT_TRUE(*result == asio::error::broken_pipe || *result == asio::error::connection_reset)
      << result->message();
}

}  // namespace
}  // namespace trl::http
