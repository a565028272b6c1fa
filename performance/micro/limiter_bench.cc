// Limiter hot path: one Admit + Settle on MemoryStore with the three limits of a typical key
// ({tokens: 100000, per: 1m}, {requests: 600, per: 1m}, {tokens: 2000000, per: 1d, reset:
// calendar}; capacities raised so nothing is ever refused and every iteration does the full
// admit-then-settle work). The coroutines run on an io_context per benchmark thread, as on the
// gateway's I/O threads; the store never suspends, so this measures the limiter and store
// themselves (bucket lookups, arithmetic, locking), not scheduling.
//
// items_per_second is the aggregate throughput over all threads (Admit+Settle pairs per second).
//
//   BM_AdmitSettle/threads:1       one I/O thread
//   BM_AdmitSettle/threads:2       two threads on the same key: the same shard lock (worst case)
//   BM_AdmitSettleDistinctKeys/... two threads on different keys: usually different shards
//   BM_AdmitOnly, BM_CountText     components alone
#include <benchmark/benchmark.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <string>
#include <vector>

#include "common/clock.h"
#include "limits/limiter.h"
#include "limits/memory_store.h"
#include "limits/token_counter.h"

namespace trl {
namespace {

using std::chrono::milliseconds;

const std::vector<LimitConfig>& KeyLimits() {
  static const std::vector<LimitConfig> limits = {
      {LimitKind::kTokens, 1'000'000'000'000, milliseconds(60'000), false, ""},
      {LimitKind::kRequests, 1'000'000'000'000, milliseconds(60'000), false, ""},
      {LimitKind::kTokens, 1'000'000'000'000, milliseconds(86'400'000), true, ""},
  };
  return limits;
}

struct Fixture {
  MemoryStore store;
  Limiter limiter{store, SystemClock::Instance()};
};

Fixture& Shared() {
  static Fixture fixture;
  return fixture;
}

// Runs `body` (a coroutine over the benchmark loop) to completion on this thread.
template <typename Body>
void RunOnIoContext(Body body) {
  boost::asio::io_context io;
  boost::asio::co_spawn(io, body(), boost::asio::detached);
  io.run();
}

void AdmitSettleLoop(benchmark::State& state, std::string key) {
  Limiter& limiter = Shared().limiter;
  RequestScope scope{key, "", "llama2-7b", KeyLimits(), {}, "req"};
  int64_t refused = 0;
  RunOnIoContext([&]() -> asio::awaitable<void> {
    for (auto _ : state) {
      Admission a = co_await limiter.Admit(scope, {1200});
      if (a.outcome != Admission::Outcome::kAdmitted) ++refused;
      limiter.SettleInBackground(co_await asio::this_coro::executor, std::move(a.reservation),
                                 {700}, SettlementSource::kUsage);
    }
  });
  state.SetItemsProcessed(state.iterations());
  if (refused) state.SkipWithError("refused: the benchmark must not run out of budget");
}

void BM_AdmitSettle(benchmark::State& state) { AdmitSettleLoop(state, "team-a"); }
BENCHMARK(BM_AdmitSettle)->Threads(1)->Threads(2)->UseRealTime();

void BM_AdmitSettleDistinctKeys(benchmark::State& state) {
  AdmitSettleLoop(state, "team-" + std::to_string(state.thread_index()));
}
BENCHMARK(BM_AdmitSettleDistinctKeys)->Threads(2)->UseRealTime();

void BM_AdmitOnly(benchmark::State& state) {
  Limiter& limiter = Shared().limiter;
  std::string key = "admit-only-" + std::to_string(state.thread_index());
  RequestScope scope{key, "", "llama2-7b", KeyLimits(), {}, "req"};
  RunOnIoContext([&]() -> asio::awaitable<void> {
    for (auto _ : state) {
      Admission a = co_await limiter.Admit(scope, {1});
      benchmark::DoNotOptimize(a.outcome);
    }
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AdmitOnly)->Threads(1);

void BM_CountText(benchmark::State& state) {
  ApproxTokenCounter counter;
  std::string text;
  while (text.size() < 4096) {
    text += "Rate limits protect the backend: 42 requests, 1.5k tokens; see docs/limits.md. ";
  }
  for (auto _ : state) benchmark::DoNotOptimize(counter.CountText(text));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(text.size()));
}
BENCHMARK(BM_CountText);

}  // namespace
}  // namespace trl
