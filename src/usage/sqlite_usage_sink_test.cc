// What only the SQLite sink does: a file that outlives the process, retention by DropBefore,
// the directory it makes.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>

#include "fakes/temp_dir.h"
#include "usage/usage_test_support.h"

namespace trl {
namespace {

using namespace usage_testing;

class SqliteUsageSinkTest : public ::testing::Test {
 protected:
  std::unique_ptr<UsageSink> Open(const std::string& dir) {
    std::string error;
    auto sink = OpenSqliteUsageSink(dir, &error);
    EXPECT_TRUE(sink) << error;
    return sink;
  }

  static UsageResult All(UsageSink& sink) {
    return QueryRange(sink, kH0 - 400 * 86'400, kH0 + 86'400);
  }

  static bool Write(UsageSink& sink, const std::vector<UsageRow>& rows) {
    std::string error;
    bool ok = WriteRows(sink, rows, &error);
    EXPECT_TRUE(ok) << error;
    return ok;
  }

  testing::TempDir temp_{"trl-usage-"};
  const std::string dir_ = temp_.path();
};

TEST_F(SqliteUsageSinkTest, ReopeningKeepsTheRows) {
  {
    auto sink = Open(dir_);
    ASSERT_TRUE(sink);
    ASSERT_TRUE(Write(*sink, {{"k", "t", "m", kH0, {1, 2, 3, 4, 5, 6, 7, 8, 9}}}));
  }
  auto sink = Open(dir_);
  ASSERT_TRUE(sink);
  ASSERT_TRUE(Write(*sink, {{"k", "t", "m", kH0, {1, 1, 1, 1, 1, 1, 1, 1, 1}}}));
  UsageResult r = All(*sink);
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0].counts, (UsageCounts{2, 3, 4, 5, 6, 7, 8, 9, 10}));
}

