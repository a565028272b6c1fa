#include "http/deadline.h"

#include <algorithm>
#include <ctime>
#include <optional>

#include <boost/asio/execution_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/intrusive/list.hpp>

namespace trl::http {

using Clock = std::chrono::steady_clock;

// One per io_context: the deadlines of its sockets and one timer at the earliest of them.
class DeadlineSweep final : public asio::execution_context::service {
 public:
  using key_type = DeadlineSweep;
  static asio::execution_context::id id;

  explicit DeadlineSweep(asio::execution_context& context)
      : asio::execution_context::service(context) {}

  // `deadline` was just armed.
  void Armed(Deadline& deadline) {
    if (!deadline.hook_.is_linked()) deadlines_.push_back(deadline);
    if (!timer_) timer_.emplace(deadline.socket_.get_executor());
    if (deadline.at_ < next_) Schedule(deadline.at_);
  }

 private:
  using List = boost::intrusive::list<
      Deadline,
      boost::intrusive::member_hook<Deadline, decltype(Deadline::hook_), &Deadline::hook_>,
      boost::intrusive::constant_time_size<false>>;

  void shutdown() override { timer_.reset(); }

  void Schedule(Clock::time_point at) {
    next_ = at;
    timer_->expires_at(at);  // cancels the wait for a later deadline, if any
    timer_->async_wait([this](boost::system::error_code ec) {
      if (ec) return;  // replaced by a wait for an earlier deadline
      next_ = Clock::time_point::max();
      Sweep();
    });
  }

  // Cancels what is past; forgets the cleared deadlines; waits for the earliest one left.
  void Sweep() {
    const auto now = Clock::now();
    auto earliest = Clock::time_point::max();
    for (auto it = deadlines_.begin(); it != deadlines_.end();) {
      Deadline& d = *it;
      if (d.at_ == Clock::time_point::max()) {
        it = deadlines_.erase(it);
        continue;
      }
      if (d.at_ <= now) {
        d.Clear();
        d.expired_ = true;
        boost::system::error_code ignored;
        d.socket_.cancel(ignored);
        it = deadlines_.erase(it);
        continue;
      }
      earliest = std::min(earliest, d.at_);
      ++it;
    }
    if (earliest != Clock::time_point::max()) Schedule(earliest);
  }

  List deadlines_;
  std::optional<asio::steady_timer> timer_;
  Clock::time_point next_ = Clock::time_point::max();  // when the timer fires
};

asio::execution_context::id DeadlineSweep::id;

Deadline::Deadline(asio::ip::tcp::socket& socket)
    : socket_(socket),
      sweep_(asio::use_service<DeadlineSweep>(
          asio::query(socket.get_executor(), asio::execution::context))) {}

namespace {

// A deadline is armed around every socket operation, ~7 times per proxied request, and its
// timeouts are seconds: the kernel's coarse clock (the last tick's time, read without the TSC:
// ~3 ns instead of ~22) is exact enough. It is the same clock as steady_clock's
// (CLOCK_MONOTONIC) up to one tick behind, so one tick is added: a deadline never comes early,
// and at most a tick (~4 ms) late.
Clock::time_point CoarseNowPlusTick() {
  static const Clock::duration tick = [] {
    timespec res{};
    clock_getres(CLOCK_MONOTONIC_COARSE, &res);
    return std::chrono::seconds(res.tv_sec) + std::chrono::nanoseconds(res.tv_nsec);
  }();
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  return Clock::time_point(std::chrono::duration_cast<Clock::duration>(
             std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec))) +
         tick;
}

}  // namespace

void Deadline::ExpiresAfter(Clock::duration timeout) {
  at_ = CoarseNowPlusTick() + timeout;
  expired_ = false;
  sweep_.Armed(*this);
}

}  // namespace trl::http
