// A read buffer whose short reads tell Asio's epoll reactor that the socket is drained, so that
// the next read on it waits for the socket's next readiness event instead of first trying a
// recv that finds nothing.
//
// Asio (Boost 1.81) starts every read with a speculative recv unless the last read on the
// socket reported the socket exhausted, which it does only for end of stream. So the read of a
// keep-alive client's next request, started right after the answer went out, and the read of a
// backend's answer, started right after the request went out, each cost a recv that fails with
// EAGAIN: ~1.7 syscalls per proxied request of ~6 at saturation (nginx keeps this readiness
// itself). A read through DrainingBuffer that returns fewer bytes than it asked for reports the
// socket exhausted, as Asio does for end of stream.
//
// What that may miss, and who must look first: a short non-blocking TCP recv means that the
// receive queue held no more bytes, and any byte that arrives afterwards raises a new
// edge-triggered readiness event; the reactor turns speculative reads back on when it handles
// that event, before it runs the read queued meanwhile (the socket's operations and its events
// are handled by one thread, as each of the gateway's I/O contexts is). But the peer's end of
// stream, when it came with the last bytes, is taken by that same recv without being reported,
// and raises no further event. So a read that continues a message after a short read must try
// the socket first (http::ReadMessage does); only a read that waits for something new may rely
// on the next event: a backend's answer to the request just written (a backend that closed
// resets the connection when the request reaches it, which is an event), and a client's next
// request, whose wait gives up holding its buffer after a while and then asks the reactor
// afresh (RunSession).
//
// This specialises a class template in boost::asio::detail for a type of ours: it is tied to
// Boost 1.81's reactor. With any other Boost (or with TRL_PLAIN_SOCKET_READS defined, to build
// and test that path here), DrainingBuffer is a plain buffer: reads make the speculative recv
// again, which costs the syscall above and changes nothing else. kDrainsOnShortRead says which
// one was built (tests that count recv calls depend on it).
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/version.hpp>

#if BOOST_VERSION == 108100 && !defined(TRL_PLAIN_SOCKET_READS)
#define TRL_DRAINING_READS 1
#include <boost/asio/detail/reactive_socket_recv_op.hpp>
#else
#define TRL_DRAINING_READS 0
#endif

namespace trl::http {

// One piece of memory to read into (a MutableBufferSequence of one buffer).
struct DrainingBuffer {
  boost::asio::mutable_buffer buffer;

  const boost::asio::mutable_buffer* begin() const { return &buffer; }
  const boost::asio::mutable_buffer* end() const { return &buffer + 1; }
};

// Whether a short read through DrainingBuffer marks the socket drained (Boost 1.81), or is an
// ordinary read.
inline constexpr bool kDrainsOnShortRead = TRL_DRAINING_READS != 0;

}  // namespace trl::http

#if TRL_DRAINING_READS
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
#endif  // TRL_DRAINING_READS
