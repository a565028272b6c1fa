// Socket reads and writes that go through the scheduler only when they have to wait.
//
// Asio and Beast complete an operation that needed no waiting (the bytes were already
// buffered, or the socket took the whole write at once) by posting its handler: a scheduler
// round trip for no I/O. A client's request head and body, and a backend's answer head and
// body, usually arrive in one segment, and a request or answer usually fits the socket's send
// buffer, so that was five round trips per proxied request.
//
// ReadMessage feeds the same Beast parser the same way as Beast's reads (put, put_eof,
// read_size, eager as Beast sets it) and returns the same errors, reading the socket only when
// the parser needs more. Its reads tell Asio's reactor when they drained the socket, so that
// the read of the next message waits for the socket's next event instead of first trying a
// recv that finds nothing (http/draining_buffer.h). WriteAll sends what it can at once (one
// sendmsg, as Asio's first attempt would) and waits only for what the socket did not take.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <span>

namespace trl::http {

namespace asio = boost::asio;
namespace beast = boost::beast;

// kSome: until the parser has taken some bytes, as Beast's http::async_read_some (the next
// piece of a streamed body; need_buffer when the body's buffer is full).
enum class ReadUntil { kHeader, kMessage, kSome };

// What is read: kAnswer is the peer's answer to bytes just written to it, so a peer that closed
// instead resets the connection when those bytes reach it, which the reactor reports; the first
// read may then wait for the socket's next event without trying the socket first.
enum class Reading { kAny, kAnswer };

// Parses into `parser` until its head (kHeader) or its whole message (kMessage) is done: first
// from `buffer`, then from `socket`, whose bytes are read into `buffer` (what the parser leaves
// unconsumed stays there: a pipelined request, or the body after the head). Errors are Beast's:
// header_limit, body_limit, buffer_overflow (`buffer` full), end_of_stream (the peer closed
// before sending anything), partial_message (it closed in the middle), and the socket's own
// (operation_aborted when a Deadline cancelled the read). All reads of `socket` other than
// ReadWhenReady's must go through this or DrainingBuffer (an Asio read of another buffer type
// after a drained one would miss an end of stream). Puts the socket in non-blocking mode.
asio::awaitable<beast::error_code> ReadMessage(asio::ip::tcp::socket& socket,
                                               beast::flat_buffer& buffer,
                                               beast::http::basic_parser<true>& parser,
                                               ReadUntil until, Reading reading = Reading::kAny);
asio::awaitable<beast::error_code> ReadMessage(asio::ip::tcp::socket& socket,
                                               beast::flat_buffer& buffer,
                                               beast::http::basic_parser<false>& parser,
                                               ReadUntil until, Reading reading = Reading::kAny);

// Waits for `socket` to have bytes to read, holding no buffer while it waits, then reads what
// came into `buffer` (at most `size` bytes). For a connection idle between requests, which an
// async_read_some would make hold its buffer for as long as it waits. Returns eof when the peer
// closed; operation_aborted when a Deadline cancelled the wait. Puts the socket in non-blocking
// mode (once).
asio::awaitable<beast::error_code> ReadWhenReady(asio::ip::tcp::socket& socket,
                                                 beast::flat_buffer& buffer, size_t size);

// Writes all of `buffers` to `socket`: at once if the socket takes them, else the rest with
// async_write. Puts the socket in non-blocking mode (once). Returns the socket's error, if any
// (operation_aborted when a Deadline cancelled the wait).
asio::awaitable<beast::error_code> WriteAll(asio::ip::tcp::socket& socket,
                                            std::span<const asio::const_buffer> buffers);

}  // namespace trl::http
