#include "limits/wait_queue.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace trl {

namespace {

using SteadyClock = std::chrono::steady_clock;

// Whether a refusal holds back every waiter of the group alike: a budget of the tenant (of the
// key, in a group of one key) for every model and user. Any other is the line's own.
bool Shared(const Admission& refusal, bool tenant_group) {
  return !refusal.refused_per_user && !refusal.refused_model_specific &&
         (!tenant_group || refusal.refused_scope == ScopeKind::kTenant);
}

int64_t WholeMillis(std::chrono::steady_clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

std::chrono::milliseconds RetryAfter(const Admission& refusal) {
  return std::chrono::milliseconds(std::max<int64_t>(1, refusal.retry_after_ms));
}

}  // namespace

std::string_view WaitOutcomeLabel(WaitOutcome outcome) {
  switch (outcome) {
    case WaitOutcome::kTried:
      return "admitted";
    case WaitOutcome::kTimedOut:
      return "timeout";
    case WaitOutcome::kLeft:
      return "left";
    case WaitOutcome::kFull:
      return "full";
  }
  return "full";
}

std::string WaitQueue::GroupName(std::string_view key, std::string_view tenant) {
  std::string name(tenant.empty() ? "k" : "t");
  name.append(tenant.empty() ? key : tenant);
  return name;
}

bool WaitQueue::ShouldQueueFirst(const QueueTicket& ticket, Admission* refusal) const {
  if (!ticket.Enabled() || waiting_.load(std::memory_order_acquire) == 0) return false;
  const std::lock_guard lock(mu_);
  auto it = groups_.find(GroupName(ticket.key, ticket.tenant));
  if (it == groups_.end() || !it->second.shared_refusal) return false;
  *refusal = *it->second.shared_refusal;
  return true;
}

asio::awaitable<WaitResult> WaitQueue::Wait(const QueueTicket& ticket, Admission refused,
                                            const Attempt& attempt, const WatchClient& watch) {
  const TimePoint start = SteadyClock::now();
  auto waiter = std::make_shared<Waiter>(co_await asio::this_coro::executor);
  waiter->deadline = start + (ticket.key_queue.Enabled() ? ticket.key_queue.max_wait
                                                         : ticket.tenant_queue.max_wait);
  WaitResult result;
  result.admission = std::move(refused);
  TimePoint refused_at = start;  // when result.admission was told, for its retry_after
  {
    const std::lock_guard lock(mu_);
    if (!Enter(ticket, waiter, result.admission, start)) {
      full_.fetch_add(1, std::memory_order_relaxed);
      co_return result;
    }
  }
  watch([waiter] {
    waiter->gone = true;
    waiter->timer.cancel();
  });
  for (;;) {
    bool try_now = false;
    uint64_t kicks = 0;
    {
      const std::lock_guard lock(mu_);
      const TimePoint now = SteadyClock::now();
      const bool gone = waiter->gone;
      if (gone || now >= waiter->deadline) {
        Leave(*waiter, now, false);
        result.admission.retry_after_ms =
            std::max<int64_t>(1, result.admission.retry_after_ms - WholeMillis(now - refused_at));
        result.outcome = gone ? WaitOutcome::kLeft : WaitOutcome::kTimedOut;
        (gone ? left_ : timed_out_).fetch_add(1, std::memory_order_relaxed);
        break;
      }
      try_now = waiter->has_turn && waiter->turn_at <= now;
      if (try_now) {
        kicks = waiter->group->kicks;
        waiter->turn_at = TimePoint::max();  // trying: a Kick now counts in `kicks`
      } else {
        waiter->timer.expires_at(std::min(waiter->deadline, waiter->turn_at));
      }
    }
    if (!try_now) {
      boost::system::error_code ignored;
      co_await waiter->timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
      continue;
    }
    Admission admission = co_await attempt();
    const std::lock_guard lock(mu_);
    const TimePoint now = SteadyClock::now();
    if (admission.outcome == Admission::Outcome::kRefused) {
      Refused(*waiter, admission, now, waiter->group->kicks != kicks);
      result.admission = std::move(admission);
      refused_at = now;
      continue;
    }
    Leave(*waiter, now, true);
    result.outcome = WaitOutcome::kTried;
    result.admission = std::move(admission);
    admitted_.fetch_add(1, std::memory_order_relaxed);
    break;
  }
  result.waited = std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - start);
  co_return result;
}

