#include "http/deadline.h"

#include <algorithm>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/intrusive/list.hpp>
#include <ctime>
#include <optional>

namespace trl::http {

using Clock = std::chrono::steady_clock;

// One per io_context: the deadlines of its sockets and one timer at the earliest of them.
//
// A sweep walks the deadlines to find the passed ones and the next, so its cost grows with the
// deadlines armed. Most of them are far off on a server with many idle connections (each waits
// for its next request under the idle timeout), while the sweeps come as often as the nearest
// deadlines pass (about every second: the idle-buffer hold of busy connections). So deadlines
// more than kFar away wait in a second list, walked only once per kFar; every deadline in it is
// at or past that walk (far_walk_), so none expires late, and one armed again nearer comes back.
class DeadlineSweep final : public asio::execution_context::service {
 public:
  using key_type = DeadlineSweep;
  static asio::execution_context::id id;

  explicit DeadlineSweep(asio::execution_context& context)
      : asio::execution_context::service(context) {}

  // `deadline` was just armed.
  void Armed(Deadline& deadline) {
    if (deadline.far_ && deadline.at_ < far_walk_) deadline.hook_.unlink();
    if (!deadline.hook_.is_linked()) {
      near_.push_back(deadline);
      deadline.far_ = false;
    }
    if (!timer_) timer_.emplace(deadline.socket_.get_executor());
    if (deadline.at_ < next_) Schedule(deadline.at_);
  }

 private:
  static constexpr Clock::duration kFar = std::chrono::seconds(10);
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
    auto earliest = Walk(near_, now);
    if (now >= far_walk_) {
      far_walk_ = now + kFar;
      earliest = std::min(earliest, Walk(far_, now));
    }
    if (!far_.empty()) earliest = std::min(earliest, far_walk_);
    if (earliest != Clock::time_point::max()) Schedule(earliest);
  }

  // Walks `list`: cancels the sockets past their deadline, drops the cleared deadlines, puts
  // each left where it belongs (near_ or far_) and returns the earliest left in near_.
  Clock::time_point Walk(List& list, Clock::time_point now) {
    List walked;
    walked.swap(list);
    auto earliest = Clock::time_point::max();
    while (!walked.empty()) {
      Deadline& d = walked.front();
      walked.pop_front();
      if (d.at_ == Clock::time_point::max()) continue;
      if (d.at_ <= now) {
        d.Clear();
        d.expired_ = true;
        boost::system::error_code ignored;
        d.socket_.cancel(ignored);
        continue;
      }
      // far_walk_ is at most kFar ahead, so a deadline past now + kFar is past the next walk.
      d.far_ = d.at_ > now + kFar;
      if (d.far_) {
        far_.push_back(d);
      } else {
        near_.push_back(d);
        earliest = std::min(earliest, d.at_);
      }
    }
    return earliest;
  }

  List near_;
  List far_;
  std::optional<asio::steady_timer> timer_;
  Clock::time_point next_ = Clock::time_point::max();      // when the timer fires
  Clock::time_point far_walk_ = Clock::time_point::min();  // when far_ is walked next
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
  static const Clock::duration kTick = [] {
    timespec res{};
    clock_getres(CLOCK_MONOTONIC_COARSE, &res);
    return std::chrono::seconds(res.tv_sec) + std::chrono::nanoseconds(res.tv_nsec);
  }();
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  return Clock::time_point(std::chrono::duration_cast<Clock::duration>(
             std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec))) +
         kTick;
}

}  // namespace

void Deadline::ExpiresAfter(Clock::duration timeout) {
  at_ = CoarseNowPlusTick() + timeout;
  expired_ = false;
  sweep_.Armed(*this);
}

}  // namespace trl::http
