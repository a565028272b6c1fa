// Waiting for budget instead of a 429 (docs/limits.md, "Waiting for budget"): a request its
// limits refuse, of a key or tenant with a `queue`, waits here until an admission takes it, its
// max_wait runs out, or its client leaves.
//
// Who tries when. The waiters of one tenant (a key without a tenant: of that key) form a group,
// one line per key. One waiter of the group at a time holds the turn: it alone asks the limiter
// again, when the refusal said the budget would have room (retry_after) or sooner when a
// settlement of the group on this instance gives budget back (Kick). Lines take the turn in
// round robin, each line first come first served: a key with many waiters gets no more turns
// than a key with one. A line refused by the key's own limit stands aside until its retry time
// and the turn goes on; a refusal by the tenant's limit keeps the turn where it is, so a large
// request is not passed over for ever by smaller ones. While its group has waiters blocked on
// a budget they all share, a new request of the group joins the queue behind them instead of
// taking the budget they wait for (ShouldQueueFirst).
//
// The bound holds across instances: every admission, a waiter's included, is the store's one
// atomic step. Order and max_queued are per instance.
//
// Threading: thread-safe. Each waiter's coroutine runs on its own executor (its connection's);
// the queue's state is under one mutex, never held across a store call or a suspension. When
// nothing waits, Kick and ShouldQueueFirst cost one atomic load.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "config/config.h"
#include "limits/limiter.h"

namespace trl {

// Who waits, and under which queues: the key's, the tenant's (either may be off; at least one
// is on). max_wait is the key's queue's if it has one, else the tenant's.
struct QueueTicket {
  std::string_view key;
  std::string_view tenant;  // "": none
  QueueConfig key_queue, tenant_queue;
  bool Enabled() const { return key_queue.Enabled() || tenant_queue.Enabled(); }
};

enum class WaitOutcome : uint8_t {
  kTried,     // an admission came back that is no refusal (admitted, too large, store error)
  kTimedOut,  // max_wait ran out: the last refusal stands
  kLeft,      // the client left (or the gateway is stopping): the last refusal stands
  kFull,      // max_queued already wait: refused at once
};
std::string_view WaitOutcomeLabel(WaitOutcome outcome);  // "admitted", "timeout", "left", "full"

struct WaitResult {
  WaitOutcome outcome = WaitOutcome::kFull;
  Admission admission;  // kTried: the last try's; else the last refusal (the 429 to answer)
  std::chrono::microseconds waited{0};
};

struct WaitQueueStats {
  uint64_t waiting = 0;  // a gauge
  uint64_t admitted = 0, timed_out = 0, left = 0, full = 0;
};

class WaitQueue {
 public:
  // Asks the limiter once more (the same scope and reservation), on the waiter's executor.
  using Attempt = std::function<asio::awaitable<Admission>()>;
  // Watches the client for as long as it waits: calls `gone` (on the waiter's executor) if it
  // leaves. The caller stops watching once Wait returns.
  using WatchClient = std::function<void(std::function<void()> gone)>;

  WaitQueue() = default;
  WaitQueue(const WaitQueue&) = delete;
  WaitQueue& operator=(const WaitQueue&) = delete;

  // Whether a request of `ticket` should join the queue without asking the limiter first: its
  // group has waiters held back by a budget they all share. `refusal` is then that budget's
  // last refusal, the 429 it answers if it times out.
  bool ShouldQueueFirst(const QueueTicket& ticket, Admission* refusal) const;
  // `refused`: the limiter's refusal of this request. Waits for a turn to try again, within
  // ticket's max_wait. Must be awaited on the executor the client's connection runs on.
  asio::awaitable<WaitResult> Wait(const QueueTicket& ticket, Admission refused,
                                   const Attempt& attempt, const WatchClient& watch);
  // A settlement of (key, tenant) gave budget back: the group's turn tries now.
  void Kick(std::string_view key, std::string_view tenant);

  WaitQueueStats Stats() const;

 private:
  using TimePoint = std::chrono::steady_clock::time_point;
  struct Group;
  struct Line;
  // One waiting request. Its coroutine waits on `timer`; the others wake it by posting a cancel
  // to the timer's executor, so the timer is only ever touched there.
  struct Waiter {
    explicit Waiter(const asio::any_io_executor& executor) : timer(executor) {}
    asio::steady_timer timer;
    bool gone = false;  // the client left; on the waiter's executor only
    // Under mu_:
    Group* group = nullptr;
    std::list<Line>::iterator line;  // in group->lines
    TimePoint deadline;
    bool has_turn = false;
    TimePoint turn_at = TimePoint::max();  // has_turn: when to try
  };
  using WaiterPtr = std::shared_ptr<Waiter>;
  struct Line {  // one key's waiters, first come first served
    std::string key;
    std::deque<WaiterPtr> waiters;
    TimePoint blocked_until{};  // refused by the key's own limit: stands aside until then
  };
  struct Group {  // a tenant's waiters (a key without a tenant: that key's)
    std::string name;
    std::list<Line> lines;             // in round-robin order
    std::list<Line>::iterator cursor;  // the line whose turn it is or is next
    WaiterPtr turn;                    // the waiter holding the turn; null when none waits
    size_t size = 0;
    uint64_t kicks = 0;  // Kicks so far: one during a try makes a refusal try again at once
    // The last refusal by a budget every waiter of the group shares (ShouldQueueFirst).
    std::optional<Admission> shared_refusal;
  };

  static std::string GroupName(std::string_view key, std::string_view tenant);
  // Each of these under mu_.
  bool Enter(const QueueTicket& ticket, const WaiterPtr& waiter, const Admission& refused,
             TimePoint now);
  void Leave(Waiter& waiter, TimePoint now, bool used_turn);
  void PassTurn(Group& group, TimePoint at);
  void Refused(Waiter& waiter, const Admission& refusal, TimePoint now, bool kicked);
  static void Wake(const WaiterPtr& waiter);

  mutable std::mutex mu_;
  std::unordered_map<std::string, Group> groups_;  // by GroupName
  std::atomic<uint64_t> waiting_{0};
  std::atomic<uint64_t> admitted_{0}, timed_out_{0}, left_{0}, full_{0};
};

}  // namespace trl
