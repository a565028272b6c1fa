#include "limits/memory_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "fakes/bucket_builders.h"
#include "fakes/micros.h"
#include "fakes/run_awaitable.h"
#include "fakes/temp_dir.h"

namespace trl {
namespace {

using testing::kDay;
using testing::kMinute;
using testing::kSecond;
using testing::kT0;
constexpr int64_t kTtl = 600 * kSecond;

using testing::Concurrent;
using testing::Requests;
using testing::TempDir;
using testing::Tokens;

AdmitResult Admit(MemoryStore& store, const std::vector<Charge>& charges, int64_t now,
                  uint64_t id = 1) {
  return store.AdmitNow({"k", charges, "req", now, kTtl, id, true});
}

BucketStates Read(MemoryStore& store, const std::vector<BucketSpec>& specs, int64_t now) {
  ReadResult r = store.ReadNow({"k", specs, now});
  EXPECT_EQ(r.status, StoreStatus::kOk);
  return r.states;
}

TEST(MemoryStoreTest, AdmitsAllOrNothing) {
  MemoryStore store;
  std::vector<Charge> charges = {{Tokens("a", 100), 30}, {Requests("a", 2), 1}};
  AdmitResult r = Admit(store, charges, kT0);
  ASSERT_TRUE(r.admitted);
  EXPECT_EQ(r.states[0].level.level, 70);
  EXPECT_EQ(r.states[1].level.level, 1);

  std::vector<Charge> too_many = {{Tokens("a", 100), 80}, {Requests("a", 2), 1}};
  r = Admit(store, too_many, kT0);
  EXPECT_FALSE(r.admitted);
  EXPECT_FALSE(r.states[0].fits);
  EXPECT_TRUE(r.states[1].fits);
  EXPECT_EQ(r.states[0].level.level, 70);  // current, uncharged
  BucketStates now = Read(store, {Tokens("a", 100), Requests("a", 2)}, kT0);
  EXPECT_EQ(now[0].level.level, 70);
  EXPECT_EQ(now[1].level.level, 1);  // the requests budget that fitted was not charged
}

TEST(MemoryStoreTest, OwnersModelsAndPeriodsAreSeparateBuckets) {
  MemoryStore store;
  Admit(store, {{Tokens("a", 100), 10}}, kT0);
  Admit(store, {{Tokens("a", 100, kMinute, false, "m1"), 20}}, kT0);
  Admit(store, {{Tokens("a", 100, kDay, true), 30}}, kT0);
  Admit(store, {{Tokens("b", 100), 40}}, kT0);
  BucketSpec tenant = Tokens("a", 100);
  tenant.ref.scope = ScopeKind::kTenant;
  Admit(store, {{tenant, 50}}, kT0);
  BucketStates s = Read(store,
                        {Tokens("a", 100), Tokens("a", 100, kMinute, false, "m1"),
                         Tokens("a", 100, kDay, true), Tokens("b", 100), tenant},
                        kT0);
  EXPECT_EQ(s[0].level.level, 90);
  EXPECT_EQ(s[1].level.level, 80);
  EXPECT_EQ(s[2].level.level, 70);
  EXPECT_EQ(s[3].level.level, 60);
  EXPECT_EQ(s[4].level.level, 50);
  EXPECT_EQ(store.BucketCount(), 5u);
}

TEST(MemoryStoreTest, UnknownBucketsReadFull) {
  MemoryStore store;
  BucketStates s = Read(store, {Tokens("x", 5), Concurrent("x", 3)}, kT0);
  EXPECT_EQ(s[0].level.level, 5);
  EXPECT_EQ(s[1].in_use, 0);
  EXPECT_EQ(store.BucketCount(), 0u);
}

TEST(MemoryStoreTest, ZeroChargeIsRefusedWhileInDebt) {
  MemoryStore store;
  ASSERT_TRUE(Admit(store, {{Tokens("a", 100), 10}}, kT0).admitted);
  std::vector<Settlement> s = {{Tokens("a", 100), 140, 0}};  // cost 150 for a reservation of 10
  store.SettleNow({"k", s, kT0});
  AdmitResult r = Admit(store, {{Tokens("a", 100), 0}}, kT0);
  EXPECT_FALSE(r.admitted);
  EXPECT_EQ(r.states[0].level.level, -50);
}

TEST(MemoryStoreTest, SettleRefundsNeverAboveCapacity) {
  MemoryStore store;
  ASSERT_TRUE(Admit(store, {{Tokens("a", 100), 50}}, kT0).admitted);
  std::vector<Settlement> s = {{Tokens("a", 100), -20, 0}};
  store.SettleNow({"k", s, kT0});
  EXPECT_EQ(Read(store, {Tokens("a", 100)}, kT0)[0].level.level, 70);
  std::vector<Settlement> big = {{Tokens("a", 100), -500, 0}};
  store.SettleNow({"k", big, kT0});
  EXPECT_EQ(Read(store, {Tokens("a", 100)}, kT0)[0].level.level, 100);
}

TEST(MemoryStoreTest, CalendarRefundForAnEndedWindowIsDropped) {
  MemoryStore store;
  const int64_t midnight = 19'676 * kDay;
  BucketSpec daily = Tokens("a", 1000, kDay, true);
  AdmitResult r = Admit(store, {{daily, 600}}, midnight - kSecond);
  ASSERT_TRUE(r.admitted);
  int64_t window = r.states[0].level.stamp;
  EXPECT_EQ(window, midnight - kDay);
  ASSERT_TRUE(Admit(store, {{daily, 300}}, midnight + kSecond).admitted);  // new window: 700
  std::vector<Settlement> refund = {{daily, -500, window}};
  store.SettleNow({"k", refund, midnight + 2 * kSecond});
  EXPECT_EQ(Read(store, {daily}, midnight + 2 * kSecond)[0].level.level, 700);
  std::vector<Settlement> extra = {{daily, 100, window}};  // charges the current window
  store.SettleNow({"k", extra, midnight + 2 * kSecond});
  EXPECT_EQ(Read(store, {daily}, midnight + 2 * kSecond)[0].level.level, 600);
}

TEST(MemoryStoreTest, ConcurrencyLeasesAreTakenReleasedAndExpire) {
  MemoryStore store;
  std::vector<Charge> c = {{Concurrent("a", 2), 1}};
  AdmitResult first = Admit(store, c, kT0, 1);
  AdmitResult second = Admit(store, c, kT0, 2);
  ASSERT_TRUE(first.admitted);
  ASSERT_TRUE(second.admitted);
  EXPECT_EQ(second.states[0].in_use, 2);
  AdmitResult third = Admit(store, c, kT0, 3);
  EXPECT_FALSE(third.admitted);
  EXPECT_EQ(third.states[0].in_use, 2);

  std::vector<Settlement> release = {{Concurrent("a", 2), 0, 0}};
  store.SettleNow({"k", release, kT0, 1});  // the lease is the admission's id
  EXPECT_EQ(Read(store, {Concurrent("a", 2)}, kT0)[0].in_use, 1);
  store.SettleNow({"k", release, kT0, 1});  // releasing twice changes nothing
  EXPECT_EQ(Read(store, {Concurrent("a", 2)}, kT0)[0].in_use, 1);

  ASSERT_TRUE(Admit(store, c, kT0 + kSecond, 4).admitted);  // expires at kT0 + 1 s + ttl
  EXPECT_FALSE(Admit(store, c, kT0 + kTtl - 1, 5).admitted);
  // `second` (taken at kT0) lapses at kT0 + ttl: its slot comes back without a settlement.
  EXPECT_EQ(Read(store, {Concurrent("a", 2)}, kT0 + kTtl)[0].in_use, 1);
  EXPECT_TRUE(Admit(store, c, kT0 + kTtl, 6).admitted);
}

TEST(MemoryStoreTest, ResetRefillsButKeepsLeases) {
  MemoryStore store;
  std::vector<Charge> c = {{Tokens("a", 100), 60}, {Concurrent("a", 1), 1}};
  ASSERT_TRUE(Admit(store, c, kT0).admitted);
  std::vector<BucketSpec> specs = {Tokens("a", 100), Concurrent("a", 1)};
  EXPECT_EQ(store.ResetNow({"k", specs, kT0}), StoreStatus::kOk);
  BucketStates s = Read(store, specs, kT0);
  EXPECT_EQ(s[0].level.level, 100);
  EXPECT_EQ(s[1].in_use, 1);
}

// The Store interface the Limiter uses: each operation has completed when it returns.
TEST(MemoryStoreTest, StoreOperationsMatchTheSynchronousOnes) {
  MemoryStore store;
  Store& as_store = store;
  EXPECT_EQ(as_store.Synchronous(), &store);
  std::vector<Charge> c = {{Tokens("a", 100), 25}};
  AdmitResult r = RunAwaitable(as_store.Admit({"k", c, "req", kT0, kTtl, 1, true}));
  EXPECT_TRUE(r.admitted);
  std::vector<Settlement> s = {{Tokens("a", 100), -5, 0}};
  struct Completion final : SettleCompletion {
    void Settled(StoreStatus s) override { statuses.push_back(s); }
    std::vector<StoreStatus> statuses;
  } done;
  boost::asio::io_context io;  // never run: the settlement does not wait for it
  as_store.SettleDetached({"k", s, kT0}, io.get_executor(), done);
  EXPECT_EQ(done.statuses, std::vector<StoreStatus>{StoreStatus::kOk});
  std::vector<BucketSpec> specs = {Tokens("a", 100)};
  EXPECT_EQ(RunAwaitable(as_store.Read({"k", specs, kT0})).states[0].level.level, 80);
  EXPECT_EQ(RunAwaitable(as_store.Reset({"k", specs, kT0})), StoreStatus::kOk);
  EXPECT_EQ(RunAwaitable(as_store.Read({"k", specs, kT0})).states[0].level.level, 100);
}

TEST(MemoryStoreTest, MemoryOnlyFlushSucceeds) {
  MemoryStore store;
  EXPECT_TRUE(store.Flush());
}

TEST(MemoryStoreTest, LevelsSurviveARestart) {
  TempDir dir;
  const int64_t t = 19'676 * kDay + 10 * 3600 * kSecond + 123'456;  // 10:00 UTC
  BucketSpec daily = Tokens("team-a", 2'000'000, kDay, true);
  BucketSpec rolling = Tokens("team-a", 100, kMinute, false, "llama2-13b");
  BucketSpec tenant{{ScopeKind::kTenant, "acme", "", LimitKind::kRequests, kMinute, false}, 600};
  std::vector<BucketSpec> specs = {daily, rolling, tenant, Concurrent("team-a", 4)};
  BucketStates before;
  {
    std::string error;
    std::unique_ptr<MemoryStore> store = MemoryStore::Open(dir.path(), &error);
    ASSERT_TRUE(store) << error;
    std::vector<Charge> c = {{daily, 1'500'000}, {rolling, 37}, {tenant, 1}, {specs[3], 1}};
    ASSERT_TRUE(store->AdmitNow({"acme", c, "r1", t, kTtl, 1, true}).admitted);
    // 12.345678 s later the rolling bucket has refilled a fraction of a token: that must survive.
    std::vector<Settlement> s = {{rolling, 3, 0}};
    store->SettleNow({"acme", s, t + 12'345'678});
    before = store->ReadNow({"acme", specs, t + 20 * kSecond}).states;
    ASSERT_TRUE(store->Flush(&error)) << error;
    EXPECT_TRUE(store->Flush(&error)) << error;  // nothing changed: nothing to write
  }
  EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(dir.path()) / "limits.db"));
  std::string error;
  std::unique_ptr<MemoryStore> reopened = MemoryStore::Open(dir.path(), &error);
  ASSERT_TRUE(reopened) << error;
  EXPECT_EQ(reopened->BucketCount(), 3u);  // leases are not saved
  BucketStates after = reopened->ReadNow({"acme", specs, t + 20 * kSecond}).states;
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(after[i].level, before[i].level) << i;
  EXPECT_EQ(after[0].level.level, 500'000);
  EXPECT_EQ(after[3].in_use, 0);
  // The daily budget is still spent after the restart, and starts afresh at midnight.
  EXPECT_EQ(reopened->ReadNow({"acme", specs, 19'677 * kDay}).states[0].level.level, 2'000'000);
}

TEST(MemoryStoreTest, LaterFlushesWriteOnlyWhatChanged) {
  TempDir dir;
  std::string error;
  BucketSpec a = Tokens("a", 100);
  BucketSpec b = Tokens("b", 100);
  {
    std::unique_ptr<MemoryStore> store = MemoryStore::Open(dir.path(), &error);
    ASSERT_TRUE(store) << error;
    ASSERT_TRUE(Admit(*store, {{a, 10}}, kT0).admitted);
    ASSERT_TRUE(store->Flush(&error));
    ASSERT_TRUE(Admit(*store, {{b, 20}}, kT0).admitted);
    ASSERT_TRUE(Admit(*store, {{a, 5}}, kT0).admitted);
    ASSERT_TRUE(store->Flush(&error));
    ASSERT_TRUE(Admit(*store, {{a, 1}}, kT0).admitted);  // not flushed: lost, as after a crash
  }
  std::unique_ptr<MemoryStore> reopened = MemoryStore::Open(dir.path(), &error);
  ASSERT_TRUE(reopened) << error;
  BucketStates s = Read(*reopened, {a, b}, kT0);
  EXPECT_EQ(s[0].level.level, 85);
  EXPECT_EQ(s[1].level.level, 80);
}

std::unique_ptr<MemoryStore> OpenJournaled(const TempDir& dir) {
  std::string error;
  std::unique_ptr<MemoryStore> store = MemoryStore::Open(dir.path(), &error, FsyncPolicy::kNo);
  EXPECT_TRUE(store) << error;
  return store;
}

std::vector<std::string> Segments(const TempDir& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path() + "/journal")) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// A crash: the store is destroyed without a last Flush; what was committed to the journal
// comes back, what was not is lost.
TEST(MemoryStoreTest, WhatTheJournalCommittedSurvivesACrash) {
  TempDir dir;
  BucketSpec a = Tokens("a", 100);
  BucketSpec t{{ScopeKind::kTenant, "acme", "m", LimitKind::kRequests, kMinute, true}, 10};
  std::string error;
  {
    std::unique_ptr<MemoryStore> store = OpenJournaled(dir);
    ASSERT_TRUE(store);
    ASSERT_TRUE(Admit(*store, {{a, 30}}, kT0).admitted);
    ASSERT_TRUE(store->Flush(&error)) << error;  // a checkpoint at 70
    ASSERT_TRUE(Admit(*store, {{a, 20}, {t, 1}}, kT0).admitted);
    std::vector<Settlement> settle = {{a, -5, 0}};  // 5 tokens given back: 55
    store->SettleNow({"k", settle, kT0, 1});
    ASSERT_TRUE(store->CommitJournal(&error)) << error;
    ASSERT_TRUE(Admit(*store, {{a, 1}}, kT0).admitted);  // never committed: lost
  }
  std::unique_ptr<MemoryStore> reopened = OpenJournaled(dir);
  ASSERT_TRUE(reopened);
  BucketStates s = Read(*reopened, {a, t}, kT0);
  EXPECT_EQ(s[0].level.level, 55);
  EXPECT_EQ(s[1].level.level, 9);
  // Opening replayed the journal, saved the result and dropped the old segments.
  EXPECT_EQ(Segments(dir), std::vector<std::string>{"limits-4.journal"});
  std::unique_ptr<MemoryStore> plain = MemoryStore::Open(dir.path(), &error);
  ASSERT_TRUE(plain) << error;
  EXPECT_EQ(Read(*plain, {a}, kT0)[0].level.level, 55);
}

// A crash after a checkpoint was saved but before its segments were deleted: they are older
// than the checkpoint and must not be replayed over it.
TEST(MemoryStoreTest, SegmentsACheckpointIncludesAreNotReplayed) {
  TempDir dir;
  BucketSpec a = Tokens("a", 100);
  std::string error;
  std::string kept;
  {
    std::unique_ptr<MemoryStore> store = OpenJournaled(dir);
    ASSERT_TRUE(store);
    ASSERT_TRUE(Admit(*store, {{a, 10}}, kT0).admitted);
    ASSERT_TRUE(store->CommitJournal(&error)) << error;  // segment 1 says 90
    kept = dir.path() + "/journal/" + Segments(dir).back();
    std::filesystem::copy_file(kept, kept + ".copy");
    ASSERT_TRUE(Admit(*store, {{a, 30}}, kT0).admitted);
    ASSERT_TRUE(store->Flush(&error)) << error;  // 60 saved, segment 1 deleted
    ASSERT_FALSE(std::filesystem::exists(kept));
  }
  std::filesystem::rename(kept + ".copy", kept);
  std::unique_ptr<MemoryStore> reopened = OpenJournaled(dir);
  ASSERT_TRUE(reopened);
  EXPECT_EQ(Read(*reopened, {a}, kT0)[0].level.level, 60);
}

TEST(MemoryStoreTest, AnIdleStoreWritesNoSegments) {
  TempDir dir;
  std::unique_ptr<MemoryStore> store = OpenJournaled(dir);
  ASSERT_TRUE(store);
  const std::vector<std::string> before = Segments(dir);
  std::string error;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(store->CommitJournal(&error)) << error;
    ASSERT_TRUE(store->Flush(&error)) << error;
  }
  EXPECT_EQ(Segments(dir), before);
}

TEST(MemoryStoreTest, EvictDropsWhatReadsAsNoBucket) {
  TempDir dir;
  std::string error;
  BucketSpec refilled = Tokens("a", 100, kMinute);
  BucketSpec spent = Tokens("b", 100, kMinute);
  BucketSpec daily = Tokens("c", 100, kDay, true);
  BucketSpec slots = Concurrent("d", 2);
  {
    std::unique_ptr<MemoryStore> store = OpenJournaled(dir);
    ASSERT_TRUE(store);
    ASSERT_TRUE(Admit(*store, {{refilled, 50}}, kT0).admitted);
    ASSERT_TRUE(Admit(*store, {{spent, 100}}, kT0 + 50 * kSecond).admitted);
    ASSERT_TRUE(Admit(*store, {{daily, 1}}, kT0).admitted);
    ASSERT_TRUE(Admit(*store, {{slots, 1}}, kT0, 7).admitted);
    ASSERT_TRUE(Admit(*store, {{Concurrent("e", 2), 1}}, kT0, 8).admitted);
    std::vector<Settlement> release = {{Concurrent("e", 2), 0, 0}};
    store->SettleNow({"k", release, kT0, 8});
    // Not yet saved: a level bucket stays, whatever it reads. e holds no slot.
    EXPECT_EQ(store->Evict(kT0 + kTtl - 1), 1u);
    ASSERT_TRUE(store->Flush(&error)) << error;
    EXPECT_EQ(store->BucketCount(), 4u);
    // A minute on: a has refilled, b (charged 50 s later) has not; c's day is not over; d's slot
    // is held until its lease lapses.
    EXPECT_EQ(store->Evict(kT0 + kMinute, &error), 1u) << error;
    EXPECT_EQ(store->BucketCount(), 3u);
    BucketStates s = Read(*store, {refilled, spent}, kT0 + kMinute);
    EXPECT_EQ(s[0].level.level, 100);
    EXPECT_EQ(s[1].level.level, 16);
    // The next day: b is full, c's window is a new one, d's lease has lapsed.
    EXPECT_EQ(store->Evict(kT0 + kDay, &error), 3u) << error;
    EXPECT_EQ(store->BucketCount(), 0u);
  }
  // Their rows left limits.db with them.
  std::unique_ptr<MemoryStore> reopened = MemoryStore::Open(dir.path(), &error);
  ASSERT_TRUE(reopened) << error;
  EXPECT_EQ(reopened->BucketCount(), 0u);
}

// I/O threads charge and settle while the scheduler's thread commits the journal, saves and
// evicts (ThreadSanitizer runs this); afterwards the journal and limits.db agree with memory.
TEST(MemoryStoreTest, JournalSavesAndEvictionsRunBesideChargesOnOtherThreads) {
  TempDir dir;
  constexpr int kRequests = 20000;
  BucketStates expected;
  {
    std::unique_ptr<MemoryStore> store = OpenJournaled(dir);
    ASSERT_TRUE(store);
    std::atomic<int> done{0};
    auto work = [&](const std::string& owner) {
      for (int i = 0; i < kRequests; ++i) {
        BucketSpec spec = Tokens(owner, 1'000'000);
        Admit(*store, {{spec, 3}}, kT0, static_cast<uint64_t>(i) + 1);
        std::vector<Settlement> settle = {{spec, -1, 0}};
        store->SettleNow({owner, settle, kT0, static_cast<uint64_t>(i) + 1});
        // Owners that come and go, for Evict to drop.
        Admit(*store, {{Concurrent(owner + std::to_string(i % 7), 2), 1}}, kT0 - kTtl);
      }
      done.fetch_add(1);
    };
    std::thread a(work, "a");
    std::thread b(work, "b");
    std::string error;
    while (done.load() < 2) {
      EXPECT_TRUE(store->CommitJournal(&error)) << error;
      EXPECT_TRUE(store->Flush(&error)) << error;
      store->Evict(kT0, &error);
    }
    a.join();
    b.join();
    EXPECT_TRUE(store->CommitJournal(&error)) << error;
    expected = Read(*store, {Tokens("a", 1'000'000), Tokens("b", 1'000'000)}, kT0);
    EXPECT_EQ(expected[0].level.level, 1'000'000 - 2 * kRequests);
  }
  std::unique_ptr<MemoryStore> reopened = OpenJournaled(dir);
  ASSERT_TRUE(reopened);
  BucketStates after = Read(*reopened, {Tokens("a", 1'000'000), Tokens("b", 1'000'000)}, kT0);
  EXPECT_EQ(after[0].level, expected[0].level);
  EXPECT_EQ(after[1].level, expected[1].level);
}

TEST(MemoryStoreTest, OpenFailsOnAnUnusableDirectory) {
  TempDir dir;
  std::string file = dir.Write("not_a_dir", "");
  std::string error;
  EXPECT_EQ(MemoryStore::Open(file, &error), nullptr);
  EXPECT_FALSE(error.empty());
}

}  // namespace
}  // namespace trl
