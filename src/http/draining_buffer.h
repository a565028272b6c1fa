// A read buffer whose short reads tell Asio's epoll reactor that the socket is drained, so that
// the next read on it waits for the socket's next readiness event instead of first trying a
// recv that finds nothing.
//
// Asio (Boost 1.81) starts every read with a speculative recv unless the last read on the
// socket reported the socket exhausted, which it does only for end of stream. So the read of a
// keep-alive client's next request, started right after the answer went out, and the read of a
// backend's answer, started right after the request went out, each cost a recv that fails with
// EAGAIN: ~1.7 syscalls per proxied request of ~5.8 at saturation (nginx keeps this readiness
// itself and makes ~5.1), and a streamed token one of three. A read through DrainingBuffer that
// returns fewer bytes than it asked for reports the socket exhausted, as Asio does for end of
// stream.
//
// Why that is sound: on a TCP socket a non-blocking recv returns fewer bytes than asked only
// when the receive queue was empty (or, with urgent data, at the urgent mark: such a connection
// waits for more bytes or its deadline). Any byte that arrives afterwards raises a new
// edge-triggered readiness event, and the reactor turns speculative reads back on when it
// handles that event, before it runs the read queued meanwhile. That ordering needs the socket's
// operations and its events to be handled by one thread, as each of the gateway's I/O contexts
// is (one thread each, src/app/gateway_app.cc).
//
// This specialises a class template in boost::asio::detail for a type of ours: it is tied to
// Boost 1.81's reactor, and a different Boost stops the build here.
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/asio/detail/reactive_socket_recv_op.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/version.hpp>
#include <utility>

static_assert(BOOST_VERSION == 108100,
              "http/draining_buffer.h specialises Boost 1.81's reactive_socket_recv_op_base");

namespace trl::http {

// One piece of memory to read into (a MutableBufferSequence of one buffer).
struct DrainingBuffer {
  boost::asio::mutable_buffer buffer;

  const boost::asio::mutable_buffer* begin() const { return &buffer; }
  const boost::asio::mutable_buffer* end() const { return &buffer + 1; }
};

// A socket's reads through DrainingBuffer, for Beast's HTTP reads (an AsyncReadStream; Beast
// reads into one buffer prepared from a flat_buffer).
class DrainingReads {
 public:
  using executor_type = boost::asio::ip::tcp::socket::executor_type;

  explicit DrainingReads(boost::asio::ip::tcp::socket& socket) : socket_(socket) {}
  executor_type get_executor() { return socket_.get_executor(); }
  template <class Token>
  auto async_read_some(const boost::asio::mutable_buffer& buffer, Token&& token) {
    return socket_.async_read_some(DrainingBuffer{buffer}, std::forward<Token>(token));
  }

 private:
  boost::asio::ip::tcp::socket& socket_;
};

}  // namespace trl::http

namespace boost::asio::detail {

// As the primary template (reactive_socket_recv_op.hpp), but a short read on a stream socket is
// done_and_exhausted.
template <>
class reactive_socket_recv_op_base<trl::http::DrainingBuffer> : public reactor_op {
 public:
  reactive_socket_recv_op_base(const boost::system::error_code& success_ec, socket_type socket,
                               socket_ops::state_type state,
                               const trl::http::DrainingBuffer& buffers,
                               socket_base::message_flags flags, func_type complete_func)
      : reactor_op(success_ec, &reactive_socket_recv_op_base::do_perform, complete_func),
        socket_(socket),
        state_(state),
        buffers_(buffers),
        flags_(flags) {}

  static status do_perform(reactor_op* base) {
    auto* o = static_cast<reactive_socket_recv_op_base*>(base);
    const bool stream = (o->state_ & socket_ops::stream_oriented) != 0;
    const mutable_buffer& into = o->buffers_.buffer;
    if (!socket_ops::non_blocking_recv1(o->socket_, into.data(), into.size(), o->flags_, stream,
                                        o->ec_, o->bytes_transferred_)) {
      return not_done;
    }
    return stream && o->bytes_transferred_ < into.size() ? done_and_exhausted : done;
  }

 private:
  socket_type socket_;
  socket_ops::state_type state_;
  trl::http::DrainingBuffer buffers_;
  socket_base::message_flags flags_;
};

}  // namespace boost::asio::detail
