// Timeouts of socket operations without a timer operation per I/O operation.
//
// Beast's tcp_stream starts and cancels a timer wait around every read and write: a timer-queue
// insertion and removal, a posted completion for the cancelled wait, and often a timerfd
// reprogram, i.e. several of each per proxied request. Here a deadline is a time stored next to
// the socket; one timer per I/O thread (DeadlineSweep, an io_context service) fires at the
// earliest stored deadline and cancels the sockets whose deadline has passed. Arming or clearing
// a deadline is a clock read and a store; the timer is touched only when a deadline is earlier
// than the one it waits for.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/intrusive/list_hook.hpp>
#include <chrono>

namespace trl::http {

namespace asio = boost::asio;
class DeadlineSweep;

// A deadline for the operations on one socket. Arm it before an operation and Clear it when the
// operation completes: while armed and past, the socket's pending operations are cancelled
// (they complete with operation_aborted) and Expired() turns true. Like the socket, used only on
// its executor's thread; that executor's context must be a single-threaded io_context.
class Deadline {
 public:
  explicit Deadline(asio::ip::tcp::socket& socket);
  ~Deadline() = default;  // the hook unlinks itself
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;

  // Past `timeout` from now, or up to one clock tick (~4 ms) later: never earlier.
  void ExpiresAfter(std::chrono::steady_clock::duration timeout);
  void Clear() { at_ = std::chrono::steady_clock::time_point::max(); }
  // The last armed deadline passed and the socket's operations were cancelled for it (until the
  // next ExpiresAfter): tells a timeout from other cancellations.
  bool Expired() const { return expired_; }

 private:
  friend class DeadlineSweep;
  boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>>
      hook_;  // in one of the sweep's lists while it may be armed
  asio::ip::tcp::socket& socket_;
  DeadlineSweep& sweep_;
  std::chrono::steady_clock::time_point at_ = std::chrono::steady_clock::time_point::max();
  bool expired_ = false;
  bool far_ = false;  // in the sweep's list of far deadlines
};

}  // namespace trl::http
