#include "http/socket_io.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/http/error.hpp>

#include "http/draining_buffer.h"

namespace trl::http {
namespace {

namespace bhttp = beast::http;

// Beast's http::detail::read_some_op and read_op, as one loop without their posted completion.
template <bool isRequest>
asio::awaitable<beast::error_code> Read(asio::ip::tcp::socket& socket, beast::flat_buffer& buffer,
                                        bhttp::basic_parser<isRequest>& parser, ReadUntil until,
                                        Reading reading) {
  // As async_read_header and async_read set it: stop after the head, or parse on through.
  if (until != ReadUntil::kSome) parser.eager(until == ReadUntil::kMessage);
  bool some = false;  // a put took bytes without error
  auto done = [&] {
    switch (until) {
      case ReadUntil::kHeader:
        return parser.is_header_done();
      case ReadUntil::kMessage:
        return parser.is_done();
      case ReadUntil::kSome:
        return some || parser.is_done();
    }
    return true;
  };
  // Whether to try the socket before waiting for its next event: after a short read through
  // DrainingBuffer (here or before this call) the peer's end of stream may have come unreported
  // (http/draining_buffer.h). Only an answer to what was just written may start without.
  bool look_first = !(reading == Reading::kAnswer && !parser.got_some() && buffer.size() == 0);
  for (;;) {
    while (!done() && buffer.size() != 0) {
      beast::error_code ec;
      const size_t used = parser.put(buffer.data(), ec);
      buffer.consume(used);
      if (ec == bhttp::error::need_more) break;
      if (ec) co_return ec;
      some = true;
    }
    if (done()) co_return beast::error_code{};
    const size_t size = beast::read_size(buffer, 65536);
    if (size == 0) co_return bhttp::error::buffer_overflow;
    const asio::mutable_buffer into = buffer.prepare(size);
    beast::error_code ec;
    size_t n = 0;
    if (look_first) {
      if (!socket.non_blocking()) socket.non_blocking(true, ec);
      if (!ec) n = socket.read_some(into, ec);  // never waits: non-blocking
    }
    if (!look_first || ec == asio::error::would_block) {
      std::tie(ec, n) = co_await socket.async_read_some(DrainingBuffer{into},
                                                        asio::as_tuple(asio::use_awaitable));
      look_first = n < into.size();
    } else {
      // Our own read marks nothing drained, and whatever came after the last read that did
      // raised an event that the reactor has yet to handle, or has handled by trying the socket
      // again on its next read: the next read may rely on the reactor.
      look_first = false;
    }
    buffer.commit(n);
    if (ec == asio::error::eof) {
      if (!parser.got_some()) co_return bhttp::error::end_of_stream;
      beast::error_code eof;
      parser.put_eof(eof);  // completes a body that ends with the connection, or fails
      co_return eof;
    }
    if (ec) co_return ec;
  }
}

}  // namespace

asio::awaitable<beast::error_code> ReadMessage(asio::ip::tcp::socket& socket,
                                               beast::flat_buffer& buffer,
                                               beast::http::basic_parser<true>& parser,
                                               ReadUntil until, Reading reading) {
  return Read(socket, buffer, parser, until, reading);
}

asio::awaitable<beast::error_code> ReadMessage(asio::ip::tcp::socket& socket,
                                               beast::flat_buffer& buffer,
                                               beast::http::basic_parser<false>& parser,
                                               ReadUntil until, Reading reading) {
  return Read(socket, buffer, parser, until, reading);
}

asio::awaitable<beast::error_code> ReadWhenReady(asio::ip::tcp::socket& socket,
                                                 beast::flat_buffer& buffer, size_t size) {
  beast::error_code ec;
  if (!socket.non_blocking()) socket.non_blocking(true, ec);
  if (ec) co_return ec;
  for (;;) {
    // Asio's reactor re-arms the socket for a wait (an epoll_ctl), so a readiness it reported
    // before the wait began is reported again: nothing that already came is missed.
    auto [wec] = co_await socket.async_wait(asio::socket_base::wait_read,
                                            asio::as_tuple(asio::use_awaitable));
    if (wec) co_return wec;
    const size_t n = socket.read_some(buffer.prepare(size), ec);  // never waits: non-blocking
    if (ec == asio::error::would_block) {
      buffer.shrink_to_fit();  // woken for nothing: wait on, again without a buffer
      continue;
    }
    if (ec) co_return ec;
    buffer.commit(n);
    co_return beast::error_code{};
  }
}

asio::awaitable<beast::error_code> WriteAll(asio::ip::tcp::socket& socket,
                                            std::span<const asio::const_buffer> buffers) {
  beast::error_code ec;
  if (!socket.non_blocking()) socket.non_blocking(true, ec);
  size_t written = 0;
  if (!ec) written = socket.write_some(buffers, ec);  // never waits: non-blocking
  if (!ec && written == asio::buffer_size(buffers)) co_return ec;
  if (ec && ec != asio::error::would_block) co_return ec;
  beast::buffers_suffix<std::span<const asio::const_buffer>> rest(buffers);
  rest.consume(written);
  auto [wec, wn] = co_await asio::async_write(socket, rest, asio::as_tuple(asio::use_awaitable));
  co_return wec;
}

}  // namespace trl::http
