#include "http/socket_io.h"

#include <gtest/gtest.h>

#include <array>
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

#include "http/deadline.h"

namespace trl::http {
namespace {

using asio::ip::tcp;
namespace bhttp = beast::http;

// A connected pair of loopback sockets: the reader's end and the peer's.
struct Pair {
  explicit Pair(asio::io_context& io) : near(io), far(io) {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    far.connect(acceptor.local_endpoint());
    acceptor.accept(near);
  }
  void Send(std::string_view bytes) { asio::write(far, asio::buffer(bytes)); }
  tcp::socket near;
  tcp::socket far;
};

// Starts ReadMessage; `result` is set when it completes.
template <bool isRequest>
void Start(asio::io_context& io, Pair& pair, beast::flat_buffer& buffer,
           bhttp::basic_parser<isRequest>& parser, ReadUntil until,
           std::optional<beast::error_code>& result) {
  asio::co_spawn(io, ReadMessage(pair.near, buffer, parser, until),
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

// Runs until the read completes; data the test sent is on loopback already, so each step is
// ready or waits only for the kernel to hand it over.
void Finish(asio::io_context& io, const std::optional<beast::error_code>& result) {
  io.restart();
  while (!result && io.run_one() != 0) {
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
  EXPECT_EQ(ReadRequestWith(kRoomy, kRoomy, 16, ReadUntil::kHeader),
            bhttp::error::buffer_overflow);
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

// Like Finish, but gives up after a while instead of waiting forever: for a wait that would
// hang if it missed a readiness.
void FinishOrGiveUp(asio::io_context& io, const std::optional<beast::error_code>& result) {
  io.restart();
  while (!result && io.run_one_for(std::chrono::seconds(5)) != 0) {
  }
  ASSERT_TRUE(result) << "the wait never completed";
}

TEST(ReadWhenReadyTest, WaitsHoldingNoBufferThenReadsWhatCame) {
  asio::io_context io(1);
  Pair pair(io);
  Wait wait(io, pair);
  EXPECT_FALSE(Progress(io, wait.result));
  EXPECT_EQ(wait.buffer.capacity(), 0u);  // nothing held while waiting
  pair.Send(kRequest);
  FinishOrGiveUp(io, wait.result);
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
  FinishOrGiveUp(io, wait.result);
  EXPECT_FALSE(*wait.result) << wait.result->message();
  EXPECT_EQ(beast::buffers_to_string(wait.buffer.data()), kRequest);
}

TEST(ReadWhenReadyTest, ThePeerClosingIsEndOfFile) {
  asio::io_context io(1);
  Pair pair(io);
  Wait wait(io, pair);
  EXPECT_FALSE(Progress(io, wait.result));
  pair.far.close();
  FinishOrGiveUp(io, wait.result);
  EXPECT_EQ(*wait.result, asio::error::eof);
  EXPECT_EQ(wait.buffer.size(), 0u);
}

TEST(ReadWhenReadyTest, ADeadlineEndsTheWait) {
  asio::io_context io(1);
  Pair pair(io);
  Deadline deadline(pair.near);
  deadline.ExpiresAfter(std::chrono::seconds(0));  // already past
  Wait wait(io, pair);
  FinishOrGiveUp(io, wait.result);
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
  std::function<void(boost::system::error_code, size_t)> on_read =
      [&](boost::system::error_code ec, size_t n) {
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
