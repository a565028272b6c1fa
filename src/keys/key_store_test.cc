// Both KeyStores against real storage: SQLite in a temporary directory, and a real
// redis-server (tests/fakes/redis_server.h) shared by two "instances" (two clients).
#include "keys/key_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "common/crypto.h"
#include "common/sqlite.h"
#include "fakes/counting_key_store.h"
#include "fakes/limit_builders.h"
#include "fakes/redis_server.h"
#include "fakes/run_awaitable.h"
#include "fakes/temp_dir.h"
#include "keys/key_directory.h"
#include "keys/key_scripts.h"
#include "redis/resp.h"

namespace trl {
namespace {

using testing::RedisServer;
using WriteStatus = KeyStore::WriteStatus;

KeyRecord Record(const std::string& name, const std::string& secret) {
  KeyRecord r;
  r.key.name = name;
  r.key.key_sha256 = Sha256Of(secret);
  r.created = r.updated = 1'700'000'000;
  return r;
}

// The behaviour every KeyStore must have, run against each.
void ExpectKeyStoreContract(KeyStore& store) {
  auto v0 = RunAwaitable(store.Version());
  ASSERT_TRUE(v0);
  KeyStore::Written written = RunAwaitable(store.Create(Record("a", "sk-a")));
  EXPECT_EQ(written.status, WriteStatus::kOk);
  EXPECT_EQ(written.version, *v0 + 1) << "a write answers the version it made";
  EXPECT_EQ(RunAwaitable(store.Create(Record("a", "sk-other"))).status, WriteStatus::kExists);
  written = RunAwaitable(store.Create(Record("b", "sk-b")));
  EXPECT_EQ(written.status, WriteStatus::kOk);
  EXPECT_EQ(written.version, *v0 + 2);
  auto v2 = RunAwaitable(store.Version());
  ASSERT_TRUE(v2);
  EXPECT_EQ(*v2, *v0 + 2);  // the refused create changed nothing

  KeyRecord replaced = Record("b", "sk-b");
  replaced.key.limits = {testing::Tokens(7, Millis(1000))};
  replaced.key.limits_set = true;
  replaced.revision = 1;
  written = RunAwaitable(store.Replace(replaced, Record("b", "sk-b")));
  EXPECT_EQ(written.status, WriteStatus::kOk);
  EXPECT_EQ(written.version, *v0 + 3);
  EXPECT_EQ(RunAwaitable(store.Replace(Record("c", "sk-c"), Record("c", "sk-c"))).status,
            WriteStatus::kNotFound);
  // A change made from a record that is no longer the stored one is refused: it would undo the
  // change made meanwhile (a rotation undone by a limits change made from the old record).
  KeyRecord rotated = replaced;
  rotated.key.key_sha256 = Sha256Of("sk-rotated");
  rotated.revision = 2;
  EXPECT_EQ(RunAwaitable(store.Replace(rotated, Record("b", "sk-b"))).status,
            WriteStatus::kConflict)
      << "an older revision";
  KeyRecord other_secret = replaced;
  other_secret.key.key_sha256 = Sha256Of("sk-made-again");
  EXPECT_EQ(RunAwaitable(store.Replace(rotated, other_secret)).status, WriteStatus::kConflict)
      << "the same revision of another secret: the key was removed and made again";
  auto v3 = RunAwaitable(store.Version());
  ASSERT_TRUE(v3);
  EXPECT_EQ(*v3, *v0 + 3) << "a refused replace changes nothing";
  EXPECT_EQ(RunAwaitable(store.Replace(rotated, replaced)).status, WriteStatus::kOk);

  KeyStore::Loaded loaded = RunAwaitable(store.LoadAll());
  ASSERT_TRUE(loaded.ok) << loaded.error;
  EXPECT_EQ(loaded.version, *v0 + 4);
  ASSERT_EQ(loaded.keys.size(), 2u);
  std::sort(loaded.keys.begin(), loaded.keys.end(),
            [](const KeyRecord& x, const KeyRecord& y) { return x.key.name < y.key.name; });
  EXPECT_EQ(loaded.keys[0].key.key_sha256, Sha256Of("sk-a"));
  EXPECT_EQ(loaded.keys[1].key.limits, replaced.key.limits);

  written = RunAwaitable(store.Remove("a"));
  EXPECT_EQ(written.status, WriteStatus::kOk);
  EXPECT_EQ(written.version, *v0 + 5);
  EXPECT_EQ(RunAwaitable(store.Remove("a")).status, WriteStatus::kNotFound);
  loaded = RunAwaitable(store.LoadAll());
  ASSERT_TRUE(loaded.ok);
  EXPECT_EQ(loaded.version, *v0 + 5);
  ASSERT_EQ(loaded.keys.size(), 1u);
  EXPECT_EQ(loaded.keys[0].key.name, "b");
}

// Issue 26 point 11: once a directory has loaded the keys, each Sync reads the records that
// changed since (one per key made), not every key; removals read none.
void ExpectSyncReadsOnlyWhatChanged(KeyStore& store) {
  constexpr int kKeys = 200;
  for (int i = 0; i < kKeys; ++i) {
    const std::string name = "k-" + std::to_string(i);
    ASSERT_EQ(RunAwaitable(store.Create(Record(name, "sk-" + name))).status, WriteStatus::kOk);
  }
  CountingKeyStore counting(store);
  KeyDirectory directory(counting);
  std::string error;
  ASSERT_TRUE(RunAwaitable(directory.Sync(false, &error))) << error;
  EXPECT_EQ(counting.records_read, kKeys);
  for (int i = 0; i < 3; ++i) {
    const std::string name = "new-" + std::to_string(i);
    ASSERT_EQ(RunAwaitable(store.Create(Record(name, "sk-" + name))).status, WriteStatus::kOk);
    ASSERT_TRUE(RunAwaitable(directory.Sync(false, &error))) << error;
    EXPECT_EQ(counting.records_read, kKeys + i + 1) << "one key made: one record read";
  }
  ASSERT_EQ(RunAwaitable(store.Remove("k-0")).status, WriteStatus::kOk);
  ASSERT_TRUE(RunAwaitable(directory.Sync(false, &error))) << error;
  EXPECT_EQ(counting.records_read, kKeys + 3) << "a removal reads no record";
  EXPECT_EQ(counting.loads, 1);
  auto current = directory.Current();
  EXPECT_EQ(current->Size(), size_t{kKeys + 2});
  EXPECT_TRUE(current->FindByHash(Sha256Of("sk-new-2")));
  EXPECT_FALSE(current->FindByHash(Sha256Of("sk-k-0")));
}

// Two instances on one store: what one makes, changes and revokes is in the other's snapshot
// after the other's next Sync, read as a change (one record), not by loading every key.
void ExpectTwoInstancesSeeEachOthersChanges(KeyStore& store_a, KeyStore& store_b) {
  CountingKeyStore counting_b(store_b);
  KeyDirectory dir_b(counting_b);
  std::string error;
  ASSERT_TRUE(RunAwaitable(dir_b.Sync(false, &error))) << error;
  ASSERT_EQ(RunAwaitable(store_a.Create(Record("shared", "sk-shared"))).status, WriteStatus::kOk);
  ASSERT_TRUE(RunAwaitable(dir_b.Sync(false, &error))) << error;
  EXPECT_TRUE(dir_b.Current()->FindByHash(Sha256Of("sk-shared")));
  KeyRecord replaced = Record("shared", "sk-shared");
  replaced.key.limits = {testing::Tokens(9, Millis(1000))};
  replaced.key.limits_set = true;
  replaced.revision = 1;
  ASSERT_EQ(RunAwaitable(store_a.Replace(replaced, Record("shared", "sk-shared"))).status,
            WriteStatus::kOk);
  ASSERT_TRUE(RunAwaitable(dir_b.Sync(false, &error))) << error;
  EXPECT_EQ(dir_b.Current()->FindByName("shared")->key.limits, replaced.key.limits);
  ASSERT_EQ(RunAwaitable(store_a.Remove("shared")).status, WriteStatus::kOk);
  ASSERT_TRUE(RunAwaitable(dir_b.Sync(false, &error))) << error;
  EXPECT_FALSE(dir_b.Current()->FindByHash(Sha256Of("sk-shared")));
  EXPECT_TRUE(dir_b.Current()->Empty());
  EXPECT_EQ(counting_b.loads, 1);
  EXPECT_EQ(counting_b.records_read, 2);  // the key made, then its new limits
}

std::vector<std::string> Names(const std::vector<KeyRecord>& records) {
  std::vector<std::string> names;
  names.reserve(records.size());
  for (const auto& r : records) names.push_back(r.key.name);
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> Sorted(std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  return names;
}

// The change log every KeyStore keeps, on a store opened with a log of 3.
void ExpectChangeLogContract(KeyStore& store) {
  const int64_t v0 = *RunAwaitable(store.Version());
  KeyStore::Changes none = RunAwaitable(store.ChangesSince(v0));
  ASSERT_TRUE(none.ok && none.complete) << none.error;
  EXPECT_EQ(none.version, v0);
  EXPECT_TRUE(none.changed.empty() && none.removed.empty());

  ASSERT_EQ(RunAwaitable(store.Create(Record("a", "sk-a"))).status, WriteStatus::kOk);
  ASSERT_EQ(RunAwaitable(store.Create(Record("b", "sk-b"))).status, WriteStatus::kOk);
  KeyRecord replaced = Record("a", "sk-a");
  replaced.updated = 5;
  replaced.revision = 1;
  ASSERT_EQ(RunAwaitable(store.Replace(replaced, Record("a", "sk-a"))).status, WriteStatus::kOk);
  ASSERT_EQ(RunAwaitable(store.Remove("b")).status, WriteStatus::kOk);
  KeyStore::Changes all = RunAwaitable(store.ChangesSince(v0));
  ASSERT_TRUE(all.ok && all.complete) << all.error;
  EXPECT_EQ(all.version, v0 + 4);
  ASSERT_EQ(Names(all.changed), std::vector<std::string>{"a"});  // each name once, as it is now
  EXPECT_EQ(all.changed[0].updated, 5);
  EXPECT_EQ(all.removed, std::vector<std::string>{"b"});
  KeyStore::Changes last = RunAwaitable(store.ChangesSince(v0 + 3));
  ASSERT_TRUE(last.ok && last.complete);
  EXPECT_TRUE(last.changed.empty());
  EXPECT_EQ(last.removed, std::vector<std::string>{"b"});
  KeyStore::Changes ahead = RunAwaitable(store.ChangesSince(v0 + 9));
  ASSERT_TRUE(ahead.ok);
  EXPECT_FALSE(ahead.complete) << "a store below the reader's version: load everything";

  // Four removals with a log of 3: the oldest falls out, and readers before it must load.
  for (const char* name : {"c", "d", "e", "f"}) {
    ASSERT_EQ(RunAwaitable(store.Create(Record(name, name))).status, WriteStatus::kOk);
  }
  const int64_t made = v0 + 8;
  for (const char* name : {"c", "d", "e", "f"}) {
    ASSERT_EQ(RunAwaitable(store.Remove(name)).status, WriteStatus::kOk);
  }
  KeyStore::Changes trimmed = RunAwaitable(store.ChangesSince(made));
  ASSERT_TRUE(trimmed.ok);
  EXPECT_FALSE(trimmed.complete);
  EXPECT_EQ(trimmed.version, made + 4);
  KeyStore::Changes kept = RunAwaitable(store.ChangesSince(made + 2));
  ASSERT_TRUE(kept.ok && kept.complete);
  EXPECT_EQ(Sorted(kept.removed), (std::vector<std::string>{"e", "f"}));
}

class SqliteKeyStoreTest : public ::testing::Test {
 protected:
  testing::TempDir temp_{"trl-keys-"};
  const std::string dir_ = temp_.path();
};

TEST_F(SqliteKeyStoreTest, Contract) {
  std::string error;
  auto store = OpenSqliteKeyStore(dir_ + "/nested", &error);
  ASSERT_TRUE(store) << error;
  ExpectKeyStoreContract(*store);
}

TEST_F(SqliteKeyStoreTest, SyncReadsOnlyWhatChanged) {
  std::string error;
  auto store = OpenSqliteKeyStore(dir_, &error);
  ASSERT_TRUE(store) << error;
  ExpectSyncReadsOnlyWhatChanged(*store);
}

// Two connections to one keys.db stand for the admin thread's writes and another reader.
TEST_F(SqliteKeyStoreTest, TwoStoresOnOneFileSeeEachOthersChanges) {
  std::string error;
  auto store_a = OpenSqliteKeyStore(dir_, &error);
  auto store_b = OpenSqliteKeyStore(dir_, &error);
  ASSERT_TRUE(store_a && store_b) << error;
  ExpectTwoInstancesSeeEachOthersChanges(*store_a, *store_b);
}

TEST_F(SqliteKeyStoreTest, ChangeLog) {
  std::string error;
  auto store = OpenSqliteKeyStore(dir_, &error, 3);
  ASSERT_TRUE(store) << error;
  ExpectChangeLogContract(*store);
}

// A keys.db written by a release without the change log: its keys load as they were, and the
// log starts at its version.
TEST_F(SqliteKeyStoreTest, AKeysDbWithoutTheLogGetsOne) {
  std::string error;
  {
    auto db = sqlite::Database::Open(dir_, "keys.db", &error);
    ASSERT_TRUE(db) << error;
    const std::string old_release =
        "CREATE TABLE keys(name TEXT PRIMARY KEY, record TEXT NOT NULL);"
        "CREATE TABLE meta(version INTEGER NOT NULL);"
        "INSERT INTO meta(version) VALUES(3);"
        "INSERT INTO keys(name, record) VALUES('old', '" +
        SerializeKeyRecord(Record("old", "sk-old")) + "');";
    ASSERT_TRUE(db->Exec(old_release.c_str(), &error)) << error;
  }
  auto store = OpenSqliteKeyStore(dir_, &error);
  ASSERT_TRUE(store) << error;
  KeyStore::Loaded loaded = RunAwaitable(store->LoadAll());
  ASSERT_TRUE(loaded.ok) << loaded.error;
  EXPECT_EQ(loaded.version, 3);
  EXPECT_EQ(Names(loaded.keys), std::vector<std::string>{"old"});
  EXPECT_FALSE(RunAwaitable(store->ChangesSince(2)).complete) << "removals before 3 left no trace";
  ASSERT_EQ(RunAwaitable(store->Create(Record("new", "sk-new"))).status, WriteStatus::kOk);
  KeyStore::Changes changes = RunAwaitable(store->ChangesSince(3));
  ASSERT_TRUE(changes.ok && changes.complete);
  EXPECT_EQ(Names(changes.changed), std::vector<std::string>{"new"});
  // Opening it again changes nothing.
  store.reset();
  store = OpenSqliteKeyStore(dir_, &error);
  ASSERT_TRUE(store) << error;
  EXPECT_TRUE(RunAwaitable(store->ChangesSince(3)).complete);
}

TEST_F(SqliteKeyStoreTest, SurvivesReopen) {
  std::string error;
  {
    auto store = OpenSqliteKeyStore(dir_, &error);
    ASSERT_TRUE(store) << error;
    ASSERT_EQ(RunAwaitable(store->Create(Record("kept", "sk-kept"))).status, WriteStatus::kOk);
  }
  auto store = OpenSqliteKeyStore(dir_, &error);
  ASSERT_TRUE(store) << error;
  KeyStore::Loaded loaded = RunAwaitable(store->LoadAll());
  ASSERT_TRUE(loaded.ok);
  EXPECT_EQ(loaded.version, 1);
  ASSERT_EQ(loaded.keys.size(), 1u);
  EXPECT_EQ(loaded.keys[0].key.key_sha256, Sha256Of("sk-kept"));
}

TEST_F(SqliteKeyStoreTest, UnusableDirectoryIsAnError) {
  std::string error;
  std::ofstream(dir_ + "/file") << "x";
  EXPECT_FALSE(OpenSqliteKeyStore(dir_ + "/file", &error));
  EXPECT_NE(error, "");
}

TEST_F(SqliteKeyStoreTest, DirectoryFollowsTheStore) {
  std::string error;
  auto store = OpenSqliteKeyStore(dir_, &error);
  ASSERT_TRUE(store) << error;
  KeyDirectory directory(*store);
  EXPECT_EQ(directory.Current()->Version(), -1);
  ASSERT_TRUE(RunAwaitable(directory.Sync(false, &error))) << error;
  EXPECT_TRUE(directory.Current()->Empty());
  ASSERT_EQ(RunAwaitable(store->Create(Record("a", "sk-a"))).status, WriteStatus::kOk);
  auto before = directory.Current();
  ASSERT_TRUE(RunAwaitable(directory.Sync(false, &error)));
  auto after = directory.Current();
  EXPECT_NE(before, after);
  ASSERT_TRUE(after->FindByHash(Sha256Of("sk-a")));
  EXPECT_EQ(after->FindByName("a")->key.name, "a");
  // Unchanged version: the snapshot is kept as it is.
  ASSERT_TRUE(RunAwaitable(directory.Sync(false, &error)));
  EXPECT_EQ(directory.Current(), after);
}

class RedisKeyStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { server_ = testing::StartRedis(); }
  std::unique_ptr<redis::RedisClient> Client() {
    return testing::MakeRedisClient({server_->Url()});
  }
  std::unique_ptr<RedisServer> server_;
};

TEST_F(RedisKeyStoreTest, Contract) {
  auto client = Client();
  auto store = MakeRedisKeyStore(*client, Millis(2000));
  ExpectKeyStoreContract(*store);
}

TEST_F(RedisKeyStoreTest, SyncReadsOnlyWhatChanged) {
  auto client = Client();
  auto store = MakeRedisKeyStore(*client, Millis(2000));
  ExpectSyncReadsOnlyWhatChanged(*store);
}

TEST_F(RedisKeyStoreTest, TwoInstancesSeeEachOthersChanges) {
  auto client_a = Client(), client_b = Client();
  auto store_a = MakeRedisKeyStore(*client_a, Millis(2000));
  auto store_b = MakeRedisKeyStore(*client_b, Millis(2000));
  ExpectTwoInstancesSeeEachOthersChanges(*store_a, *store_b);
  // Removed from Redis too.
  testing::TestReply all = server_->Command({"HGETALL", "trl:keys:{keys}:records"});
  ASSERT_TRUE(all);
  EXPECT_EQ(all->elements, 0u);
}

TEST_F(RedisKeyStoreTest, ChangeLog) {
  auto client = Client();
  auto store = MakeRedisKeyStore(*client, Millis(2000), 3);
  ExpectChangeLogContract(*store);
}

// During a rolling upgrade, an instance of a release without the log still writes: a reader
// cannot take the log for complete past such a write, and loads every key instead.
TEST_F(RedisKeyStoreTest, AWriteOfAReleaseWithoutTheLogSendsReadersToALoad) {
  auto client = Client();
  auto store = MakeRedisKeyStore(*client, Millis(2000));
  ASSERT_EQ(RunAwaitable(store->Create(Record("a", "sk-a"))).status, WriteStatus::kOk);
  // What the previous release's create script did: HSETNX and INCR, no log.
  const std::string record = SerializeKeyRecord(Record("old", "sk-old"));
  ASSERT_TRUE(server_->Command({"HSETNX", "trl:keys:{keys}:records", "old", record}));
  ASSERT_EQ(server_->Command({"INCR", "trl:keys:{keys}:version"})->integer, 2);
  KeyStore::Changes changes = RunAwaitable(store->ChangesSince(1));
  ASSERT_TRUE(changes.ok);
  EXPECT_FALSE(changes.complete);
  EXPECT_EQ(changes.version, 2);
  EXPECT_TRUE(RunAwaitable(store->ChangesSince(2)).complete) << "nothing since: nothing to load";

  ASSERT_EQ(RunAwaitable(store->Create(Record("b", "sk-b"))).status, WriteStatus::kOk);
  EXPECT_FALSE(RunAwaitable(store->ChangesSince(1)).complete);
  changes = RunAwaitable(store->ChangesSince(2));
  ASSERT_TRUE(changes.ok && changes.complete);
  EXPECT_EQ(Names(changes.changed), std::vector<std::string>{"b"});
}

// The load reads the hash in pages (HSCAN), so a large set does not hold Redis in one call:
// every key comes back once, whatever the number of pages.
TEST_F(RedisKeyStoreTest, LoadsAHashOfManyPagesWhole) {
  constexpr int kKeys = 2500;
  for (int i = 0; i < kKeys; ++i) {
    const std::string name = "k-" + std::to_string(i);
    ASSERT_TRUE(server_->Command(
        {"HSET", "trl:keys:{keys}:records", name, SerializeKeyRecord(Record(name, "sk-" + name))}));
  }
  ASSERT_TRUE(server_->Command({"SET", "trl:keys:{keys}:version", "7"}));
  auto client = Client();
  auto store = MakeRedisKeyStore(*client, Millis(2000));
  KeyStore::Loaded loaded = RunAwaitable(store->LoadAll());
  ASSERT_TRUE(loaded.ok) << loaded.error;
  EXPECT_EQ(loaded.version, 7);
  std::vector<std::string> names = Names(loaded.keys);
  EXPECT_EQ(names.size(), size_t{kKeys});
  EXPECT_EQ(std::unique(names.begin(), names.end()), names.end());
}

// What Redis holds of a key while it exists: its record, with the secret's hash and never the
// secret, in any form.
TEST_F(RedisKeyStoreTest, OnlyTheSecretsHashReachesRedis) {
  auto client = Client();
  auto store = MakeRedisKeyStore(*client, Millis(2000));
  const std::string secret = "sk-never-in-redis-0123456789";
  ASSERT_EQ(RunAwaitable(store->Create(Record("hashed", secret))).status, WriteStatus::kOk);
  testing::TestReply all = server_->Command({"HGETALL", "trl:keys:{keys}:records"});
  ASSERT_TRUE(all);
  ASSERT_EQ(all->elements, 2u);  // one field (the name) and its record
  const std::string name(all->element[0]->str, all->element[0]->len);
  const std::string record(all->element[1]->str, all->element[1]->len);
  EXPECT_EQ(name, "hashed");
  const Sha256 hash = Sha256Of(secret);
  EXPECT_NE(record.find(ToHex(hash)), std::string::npos) << record;
  EXPECT_EQ(record.find(secret), std::string::npos) << record;
  EXPECT_EQ(record.find("never-in-redis"), std::string::npos) << record;
}

// RedisClient sends a command again when its connection dropped before the reply, and the first
// run may have been applied. Each write script run twice with the same operation id answers
// both times as the first run did and changes nothing more; a write under another id is judged
// afresh.
TEST_F(RedisKeyStoreTest, AWriteSentTwiceAnswersAsTheFirstRun) {
  const std::string records = "trl:keys:{keys}:records", version = "trl:keys:{keys}:version";
  const std::string record = SerializeKeyRecord(Record("k", "sk-k"));
  auto run = [&](const std::string& script, const std::string& op,
                 std::vector<std::string> argv) -> long long {
    std::vector<std::string> command{"EVAL",
                                     script,
                                     "5",
                                     records,
                                     version,
                                     "trl:keys:{keys}:op:" + op,
                                     "trl:keys:{keys}:changes",
                                     "trl:keys:{keys}:log"};
    command.insert(command.end(), argv.begin(), argv.end());
    command.push_back("100");  // log size
    command.push_back("60000");
    testing::TestReply r = server_->Command(command);
    EXPECT_TRUE(r && r->type == REDIS_REPLY_INTEGER) << (r ? redis::ReplyText(*r) : "no reply");
    return r && r->type == REDIS_REPLY_INTEGER ? r->integer : -100;
  };
  for (int send = 0; send < 2; ++send) {
    SCOPED_TRACE(send);
    EXPECT_EQ(run(key_scripts::kCreate, "create", {"k", record}), 1);  // not "exists"
    EXPECT_EQ(server_->CommandText({"GET", version}), "1");
  }
  EXPECT_EQ(run(key_scripts::kCreate, "create-again", {"k", record}), -1);
  for (int send = 0; send < 2; ++send) {
    EXPECT_EQ(run(key_scripts::kReplace, "replace", {"k", record, "0", ToHex(Sha256Of("sk-k"))}),
              2);
    EXPECT_EQ(server_->CommandText({"GET", version}), "2");
  }
  for (int send = 0; send < 2; ++send) {
    EXPECT_EQ(run(key_scripts::kRemove, "remove", {"k"}), 3);  // not "not found"
    EXPECT_EQ(server_->CommandText({"GET", version}), "3");
  }
  EXPECT_EQ(run(key_scripts::kRemove, "remove-again", {"k"}), -1);
  EXPECT_EQ(server_->Command({"HLEN", records})->integer, 0);
  const long long ttl = server_->Command({"PTTL", "trl:keys:{keys}:op:remove"})->integer;
  EXPECT_GT(ttl, 0);
  EXPECT_LE(ttl, 60000);
}

TEST_F(RedisKeyStoreTest, RedisDownIsAnErrorNotACrash) {
  auto client = Client();
  auto store = MakeRedisKeyStore(*client, Millis(200));
  KeyDirectory directory(*store);
  std::string error;
  ASSERT_TRUE(RunAwaitable(directory.Sync(false, &error))) << error;
  server_->Kill();
  EXPECT_FALSE(RunAwaitable(directory.Sync(true, &error)));
  EXPECT_NE(error, "");
  EXPECT_EQ(RunAwaitable(store->Create(Record("x", "sk-x"))).status, WriteStatus::kError);
  EXPECT_EQ(directory.Current()->Version(), 0);
}

}  // namespace
}  // namespace trl
