#include "proxy/authenticator.h"

#include <gtest/gtest.h>

#include "common/crypto.h"

namespace trl {
namespace {

Config TwoKeys() {
  Config c;
  c.tenants.push_back({"acme", {{LimitKind::kTokens, 500, Millis(60'000)}}});
  ApiKeyConfig a;
  a.name = "team-a";
  a.key_sha256 = Sha256Of("sk-a");
  a.tenant = "acme";
  a.models = {"m1"};
  a.limits = {{LimitKind::kRequests, 5, Millis(60'000)}};
  a.limits_set = true;
  c.api_keys.push_back(a);
  ApiKeyConfig b;
  b.name = "team-b";
  b.key_sha256 = Sha256Of("sk-b");
  c.api_keys.push_back(b);
  c.default_limits = {{LimitKind::kTokens, 100, Millis(60'000)}};
  return c;
}

http::Request WithHeader(std::string_view name, std::string_view value) {
  http::Request r{http::bhttp::verb::post, "/v1/chat/completions", 11};
  r.set(name, value);
  return r;
}

TEST(Authenticator, BearerKeyFindsItsKeyTenantAndLimits) {
  Config c = TwoKeys();
  Authenticator auth(c);
  auto id = auth.Authenticate(WithHeader("authorization", "Bearer sk-a"));
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->name, "team-a");
  EXPECT_EQ(id->tenant, "acme");
  ASSERT_EQ(id->limits.size(), 1u);
  EXPECT_EQ(id->limits[0].kind, LimitKind::kRequests);
  ASSERT_EQ(id->tenant_limits.size(), 1u);
  EXPECT_EQ(id->tenant_limits[0].amount, 500);
  EXPECT_TRUE(Authenticator::ModelAllowed(*id, "m1"));
  EXPECT_FALSE(Authenticator::ModelAllowed(*id, "m2"));
}

TEST(Authenticator, KeyWithoutLimitsGetsDefaultLimitsAndEveryModel) {
  Config c = TwoKeys();
  Authenticator auth(c);
  auto id = auth.Authenticate(WithHeader("authorization", "bearer sk-b"));
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->name, "team-b");
  ASSERT_EQ(id->limits.size(), 1u);
  EXPECT_EQ(id->limits[0].amount, 100);
  EXPECT_TRUE(Authenticator::ModelAllowed(*id, "anything"));
}

TEST(Authenticator, MissingMalformedAndUnknownKeysAreRefused) {
  Config c = TwoKeys();
  Authenticator auth(c);
  http::Request none{http::bhttp::verb::post, "/v1/models", 11};
  EXPECT_FALSE(auth.Authenticate(none).has_value());
  EXPECT_FALSE(auth.Authenticate(WithHeader("authorization", "Bearer ")).has_value());
  EXPECT_FALSE(auth.Authenticate(WithHeader("authorization", "Basic sk-a")).has_value());
  EXPECT_FALSE(auth.Authenticate(WithHeader("authorization", "Bearer sk-c")).has_value());
}

TEST(Authenticator, TrustedHeaderNamesTheCaller) {
  Config c = TwoKeys();
  c.identity.source = IdentityConfig::Source::kHeader;
  c.identity.header = "x-user";
  Authenticator auth(c);
  // A configured key's name: that key's tenant and limits.
  auto known = auth.Authenticate(WithHeader("x-user", "team-a"));
  ASSERT_TRUE(known.has_value());
  EXPECT_EQ(known->tenant, "acme");
  EXPECT_EQ(known->limits[0].kind, LimitKind::kRequests);
  // Any other name: an identity of its own under default_limits.
  const http::Request alice = WithHeader("x-user", "alice");  // the name is a view into it
  auto other = auth.Authenticate(alice);
  ASSERT_TRUE(other.has_value());
  EXPECT_EQ(other->name, "alice");
  EXPECT_EQ(other->limits[0].amount, 100);
  // Bearer keys mean nothing in this mode; no header, no identity.
  EXPECT_FALSE(auth.Authenticate(WithHeader("authorization", "Bearer sk-a")).has_value());
}

// A header's value becomes a metric label, a usage row's key and a budget's name: only short
// printable names are identities (no spaces, quotes, backslashes, control or non-ASCII bytes,
// which would break a Prometheus scrape).
TEST(Authenticator, OnlyShortPrintableHeaderValuesAreIdentities) {
  Config c = TwoKeys();
  c.identity.source = IdentityConfig::Source::kHeader;
  c.identity.header = "x-user";
  Authenticator auth(c);
  for (const std::string& good : std::vector<std::string>{"alice@example.com", "team/alice",
                                                          "u-1.2_3:4+5=", std::string(128, 'a')}) {
    SCOPED_TRACE(good);
    const http::Request request = WithHeader("x-user", good);
    auto id = auth.Authenticate(request);
    ASSERT_TRUE(id.has_value());
    EXPECT_EQ(id->name, good);
  }
  for (const std::string& bad :
       std::vector<std::string>{"a b", "a\"b", "a\\b", "caf\xc3\xa9", "\xff", "a\tb", "a,b", "{x}",
                                std::string(129, 'a')}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(auth.Authenticate(WithHeader("x-user", bad)).has_value());
  }
}

}  // namespace
}  // namespace trl
