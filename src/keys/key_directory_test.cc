// KeyDirectory over an in-memory key store, and the clash check a reload runs against it.
#include "keys/key_directory.h"

#include <gtest/gtest.h>

#include "common/crypto.h"
#include "fakes/fake_key_store.h"
#include "fakes/run_awaitable.h"

namespace trl {
namespace {

KeyRecord Record(const std::string& name) {
  KeyRecord r;
  r.key.name = name;
  r.key.key_sha256 = Sha256Of("sk-" + name);
  return r;
}

ApiKeyConfig ConfigKey(const std::string& name) {
  ApiKeyConfig key;
  key.name = name;
  return key;
}

TEST(KeyDirectoryTest, SyncLoadsOnlyWhenTheVersionChanged) {
  FakeKeyStore store;
  KeyDirectory keys(store);
  EXPECT_EQ(keys.Current()->version, -1);  // never loaded

  ASSERT_TRUE(RunAwaitable(keys.Sync(false, nullptr)));
  EXPECT_EQ(store.loads, 1);
  EXPECT_EQ(keys.Current()->version, 0);

  ASSERT_TRUE(RunAwaitable(keys.Sync(false, nullptr)));
  EXPECT_EQ(store.loads, 1) << "same version: nothing to load";

  ASSERT_EQ(RunAwaitable(store.Create(Record("a"))), KeyStore::WriteStatus::kOk);
  ASSERT_TRUE(RunAwaitable(keys.Sync(false, nullptr)));
  EXPECT_EQ(store.loads, 2);
  auto current = keys.Current();
  EXPECT_EQ(current->version, 1);
  ASSERT_TRUE(current->by_name.contains("a"));
  EXPECT_TRUE(current->by_hash.contains(Sha256Of("sk-a")));

  ASSERT_TRUE(RunAwaitable(keys.Sync(true, nullptr)));
  EXPECT_EQ(store.loads, 3) << "forced: loaded although the version is the same";
}

TEST(KeyDirectoryTest, AFailedSyncKeepsTheKeysLoadedLast) {
  FakeKeyStore store;
  ASSERT_EQ(RunAwaitable(store.Create(Record("a"))), KeyStore::WriteStatus::kOk);
  KeyDirectory keys(store);
  ASSERT_TRUE(RunAwaitable(keys.Sync(true, nullptr)));

  store.failing = true;
  std::string error;
  EXPECT_FALSE(RunAwaitable(keys.Sync(false, &error)));
  EXPECT_EQ(error, "the key store did not answer");
  EXPECT_FALSE(RunAwaitable(keys.Sync(true, &error)));
  EXPECT_EQ(error, "fake key store: failing");
  EXPECT_EQ(keys.Current()->version, 1);
  EXPECT_TRUE(keys.Current()->by_name.contains("a"));
}

TEST(NameClashesTest, NamesEveryConfigKeyNamedLikeAnApiKey) {
  ManagedKeys managed;
  for (const char* name : {"made-1", "made-2"}) {
    managed.by_name[name] = std::make_shared<const KeyRecord>(Record(name));
  }
  const std::vector<ApiKeyConfig> config_keys = {ConfigKey("made-2"), ConfigKey("team-a"),
                                                 ConfigKey("made-1")};
  EXPECT_EQ(NameClashes(config_keys, managed),
            "api_keys: 'made-2' is the name of a key made through the admin API; rename one of "
            "them\n"
            "api_keys: 'made-1' is the name of a key made through the admin API; rename one of "
            "them\n");
}

TEST(NameClashesTest, NoneWhenTheNamesDiffer) {
  ManagedKeys managed;
  managed.by_name["made"] = std::make_shared<const KeyRecord>(Record("made"));
  const std::vector<ApiKeyConfig> config_keys = {ConfigKey("Made"), ConfigKey("made-2")};
  EXPECT_EQ(NameClashes(config_keys, managed), "");
  EXPECT_EQ(NameClashes({}, managed), "");
}

}  // namespace
}  // namespace trl
