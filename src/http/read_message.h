// Reading an HTTP message into a Beast parser, parsing the bytes already buffered first.
//
// Beast's async_read_header and async_read post their completion when the buffer already holds
// what they were asked to read: a scheduler round trip for no I/O. A client's request head and
// body, and a backend's answer head and body, usually arrive in one segment, so that was three
// round trips per proxied request. ReadMessage feeds the same parser the same way (put, put_eof,
// Beast's read_size) and returns the same errors, and reads the socket only when the parser
// needs more.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>

namespace trl::http {

namespace asio = boost::asio;
namespace beast = boost::beast;

enum class ReadUntil { kHeader, kMessage };

// Parses into `parser` until its head (kHeader) or its whole message (kMessage) is done: first
// from `buffer`, then from `socket`, whose bytes are read into `buffer` (what the parser leaves
// unconsumed stays there: a pipelined request, or the body after the head). Errors are Beast's:
// header_limit, body_limit, buffer_overflow (`buffer` full), end_of_stream (the peer closed
// before sending anything), partial_message (it closed in the middle), and the socket's own
// (operation_aborted when a Deadline cancelled the read).
asio::awaitable<beast::error_code> ReadMessage(asio::ip::tcp::socket& socket,
                                               beast::flat_buffer& buffer,
                                               beast::http::basic_parser<true>& parser,
                                               ReadUntil until);
asio::awaitable<beast::error_code> ReadMessage(asio::ip::tcp::socket& socket,
                                               beast::flat_buffer& buffer,
                                               beast::http::basic_parser<false>& parser,
                                               ReadUntil until);

}  // namespace trl::http
