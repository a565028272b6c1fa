#include "keys/key_record.h"

#include <gtest/gtest.h>

#include "common/crypto.h"

namespace trl {
namespace {

KeyRecord Sample() {
  KeyRecord r;
  r.key.name = "team-a";
  r.key.key_sha256 = Sha256Of("sk-secret");
  r.key.tenant = "acme";
  r.key.models = {"m1", "m2"};
  r.key.limits = {{LimitKind::kTokens, 1000, Millis(60'000), false, ""},
                  {LimitKind::kRequests, 5, Millis(86'400'000), true, "m1"},
                  {LimitKind::kConcurrent, 2, Millis(0), false, ""}};
  r.key.limits_set = true;
  r.created = 1'700'000'000;
  r.updated = 1'700'000'100;
  return r;
}

TEST(KeyRecord, RoundTrip) {
  KeyRecord r = Sample();
  std::string json = SerializeKeyRecord(r);
  EXPECT_EQ(json.find("sk-secret"), std::string::npos);
  EXPECT_NE(json.find(ToHex(r.key.key_sha256)), std::string::npos);
  auto back = ParseKeyRecord(json);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->key.name, "team-a");
  EXPECT_EQ(back->key.key_sha256, r.key.key_sha256);
  EXPECT_EQ(back->key.tenant, "acme");
  EXPECT_EQ(back->key.models, r.key.models);
  EXPECT_EQ(back->key.limits, r.key.limits);
  EXPECT_TRUE(back->key.limits_set);
  EXPECT_EQ(back->created, r.created);
  EXPECT_EQ(back->updated, r.updated);
}

TEST(KeyRecord, ExpiryRevisionAndPreviousSecretRoundTrip) {
  KeyRecord r = Sample();
  r.key.expires_at = 1'800'000'000;
  r.revision = 3;
  r.previous_sha256 = Sha256Of("sk-old");
  r.previous_until = 1'700'003'600;
  std::string json = SerializeKeyRecord(r);
  EXPECT_EQ(json.find("sk-old"), std::string::npos);
  auto back = ParseKeyRecord(json);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->key.expires_at, 1'800'000'000);
  EXPECT_EQ(back->revision, 3);
  EXPECT_EQ(back->previous_sha256, r.previous_sha256);
  EXPECT_EQ(back->previous_until, 1'700'003'600);
}

TEST(KeyRecord, ARecordWithoutTheNewerFieldsHasNone) {
  // As written before keys could expire or rotate.
  auto back = ParseKeyRecord(R"({"name":"a","sha256":")" + ToHex(Sha256Of("s")) +
                             R"(","tenant":"","models":[],"created":1,"updated":2})");
  ASSERT_TRUE(back);
  EXPECT_EQ(back->key.expires_at, 0);
  EXPECT_EQ(back->revision, 0);
  EXPECT_EQ(back->previous_until, 0);
  EXPECT_EQ(SerializeKeyRecord(*back).find("rev"), std::string::npos);
}

TEST(KeyRecord, RejectsBadNewerFields) {
  const std::string base = R"({"name":"a","sha256":")" + ToHex(Sha256Of("s")) +
                           R"(","tenant":"","models":[],"created":1,"updated":2,)";
  EXPECT_FALSE(ParseKeyRecord(base + R"("rev":-1})"));
  EXPECT_FALSE(ParseKeyRecord(base + R"("expires_at":"2027"})"));
  EXPECT_FALSE(ParseKeyRecord(base + R"("previous_until":5})"));  // no previous_sha256
  EXPECT_FALSE(ParseKeyRecord(base + R"("previous_until":5,"previous_sha256":"zz"})"));
}

TEST(KeyRecord, NoLimitsMeansDefaults) {
  KeyRecord r = Sample();
  r.key.limits.clear();
  r.key.limits_set = false;
  auto back = ParseKeyRecord(SerializeKeyRecord(r));
  ASSERT_TRUE(back);
  EXPECT_FALSE(back->key.limits_set);
  // An explicit empty list is kept: the key has no limits at all.
  r.key.limits_set = true;
  back = ParseKeyRecord(SerializeKeyRecord(r));
  ASSERT_TRUE(back);
  EXPECT_TRUE(back->key.limits_set);
  EXPECT_TRUE(back->key.limits.empty());
}

TEST(KeyRecord, LimitsInTheConfigsForm) {
  EXPECT_EQ(
      boost::json::serialize(LimitsToJson(Sample().key.limits)),
      R"([{"tokens":1000,"per":"1m"},{"requests":5,"per":"1d","reset":"calendar","model":"m1"},{"concurrent":2}])");
}

TEST(KeyRecord, RejectsForeignText) {
  EXPECT_FALSE(ParseKeyRecord(""));
  EXPECT_FALSE(ParseKeyRecord("[]"));
  EXPECT_FALSE(ParseKeyRecord(R"({"name":"a"})"));
  std::string bad_name = SerializeKeyRecord(Sample());
  bad_name.replace(bad_name.find("team-a"), 6, "../x");
  EXPECT_FALSE(ParseKeyRecord(bad_name));
  std::string bad_hash = SerializeKeyRecord(Sample());
  bad_hash.replace(bad_hash.find(ToHex(Sample().key.key_sha256)), 4, "zzzz");
  EXPECT_FALSE(ParseKeyRecord(bad_hash));
}

}  // namespace
}  // namespace trl
