// ManagedKeys: lookups, changes that share what they do not touch, and what a key costs in
// memory (issue 26 point 11: at most 1 KiB per key with 100,000 keys).
#include "keys/managed_keys.h"

#include <gtest/gtest.h>
#include <malloc.h>

#include <string>

#include "common/crypto.h"
#include "fakes/key_record_builders.h"
#include "fakes/limit_builders.h"

namespace trl {
namespace {

// A key as one is made per end user: a name, a tenant, two limits of its own.
KeyRecord UserKey(const std::string& name) {
  KeyRecord r = testing::MadeKey(name);
  r.key.tenant = "acme";
  r.key.limits = {testing::Tokens(100000, Millis(60000)), testing::Requests(600, Millis(60000))};
  r.key.limits_set = true;
  r.created = r.updated = 1'700'000'000;
  return r;
}

std::vector<KeyRecord> Records(int count, const std::string& prefix = "user-") {
  std::vector<KeyRecord> records;
  records.reserve(count);
  for (int i = 0; i < count; ++i) records.push_back(UserKey(prefix + std::to_string(i)));
  return records;
}

TEST(ManagedKeysTest, FindsEveryKeyByHashAndByName) {
  auto keys = ManagedKeys::FromRecords(7, Records(1000));
  EXPECT_EQ(keys->Version(), 7);
  EXPECT_EQ(keys->Size(), 1000u);
  for (int i = 0; i < 1000; ++i) {
    const std::string name = "user-" + std::to_string(i);
    auto by_name = keys->FindByName(name);
    ASSERT_TRUE(by_name) << name;
    EXPECT_EQ(keys->FindByHash(Sha256Of("sk-" + name)), by_name);
  }
  EXPECT_FALSE(keys->FindByName("user-1000"));
  EXPECT_FALSE(keys->FindByHash(Sha256Of("sk-user-1000")));
  auto sorted = keys->SortedByName();
  ASSERT_EQ(sorted.size(), 1000u);
  EXPECT_TRUE(std::is_sorted(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return a->key.name < b->key.name;
  }));
  size_t visited = 0;
  keys->ForEach([&](const KeyRecord& record) {
    ++visited;
    EXPECT_EQ(keys->FindByName(record.key.name).get(), &record);
  });
  EXPECT_EQ(visited, 1000u);
  EXPECT_TRUE(ManagedKeys().Empty());
  EXPECT_EQ(ManagedKeys().Version(), -1);
}

TEST(ManagedKeysTest, ChangesMakeANewSetAndLeaveTheOldOneAsItWas) {
  auto before = ManagedKeys::FromRecords(1, Records(100));
  KeyRecord replaced = UserKey("user-5");
  replaced.key.key_sha256 = Sha256Of("sk-rotated");
  const std::vector<std::string> removed = {"user-7", "no-such-key"};
  auto after = before->WithChanges(4, {UserKey("new"), replaced}, removed);

  EXPECT_EQ(after->Version(), 4);
  EXPECT_EQ(after->Size(), 100u);  // one made, one removed
  EXPECT_TRUE(after->FindByHash(Sha256Of("sk-new")));
  EXPECT_FALSE(after->FindByName("user-7"));
  EXPECT_FALSE(after->FindByHash(Sha256Of("sk-user-7")));
  EXPECT_FALSE(after->FindByHash(Sha256Of("sk-user-5"))) << "a replaced key's old hash goes";
  EXPECT_EQ(after->FindByHash(Sha256Of("sk-rotated")), after->FindByName("user-5"));
  // Untouched keys are the same records, not copies.
  EXPECT_EQ(after->FindByName("user-9"), before->FindByName("user-9"));

  EXPECT_EQ(before->Version(), 1);
  EXPECT_EQ(before->Size(), 100u);
  EXPECT_TRUE(before->FindByName("user-7"));
  EXPECT_FALSE(before->FindByName("new"));
  EXPECT_TRUE(before->FindByHash(Sha256Of("sk-user-5")));
}

TEST(ManagedKeysTest, TheLastRecordOfANameWins) {
  KeyRecord second = UserKey("twice");
  second.updated = 2;
  auto keys = ManagedKeys::FromRecords(1, {UserKey("twice"), second});
  EXPECT_EQ(keys->Size(), 1u);
  EXPECT_EQ(keys->FindByName("twice")->updated, 2);
}

TEST(ManagedKeysTest, ARotatedKeyIsFoundByBothSecretsUntilItChangesAgain) {
  KeyRecord rotated = UserKey("user-1");
  rotated.key.key_sha256 = Sha256Of("sk-new");
  rotated.previous_sha256 = Sha256Of("sk-user-1");
  rotated.previous_until = 1'700'003'600;
  auto keys = ManagedKeys::FromRecords(1, Records(10))->WithChanges(2, {rotated}, {});
  EXPECT_EQ(keys->Size(), 10u);
  EXPECT_EQ(keys->FindByHash(Sha256Of("sk-new")), keys->FindByName("user-1"));
  EXPECT_EQ(keys->FindByHash(Sha256Of("sk-user-1")), keys->FindByName("user-1"));

  // Rotated again: the first secret goes, the second is the previous one now.
  KeyRecord again = rotated;
  again.key.key_sha256 = Sha256Of("sk-newer");
  again.previous_sha256 = Sha256Of("sk-new");
  auto next = keys->WithChanges(3, {again}, {});
  EXPECT_FALSE(next->FindByHash(Sha256Of("sk-user-1")));
  EXPECT_TRUE(next->FindByHash(Sha256Of("sk-new")));
  EXPECT_TRUE(next->FindByHash(Sha256Of("sk-newer")));

  // Removed: neither secret finds it.
  const std::vector<std::string> removed = {"user-1"};
  auto gone = next->WithChanges(4, {}, removed);
  EXPECT_FALSE(gone->FindByHash(Sha256Of("sk-new")));
  EXPECT_FALSE(gone->FindByHash(Sha256Of("sk-newer")));
  EXPECT_EQ(gone->Size(), 9u);
}

size_t Allocated() {
  struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;  // small blocks, and large ones mapped on their own
}

// Issue 26 point 11: 100,000 keys in at most 1 KiB each, and a change to them costs a copy of
// the shards it lands in (a 256th of the set each), not of the set.
TEST(ManagedKeysTest, AKeyTakesUnderOneKibibyteAndAChangeCopiesLittle) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "mallinfo2 does not see the sanitizers' allocator";
#endif
  constexpr int kKeys = 100'000;
  const size_t before = Allocated();
  auto keys = ManagedKeys::FromRecords(1, Records(kKeys));
  const size_t loaded = Allocated() - before;
  EXPECT_LE(loaded / kKeys, 1024u);
  RecordProperty("bytes_per_key", std::to_string(loaded / kKeys));

  auto next = keys->WithChanges(2, {UserKey("one-more")}, {});
  const size_t changed = Allocated() - before - loaded;
  EXPECT_LT(changed, loaded / 64);
  RecordProperty("bytes_per_change", std::to_string(changed));
  EXPECT_EQ(next->Size(), size_t{kKeys + 1});
}

}  // namespace
}  // namespace trl