// A usage.db made by the version before cost and cached tokens (its schema, verbatim): opening
// adds the missing columns, 0 in the rows there; the rows then add up as any other.
TEST_F(SqliteUsageSinkTest, MigratesATableOfTheFirstVersion) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ + "/usage.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, R"sql(
CREATE TABLE usage (
  key TEXT NOT NULL,
  tenant TEXT NOT NULL,
  model TEXT NOT NULL,
  hour INTEGER NOT NULL,
  requests INTEGER NOT NULL DEFAULT 0,
  prompt_tokens INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0,
  rejected_tokens INTEGER NOT NULL DEFAULT 0,
  rejected_requests INTEGER NOT NULL DEFAULT 0,
  rejected_concurrency INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (key, tenant, model, hour)
) WITHOUT ROWID;
CREATE INDEX usage_by_hour ON usage (hour);
INSERT INTO usage VALUES ('k', 't', 'm', 1795867200, 1, 2, 3, 4, 5, 6);
INSERT INTO usage VALUES ('j', '', 'm', 1795867200, 1, 0, 0, 0, 0, 0);
)sql",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);

  {
    auto sink = Open(dir_);
    ASSERT_TRUE(sink);
    UsageResult r = All(*sink);
    ASSERT_TRUE(r.ok) << r.error;
    ASSERT_EQ(r.rows.size(), 2u);
    EXPECT_EQ(r.rows[1].key, "k");
    EXPECT_EQ(r.rows[1].counts, (UsageCounts{1, 2, 3, 4, 5, 6, 0, 0, 0}));
    ASSERT_TRUE(Write(*sink, {{"k", "t", "m", kH0, {1, 1, 1, 1, 1, 1, 7, 600'000, 2}}}));
  }
  auto sink = Open(dir_);  // opened again: migrated already, nothing to add
  ASSERT_TRUE(sink);
  UsageResult r = All(*sink);
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_EQ(r.rows[1].counts, (UsageCounts{2, 3, 4, 5, 6, 7, 7, 600'000, 2}));
  EXPECT_EQ(r.total.rejected_spend, 2);
}

// A usage.db made by the version before users were counted (its schema, verbatim): opening
// rebuilds the table with the user in its primary key, the rows there as rows without a user,
// the hour index kept; rows of users then sit beside them.
TEST_F(SqliteUsageSinkTest, MigratesATableWithoutUsers) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ + "/usage.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, R"sql(
CREATE TABLE usage (
  key TEXT NOT NULL,
  tenant TEXT NOT NULL,
  model TEXT NOT NULL,
  hour INTEGER NOT NULL,
  requests INTEGER NOT NULL DEFAULT 0,
  prompt_tokens INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0,
  rejected_tokens INTEGER NOT NULL DEFAULT 0,
  rejected_requests INTEGER NOT NULL DEFAULT 0,
  rejected_concurrency INTEGER NOT NULL DEFAULT 0,
  cached_tokens INTEGER NOT NULL DEFAULT 0,
  cost INTEGER NOT NULL DEFAULT 0,
  rejected_spend INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (key, tenant, model, hour)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS usage_by_hour ON usage (hour);
INSERT INTO usage VALUES ('k', 't', 'm', 1795867200, 1, 2, 3, 4, 5, 6, 7, 8, 9);
INSERT INTO usage VALUES ('j', '', 'm', 1795867200, 1, 0, 0, 0, 0, 0, 0, 0, 0);
)sql",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);

  {
    auto sink = Open(dir_);
    ASSERT_TRUE(sink);
    ASSERT_TRUE(Write(*sink, {{"k", "t", "m", kH0, {1, 1, 1, 1, 1, 1, 1, 1, 1}},
                              {"k", "t", "m", kH0, {1, 5, 5, 0, 0, 0, 0, 0, 0}, "alice"}}));
  }
  auto sink = Open(dir_);  // opened again: migrated already
  ASSERT_TRUE(sink);
  UsageResult r = QueryUsers(*sink);
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(r.rows.size(), 3u);
  EXPECT_EQ(r.rows[0].key, "j");
  EXPECT_EQ(r.rows[0].user, "");
  EXPECT_EQ(r.rows[1].key, "k");
  EXPECT_EQ(r.rows[1].user, "");
  EXPECT_EQ(r.rows[1].counts, (UsageCounts{2, 3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(r.rows[2].user, "alice");
  EXPECT_EQ(r.rows[2].counts, (UsageCounts{1, 5, 5, 0, 0, 0}));

  ASSERT_EQ(sqlite3_open_v2((dir_ + "/usage.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr),
            SQLITE_OK);
  auto text_of = [db](const char* sql) {
    sqlite3_stmt* stmt = nullptr;
    std::string out;
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) == SQLITE_OK) {
      while (sqlite3_step(stmt) == SQLITE_ROW) {
        out += reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
        out += ';';
      }
    }
    sqlite3_finalize(stmt);
    return out;
  };
  EXPECT_EQ(text_of("SELECT name FROM pragma_table_info('usage') WHERE pk > 0 ORDER BY pk"),
            "key;tenant;model;user;hour;");
  EXPECT_EQ(text_of("SELECT name FROM sqlite_master WHERE tbl_name = 'usage' AND type = 'index' "
                    "AND sql IS NOT NULL"),
            "usage_by_hour;");
  EXPECT_EQ(text_of("SELECT name FROM sqlite_master WHERE name LIKE 'usage%' AND type = 'table'"),
            "usage;");
  sqlite3_close(db);
}

TEST_F(SqliteUsageSinkTest, UsesWalInUsageDb) {
  auto sink = Open(dir_);
  ASSERT_TRUE(sink);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2((dir_ + "/usage.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr),
            SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "wal");
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

TEST_F(SqliteUsageSinkTest, DropBeforeRemovesOlderHours) {
  auto sink = Open(dir_);
  ASSERT_TRUE(sink);
  ASSERT_TRUE(Write(*sink, {{"k", "", "m", kH0 - 7200, {1, 0, 0, 0, 0, 0}},
                            {"j", "", "m", kH0 - 7200, {1, 0, 0, 0, 0, 0}},
                            {"k", "", "m", kH0 - 3600, {1, 0, 0, 0, 0, 0}},
                            {"k", "", "m", kH0, {1, 0, 0, 0, 0, 0}}}));
  int64_t removed = -1;
  std::string error;
  ASSERT_TRUE(RunAwaitable(sink->DropBefore(kH0 - 3600, &removed, &error))) << error;
  EXPECT_EQ(removed, 2);
  UsageResult r = All(*sink);
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_EQ(r.rows[0].start, kH0 - 3600);
  ASSERT_TRUE(RunAwaitable(sink->DropBefore(kH0 - 3600, nullptr, &error))) << error;
  ASSERT_TRUE(RunAwaitable(sink->DropBefore(kH0 - 3600, &removed, &error))) << error;
  EXPECT_EQ(removed, 0);
}

TEST_F(SqliteUsageSinkTest, MakesTheDataDirectory) {
  auto sink = Open(dir_ + "/a/b");
  ASSERT_TRUE(sink);
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/a/b/usage.db"));
}

TEST_F(SqliteUsageSinkTest, AnUnusableDirectoryIsAnError) {
  std::ofstream(dir_ + "/file") << "not a directory";
  std::string error;
  EXPECT_FALSE(OpenSqliteUsageSink(dir_ + "/file", &error));
  EXPECT_NE(error.find(dir_ + "/file"), std::string::npos) << error;
}

}  // namespace
}  // namespace trl
