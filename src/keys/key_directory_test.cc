// KeyDirectory over an in-memory key store, and the clash check a reload runs against it.
#include "keys/key_directory.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "common/crypto.h"
#include "fakes/fake_key_store.h"
#include "fakes/key_record_builders.h"
#include "fakes/run_awaitable.h"

namespace trl {
namespace {

using testing::MadeKey;

ApiKeyConfig ConfigKey(const std::string& name) {
  ApiKeyConfig key;
  key.name = name;
  return key;
}

TEST(KeyDirectoryTest, SyncLoadsOnceThenReadsChanges) {
  FakeKeyStore store;
  KeyDirectory keys(store);
  EXPECT_EQ(keys.Current()->Version(), -1);  // never loaded

  ASSERT_TRUE(RunAwaitable(keys.Sync(false, nullptr)));
  EXPECT_EQ(store.loads, 1);
  EXPECT_EQ(keys.Current()->Version(), 0);

  auto before = keys.Current();
  ASSERT_TRUE(RunAwaitable(keys.Sync(false, nullptr)));
  EXPECT_EQ(store.loads, 1) << "same version: nothing to load";
  EXPECT_EQ(keys.Current(), before) << "same version: the same snapshot";

  ASSERT_EQ(RunAwaitable(store.Create(MadeKey("a"))).status, KeyStore::WriteStatus::kOk);
  ASSERT_TRUE(RunAwaitable(keys.Sync(false, nullptr)));
  EXPECT_EQ(store.loads, 1) << "a change is read from the log";
  auto current = keys.Current();
  EXPECT_EQ(current->Version(), 1);
  ASSERT_TRUE(current->FindByName("a"));
  EXPECT_TRUE(current->FindByHash(Sha256Of("sk-a")));
  EXPECT_FALSE(before->FindByName("a")) << "a snapshot never changes";

  ASSERT_TRUE(RunAwaitable(keys.Sync(true, nullptr)));
  EXPECT_EQ(store.loads, 2) << "forced: loaded although the version is the same";
}

// Issue 26 point 11: after the first load, a Sync reads what changed since, not every key, so
// making keys does not slow down as they grow.
TEST(KeyDirectoryTest, ASyncAfterOneWriteReadsOnlyWhatChanged) {
  constexpr int kKeys = 1000;
  FakeKeyStore store;
  for (int i = 0; i < kKeys; ++i) {
    ASSERT_EQ(RunAwaitable(store.Create(MadeKey("k-" + std::to_string(i)))).status,
              KeyStore::WriteStatus::kOk);
  }
  KeyDirectory keys(store);
  ASSERT_TRUE(RunAwaitable(keys.Sync(false, nullptr)));
  EXPECT_EQ(store.records_read, kKeys);

  ASSERT_EQ(RunAwaitable(store.Create(MadeKey("new"))).status, KeyStore::WriteStatus::kOk);
  ASSERT_TRUE(RunAwaitable(keys.Sync(false, nullptr)));
  EXPECT_EQ(store.records_read, kKeys + 1) << "one key made: one record read";
  KeyRecord replaced = MadeKey("k-7");
  replaced.updated = 7;
  replaced.revision = 1;
  ASSERT_EQ(RunAwaitable(store.Replace(replaced, MadeKey("k-7"))).status,
            KeyStore::WriteStatus::kOk);
  ASSERT_EQ(RunAwaitable(store.Remove("k-8")).status, KeyStore::WriteStatus::kOk);
  ASSERT_TRUE(RunAwaitable(keys.Sync(false, nullptr)));
  EXPECT_EQ(store.records_read, kKeys + 2) << "a removal reads no record";
  EXPECT_EQ(store.loads, 1);

  auto current = keys.Current();
  EXPECT_EQ(current->Version(), kKeys + 3);
  EXPECT_TRUE(current->FindByHash(Sha256Of("sk-new")));
  EXPECT_EQ(current->FindByName("k-7")->updated, 7);
  EXPECT_FALSE(current->FindByName("k-8"));
  EXPECT_FALSE(current->FindByHash(Sha256Of("sk-k-8")));
  EXPECT_EQ(current->Size(), size_t{kKeys});
}

// A directory the log no longer reaches back to (trimmed while its syncs failed) loads every key
// once, and reads changes again after that.
TEST(KeyDirectoryTest, LoadsEveryKeyWhenTheLogWasTrimmedPastIt) {
  FakeKeyStore store;
  for (const char* name : {"a", "b", "c"}) {
    ASSERT_EQ(RunAwaitable(store.Create(MadeKey(name))).status, KeyStore::WriteStatus::kOk);
  }
  KeyDirectory keys(store);
  ASSERT_TRUE(RunAwaitable(keys.Sync(false, nullptr)));
  ASSERT_EQ(RunAwaitable(store.Remove("a")).status, KeyStore::WriteStatus::kOk);
  ASSERT_EQ(RunAwaitable(store.Create(MadeKey("d"))).status, KeyStore::WriteStatus::kOk);
  store.TrimLog();  // the removal of "a" is no longer in the log
  ASSERT_TRUE(RunAwaitable(keys.Sync(false, nullptr)));
  EXPECT_EQ(store.loads, 2);
  EXPECT_EQ(store.records_read, 3 + 3);
  EXPECT_FALSE(keys.Current()->FindByName("a"));
  EXPECT_TRUE(keys.Current()->FindByName("d"));

  ASSERT_EQ(RunAwaitable(store.Create(MadeKey("e"))).status, KeyStore::WriteStatus::kOk);
  ASSERT_TRUE(RunAwaitable(keys.Sync(false, nullptr)));
  EXPECT_EQ(store.loads, 2);
  EXPECT_EQ(store.records_read, 3 + 3 + 1);
}

// The scheduler's sync and an admin write's sync may overlap, and the one that read first may
// finish last: it finds the snapshot replaced and builds on the newer one, so an older set
// never replaces a newer one.
TEST(KeyDirectoryTest, ASyncThatReadFirstAndFinishesLastKeepsTheNewerSnapshot) {
  FakeKeyStore store;
  KeyDirectory keys(store);
  ASSERT_TRUE(RunAwaitable(keys.Sync(false, nullptr)));
  ASSERT_EQ(RunAwaitable(store.Create(MadeKey("a"))).status, KeyStore::WriteStatus::kOk);
  asio::io_context io;
  store.hold_reads = true;
  int succeeded = 0;
  auto count = [&](const std::exception_ptr&, bool ok) { succeeded += ok ? 1 : 0; };
  asio::co_spawn(io, keys.Sync(false, nullptr), count);
  io.poll();  // the first has read version 1 ("a")
  ASSERT_EQ(RunAwaitable(store.Create(MadeKey("b"))).status, KeyStore::WriteStatus::kOk);
  asio::co_spawn(io, keys.Sync(false, nullptr), count);
  io.poll();  // the second has read version 2 ("a", "b")
  ASSERT_EQ(store.held.size(), 2u);
  store.hold_reads = false;
  store.held[1]->cancel();
  io.poll();
  EXPECT_EQ(keys.Current()->Version(), 2);
  store.held[0]->cancel();
  io.poll();
  EXPECT_EQ(succeeded, 2);
  EXPECT_EQ(keys.Current()->Version(), 2);
  EXPECT_TRUE(keys.Current()->FindByName("a"));
  EXPECT_TRUE(keys.Current()->FindByName("b"));
  store.held.clear();  // the timers belong to `io`, which goes first
}

// A write made through the directory is the only change since its snapshot: published at the
// version the store answered, without reading the store back (one store call per admin write).
TEST(KeyDirectoryTest, AWriteMadeHerePublishesItselfWithoutAReadBack) {
  FakeKeyStore store;
  KeyDirectory keys(store);
  ASSERT_TRUE(RunAwaitable(keys.Sync(false, nullptr)));
  const int reads = store.change_reads;

  EXPECT_EQ(RunAwaitable(keys.Create(MadeKey("a"))), KeyStore::WriteStatus::kOk);
  EXPECT_EQ(keys.Current()->Version(), 1);
  EXPECT_TRUE(keys.Current()->FindByHash(Sha256Of("sk-a")));
  KeyRecord replaced = MadeKey("a");
  replaced.updated = 9;
  replaced.revision = 1;
  EXPECT_EQ(RunAwaitable(keys.Replace(replaced, MadeKey("a"))), KeyStore::WriteStatus::kOk);
  EXPECT_EQ(keys.Current()->FindByName("a")->updated, 9);
  EXPECT_EQ(RunAwaitable(keys.Remove("a")), KeyStore::WriteStatus::kOk);
  EXPECT_FALSE(keys.Current()->FindByName("a"));
  EXPECT_FALSE(keys.Current()->FindByHash(Sha256Of("sk-a")));
  EXPECT_EQ(keys.Current()->Version(), 3);
  EXPECT_EQ(store.change_reads, reads) << "each write published what it wrote";
  EXPECT_EQ(store.loads, 1);

  EXPECT_EQ(RunAwaitable(keys.Create(MadeKey("b"))), KeyStore::WriteStatus::kOk);
  EXPECT_EQ(RunAwaitable(keys.Create(MadeKey("b"))), KeyStore::WriteStatus::kExists);
  EXPECT_EQ(RunAwaitable(keys.Remove("gone")), KeyStore::WriteStatus::kNotFound);
  EXPECT_EQ(keys.Current()->Version(), 4) << "a refused write changes nothing";
  EXPECT_EQ(store.change_reads, reads);
}

// Another writer got in first (another instance, or a write this snapshot has not seen): the
// directory reads the changes, its own among them.
TEST(KeyDirectoryTest, AWriteAfterAnotherWritersReadsTheChangesBack) {
  FakeKeyStore store;
  KeyDirectory keys(store);
  ASSERT_TRUE(RunAwaitable(keys.Sync(false, nullptr)));
  ASSERT_EQ(RunAwaitable(store.Create(MadeKey("elsewhere"))).status, KeyStore::WriteStatus::kOk);
  const int reads = store.change_reads;

  EXPECT_EQ(RunAwaitable(keys.Create(MadeKey("here"))), KeyStore::WriteStatus::kOk);
  EXPECT_EQ(store.change_reads, reads + 1);
  EXPECT_EQ(keys.Current()->Version(), 2);
  EXPECT_TRUE(keys.Current()->FindByName("elsewhere"));
  EXPECT_TRUE(keys.Current()->FindByName("here"));
}

// A write the store refused or did not answer publishes nothing.
TEST(KeyDirectoryTest, AFailedWriteChangesNothing) {
  FakeKeyStore store;
  KeyDirectory keys(store);
  ASSERT_TRUE(RunAwaitable(keys.Sync(false, nullptr)));
  auto before = keys.Current();
  store.failing = true;
  EXPECT_EQ(RunAwaitable(keys.Create(MadeKey("a"))), KeyStore::WriteStatus::kError);
  EXPECT_EQ(keys.Current(), before);
}

TEST(KeyDirectoryTest, AFailedSyncKeepsTheKeysLoadedLast) {
  FakeKeyStore store;
  ASSERT_EQ(RunAwaitable(store.Create(MadeKey("a"))).status, KeyStore::WriteStatus::kOk);
  KeyDirectory keys(store);
  ASSERT_TRUE(RunAwaitable(keys.Sync(true, nullptr)));

  store.failing = true;
  std::string error;
  EXPECT_FALSE(RunAwaitable(keys.Sync(false, &error)));  // reading the changes
  EXPECT_EQ(error, "fake key store: failing");
  error.clear();
  EXPECT_FALSE(RunAwaitable(keys.Sync(true, &error)));  // loading every key
  EXPECT_EQ(error, "fake key store: failing");
  EXPECT_EQ(keys.Current()->Version(), 1);
  EXPECT_TRUE(keys.Current()->FindByName("a"));
}

// Issue 28: a store found behind this instance (a Redis restarted without persistence, or
// flushed) lost the keys made through the admin API: the directory follows the store, and says
// how many keys it lost, for the log and /readyz.
TEST(KeyDirectoryTest, AStoreThatWentBackIsReportedWithTheKeysLost) {
  FakeKeyStore store;
  KeyDirectory keys(store);
  ASSERT_TRUE(RunAwaitable(keys.Sync(false, nullptr)));
  EXPECT_EQ(keys.LostKeysWarning(), "");
  ASSERT_EQ(RunAwaitable(keys.Create(MadeKey("a"))), KeyStore::WriteStatus::kOk);
  ASSERT_EQ(RunAwaitable(keys.Create(MadeKey("b"))), KeyStore::WriteStatus::kOk);

  store.LoseEverything();
  ASSERT_EQ(RunAwaitable(store.Create(MadeKey("c"))).status, KeyStore::WriteStatus::kOk);
  ASSERT_TRUE(RunAwaitable(keys.Sync(false, nullptr)));
  EXPECT_EQ(keys.Current()->Version(), 1);
  EXPECT_FALSE(keys.Current()->FindByName("a"));
  EXPECT_TRUE(keys.Current()->FindByName("c"));
  EXPECT_EQ(keys.LostKeysWarning(),
            "keys: the key store went back from version 2 to 1 (a Redis restarted without "
            "persistence, flushed, or restored from an older backup): 2 keys made through the "
            "admin API are gone from it; restore them from a backup or make them again");
}

TEST(NameClashesTest, NamesEveryConfigKeyNamedLikeAnApiKey) {
  auto managed = ManagedKeys::FromRecords(1, {MadeKey("made-1"), MadeKey("made-2")});
  const std::vector<ApiKeyConfig> config_keys = {ConfigKey("made-2"), ConfigKey("team-a"),
                                                 ConfigKey("made-1")};
  EXPECT_EQ(NameClashes(config_keys, *managed),
            "api_keys: 'made-2' is the name of a key made through the admin API; rename one of "
            "them\n"
            "api_keys: 'made-1' is the name of a key made through the admin API; rename one of "
            "them\n");
}

TEST(NameClashesTest, NoneWhenTheNamesDiffer) {
  auto managed = ManagedKeys::FromRecords(1, {MadeKey("made")});
  const std::vector<ApiKeyConfig> config_keys = {ConfigKey("Made"), ConfigKey("made-2")};
  EXPECT_EQ(NameClashes(config_keys, *managed), "");
  EXPECT_EQ(NameClashes({}, *managed), "");
}

}  // namespace
}  // namespace trl
