// A connected pair of loopback TCP sockets on one io_context: `near` for the code under test,
// `far` for the test playing the peer. Port 0: the kernel picks the port.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <string_view>

namespace trl::testing {

struct SocketPair {
  explicit SocketPair(boost::asio::io_context& io) : near(io), far(io) {
    boost::asio::ip::tcp::acceptor acceptor(
        io, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
    far.connect(acceptor.local_endpoint());
    acceptor.accept(near);
  }

  // Writes `bytes` from the peer's end (blocking: loopback takes them at once).
  void Send(std::string_view bytes) { boost::asio::write(far, boost::asio::buffer(bytes)); }

  boost::asio::ip::tcp::socket near;
  boost::asio::ip::tcp::socket far;
};

}  // namespace trl::testing
