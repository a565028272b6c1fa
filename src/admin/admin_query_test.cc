#include "admin/admin_query.h"

#include <gtest/gtest.h>

namespace trl {
namespace {

std::span<const std::string_view> Accepted(std::string_view path) {
  auto accepted = AcceptedQueryParams(path);
  EXPECT_TRUE(accepted) << path;
  return accepted.value_or(std::span<const std::string_view>());
}

AdminQueryError ErrorOf(std::string_view query, std::string_view path) {
  auto read = ReadAdminQuery(query, Accepted(path), "GET " + std::string(path));
  const auto* error = std::get_if<AdminQueryError>(&read);
  EXPECT_TRUE(error) << query;
  return error ? *error : AdminQueryError{};
}

TEST(AdminQueryTest, EveryAdminRouteHasItsList) {
  EXPECT_EQ(Accepted("/admin/v1/reload").size(), 1u);
  EXPECT_TRUE(Accepted("/admin/v1/models").empty());
  EXPECT_TRUE(Accepted("/admin/v1/keys").empty());
  EXPECT_TRUE(Accepted("/admin/v1/keys/team-a/limits").empty());
  EXPECT_EQ(Accepted("/admin/v1/usage").size(), 9u);
  EXPECT_TRUE(Accepted("/admin/v1/tenants").empty());
  EXPECT_TRUE(Accepted("/admin/v1/tenants/acme/reset").empty());
  EXPECT_FALSE(AcceptedQueryParams("/admin/v1/nothing"));
  EXPECT_FALSE(AcceptedQueryParams("/admin/v1/keysx"));
}

TEST(AdminQueryTest, UnknownParameterNamesItAndWhatTheRouteAccepts) {
  AdminQueryError e = ErrorOf("keys=a", "/admin/v1/usage");
  EXPECT_EQ(e.param, "keys");
  EXPECT_EQ(e.message,
            "Unknown query parameter 'keys' on GET /admin/v1/usage; it accepts: key, tenant, "
            "model, from, to, granularity, format, group_by, user.");
  e = ErrorOf("verbose", "/admin/v1/models");
  EXPECT_EQ(e.message,
            "Unknown query parameter 'verbose' on GET /admin/v1/models; it accepts none.");
  // Names are decoded before they are compared, and compared exactly.
  EXPECT_EQ(ErrorOf("Key=a", "/admin/v1/usage").param, "Key");
  EXPECT_EQ(ErrorOf("%6Bey=a&%6Bey=b", "/admin/v1/usage").message,
            "The query parameter 'key' is given more than once.");
  EXPECT_EQ(ErrorOf("a=%zz", "/admin/v1/keys").param, "query");
}

TEST(AdminQueryTest, KnownParametersAreReadDecoded) {
  auto read = ReadAdminQuery("key=team%2Da&&from=2026-01-01T00:00:00+01:00&",
                             Accepted("/admin/v1/usage"), "GET /admin/v1/usage");
  const auto* query = std::get_if<AdminQuery>(&read);
  ASSERT_TRUE(query);
  EXPECT_EQ(query->Find("key"), "team-a");
  EXPECT_EQ(query->Find("from"), "2026-01-01T00:00:00+01:00");
  EXPECT_FALSE(query->Find("to"));
  EXPECT_TRUE(std::holds_alternative<AdminQuery>(
      ReadAdminQuery("", Accepted("/admin/v1/keys"), "GET /admin/v1/keys")));
}

}  // namespace
}  // namespace trl
