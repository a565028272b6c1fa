// Both KeyStores against real storage: SQLite in a temporary directory, and a real
// redis-server (tests/fakes/redis_server.h) shared by two "instances" (two clients).
#include "keys/key_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "common/crypto.h"
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
  EXPECT_EQ(RunAwaitable(store.Create(Record("a", "sk-a"))), WriteStatus::kOk);
  EXPECT_EQ(RunAwaitable(store.Create(Record("a", "sk-other"))), WriteStatus::kExists);
  EXPECT_EQ(RunAwaitable(store.Create(Record("b", "sk-b"))), WriteStatus::kOk);
  auto v2 = RunAwaitable(store.Version());
  ASSERT_TRUE(v2);
  EXPECT_EQ(*v2, *v0 + 2);  // the refused create changed nothing

  KeyRecord replaced = Record("b", "sk-b");
  replaced.key.limits = {testing::Tokens(7, Millis(1000))};
  replaced.key.limits_set = true;
  EXPECT_EQ(RunAwaitable(store.Replace(replaced)), WriteStatus::kOk);
  EXPECT_EQ(RunAwaitable(store.Replace(Record("c", "sk-c"))), WriteStatus::kNotFound);

  KeyStore::Loaded loaded = RunAwaitable(store.LoadAll());
  ASSERT_TRUE(loaded.ok) << loaded.error;
  EXPECT_EQ(loaded.version, *v0 + 3);
  ASSERT_EQ(loaded.keys.size(), 2u);
  std::sort(loaded.keys.begin(), loaded.keys.end(),
            [](const KeyRecord& x, const KeyRecord& y) { return x.key.name < y.key.name; });
  EXPECT_EQ(loaded.keys[0].key.key_sha256, Sha256Of("sk-a"));
  EXPECT_EQ(loaded.keys[1].key.limits, replaced.key.limits);

  EXPECT_EQ(RunAwaitable(store.Remove("a")), WriteStatus::kOk);
  EXPECT_EQ(RunAwaitable(store.Remove("a")), WriteStatus::kNotFound);
  loaded = RunAwaitable(store.LoadAll());
  ASSERT_TRUE(loaded.ok);
  EXPECT_EQ(loaded.version, *v0 + 4);
  ASSERT_EQ(loaded.keys.size(), 1u);
  EXPECT_EQ(loaded.keys[0].key.name, "b");
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

TEST_F(SqliteKeyStoreTest, SurvivesReopen) {
  std::string error;
  {
    auto store = OpenSqliteKeyStore(dir_, &error);
    ASSERT_TRUE(store) << error;
    ASSERT_EQ(RunAwaitable(store->Create(Record("kept", "sk-kept"))), WriteStatus::kOk);
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
  EXPECT_EQ(directory.Current()->version, -1);
  ASSERT_TRUE(RunAwaitable(directory.Sync(false, &error))) << error;
  EXPECT_TRUE(directory.Current()->by_name.empty());
  ASSERT_EQ(RunAwaitable(store->Create(Record("a", "sk-a"))), WriteStatus::kOk);
  auto before = directory.Current();
  ASSERT_TRUE(RunAwaitable(directory.Sync(false, &error)));
  auto after = directory.Current();
  EXPECT_NE(before, after);
  ASSERT_EQ(after->by_hash.count(Sha256Of("sk-a")), 1u);
  EXPECT_EQ(after->by_name.at("a")->key.name, "a");
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

TEST_F(RedisKeyStoreTest, TwoInstancesSeeEachOthersChanges) {
  auto client_a = Client(), client_b = Client();
  auto store_a = MakeRedisKeyStore(*client_a, Millis(2000));
  auto store_b = MakeRedisKeyStore(*client_b, Millis(2000));
  KeyDirectory dir_a(*store_a), dir_b(*store_b);
  std::string error;
  ASSERT_TRUE(RunAwaitable(dir_b.Sync(false, &error))) << error;
  ASSERT_EQ(RunAwaitable(store_a->Create(Record("shared", "sk-shared"))), WriteStatus::kOk);
  ASSERT_TRUE(RunAwaitable(dir_b.Sync(false, &error))) << error;
  EXPECT_EQ(dir_b.Current()->by_hash.count(Sha256Of("sk-shared")), 1u);
  ASSERT_EQ(RunAwaitable(store_a->Remove("shared")), WriteStatus::kOk);
  ASSERT_TRUE(RunAwaitable(dir_b.Sync(false, &error))) << error;
  EXPECT_EQ(dir_b.Current()->by_hash.count(Sha256Of("sk-shared")), 0u);
  // Removed from Redis too.
  testing::TestReply all = server_->Command({"HGETALL", "trl:keys:{keys}:records"});
  ASSERT_TRUE(all);
  EXPECT_EQ(all->elements, 0u);
}

// What Redis holds of a key while it exists: its record, with the secret's hash and never the
// secret, in any form.
TEST_F(RedisKeyStoreTest, OnlyTheSecretsHashReachesRedis) {
  auto client = Client();
  auto store = MakeRedisKeyStore(*client, Millis(2000));
  const std::string secret = "sk-never-in-redis-0123456789";
  ASSERT_EQ(RunAwaitable(store->Create(Record("hashed", secret))), WriteStatus::kOk);
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
    std::vector<std::string> command{"EVAL",  script,  "3",
                                     records, version, "trl:keys:{keys}:op:" + op};
    command.insert(command.end(), argv.begin(), argv.end());
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
    EXPECT_EQ(run(key_scripts::kReplace, "replace", {"k", record}), 2);
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
  EXPECT_EQ(RunAwaitable(store->Create(Record("x", "sk-x"))), WriteStatus::kError);
  EXPECT_EQ(directory.Current()->version, 0);
}

}  // namespace
}  // namespace trl