bool WaitQueue::Enter(const QueueTicket& ticket, const WaiterPtr& waiter, const Admission& refused,
                      TimePoint now) {
  std::string name = GroupName(ticket.key, ticket.tenant);
  auto [it, created] = groups_.try_emplace(name);
  Group& group = it->second;
  if (created) {
    group.name = std::move(name);
    group.cursor = group.lines.end();
  }
  auto line = std::ranges::find(group.lines, ticket.key, &Line::key);
  const bool key_full = ticket.key_queue.Enabled() && line != group.lines.end() &&
                        line->waiters.size() >= ticket.key_queue.max_queued;
  const bool tenant_full =
      ticket.tenant_queue.Enabled() && group.size >= ticket.tenant_queue.max_queued;
  if (key_full || tenant_full) {
    if (created) groups_.erase(it);
    return false;
  }
  if (line == group.lines.end()) {
    line = group.lines.insert(group.lines.end(), Line{std::string(ticket.key), {}, {}});
    if (group.cursor == group.lines.end()) group.cursor = line;
  }
  line->waiters.push_back(waiter);
  ++group.size;
  waiting_.fetch_add(1, std::memory_order_release);
  waiter->group = &group;
  waiter->line = line;
  if (Shared(refused, !ticket.tenant.empty())) group.shared_refusal = refused;
  // A turn parked on a line that stands aside (its key's own limit) waits for nobody else.
  const bool parked = group.turn && group.turn->turn_at != TimePoint::max() &&
                      group.turn->line->blocked_until > now;
  if (!group.turn || parked) PassTurn(group, now + RetryAfter(refused));
  return true;
}

// The waiter leaves the group: admitted (`used_turn`: the line has had its turn), timed out or
// gone. A turn it held passes on, not sooner than it was due.
void WaitQueue::Leave(Waiter& waiter, TimePoint now, bool used_turn) {
  Group& group = *waiter.group;
  const auto line = waiter.line;
  std::erase_if(line->waiters, [&](const WaiterPtr& w) { return w.get() == &waiter; });
  --group.size;
  waiting_.fetch_sub(1, std::memory_order_release);
  const bool had_turn = waiter.has_turn;
  const TimePoint due = used_turn ? now : std::max(now, waiter.turn_at);
  waiter.has_turn = false;
  waiter.group = nullptr;
  // Admitted: the budget had room; whether it still has, the next try tells.
  if (used_turn) group.shared_refusal.reset();
  if (line->waiters.empty() || used_turn) {
    const auto next = std::next(line);
    if (group.cursor == line) group.cursor = next;
    if (line->waiters.empty()) group.lines.erase(line);
  }
  if (group.lines.empty()) {
    groups_.erase(groups_.find(group.name));  // (not by the name: erasing destroys it)
    return;
  }
  if (had_turn) PassTurn(group, due);
}

// Gives the group's turn to the head of the next line in round robin that is not standing
// aside at `at` (if every line is, to the one free soonest), to try at `at` or then.
void WaitQueue::PassTurn(Group& group, TimePoint at) {
  if (group.turn) {  // the waiter that held it, if it still waits, waits without it
    group.turn->has_turn = false;
    group.turn->turn_at = TimePoint::max();
  }
  if (group.cursor == group.lines.end()) group.cursor = group.lines.begin();
  auto it = group.cursor;
  auto best = group.cursor;
  TimePoint best_at = TimePoint::max();
  for (size_t i = 0; i < group.lines.size(); ++i) {
    if (it->blocked_until <= at) {
      best = it;
      best_at = at;
      break;
    }
    if (it->blocked_until < best_at) {
      best = it;
      best_at = it->blocked_until;
    }
    if (++it == group.lines.end()) it = group.lines.begin();
  }
  group.cursor = best;
  group.turn = best->waiters.front();
  group.turn->has_turn = true;
  group.turn->turn_at = best_at;
  Wake(group.turn);
}

// The turn's try was refused. By a budget the whole group shares: the turn stays, and tries
// again when that budget will have room. By the line's own: the line stands aside until then,
// and the turn goes on. A Kick during the try (`kicked`): budget came back meanwhile, try at once.
void WaitQueue::Refused(Waiter& waiter, const Admission& refusal, TimePoint now, bool kicked) {
  Group& group = *waiter.group;
  const TimePoint retry_at = kicked ? now : now + RetryAfter(refusal);
  if (Shared(refusal, group.name.front() == 't')) {
    group.shared_refusal = refusal;
    waiter.turn_at = retry_at;
    return;
  }
  waiter.line->blocked_until = retry_at;
  waiter.has_turn = false;
  waiter.turn_at = TimePoint::max();
  group.cursor = std::next(waiter.line);
  PassTurn(group, now);
}

void WaitQueue::Kick(std::string_view key, std::string_view tenant) {
  if (waiting_.load(std::memory_order_acquire) == 0) return;
  const std::lock_guard lock(mu_);
  auto it = groups_.find(GroupName(key, tenant));
  if (it == groups_.end()) return;
  Group& group = it->second;
  ++group.kicks;
  for (Line& line : group.lines) line.blocked_until = {};
  const TimePoint now = SteadyClock::now();
  if (group.turn && group.turn->turn_at != TimePoint::max() && group.turn->turn_at > now) {
    group.turn->turn_at = now;
    Wake(group.turn);
  }
}

void WaitQueue::Wake(const WaiterPtr& waiter) {
  asio::post(waiter->timer.get_executor(), [waiter] { waiter->timer.cancel(); });
}

WaitQueueStats WaitQueue::Stats() const {
  return {waiting_.load(std::memory_order_relaxed), admitted_.load(std::memory_order_relaxed),
          timed_out_.load(std::memory_order_relaxed), left_.load(std::memory_order_relaxed),
          full_.load(std::memory_order_relaxed)};
}

}  // namespace trl
