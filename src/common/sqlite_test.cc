#include "common/sqlite.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <vector>

namespace trl::sqlite {
namespace {

class SqliteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/trl_sqlite_test_XXXXXX";
    ASSERT_TRUE(::mkdtemp(templ));
    dir_ = templ;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Database OpenOrDie(const std::string& dir) {
    std::string error;
    std::optional<Database> db = Database::Open(dir, "test.db", &error);
    EXPECT_TRUE(db) << error;
    if (!db) std::abort();
    return std::move(*db);
  }

  std::vector<std::pair<int64_t, std::string>> Rows(Database& db) {
    std::string error;
    Statement select;
    EXPECT_TRUE(select.Prepare(db, "SELECT n, s FROM t ORDER BY n", &error)) << error;
    std::vector<std::pair<int64_t, std::string>> rows;
    while (select.Next() == Statement::Step::kRow) {
      rows.emplace_back(select.Int(0), std::string(select.Text(1)));
    }
    return rows;
  }

  std::string dir_;
};

TEST_F(SqliteTest, OpensInWalModeInADirectoryItMakes) {
  Database db = OpenOrDie(dir_ + "/a/b");
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/a/b/test.db"));
  std::string error;
  Statement mode;
  ASSERT_TRUE(mode.Prepare(db, "PRAGMA journal_mode", &error)) << error;
  ASSERT_EQ(mode.Next(), Statement::Step::kRow);
  EXPECT_EQ(mode.Text(0), "wal");
}

TEST_F(SqliteTest, BindsRunsAndReads) {
  Database db = OpenOrDie(dir_);
  std::string error;
  ASSERT_TRUE(db.Exec("CREATE TABLE t(n INTEGER, s TEXT)", &error)) << error;
  Statement insert;
  ASSERT_TRUE(
      insert.Prepare(db, "INSERT INTO t VALUES(?1, ?2)", &error, Statement::Lifetime::kPersistent))
      << error;
  for (int64_t n : {int64_t{1} << 40, int64_t{-2}}) {
    insert.Reset();
    insert.Bind(1, n);
    insert.BindText(2, n < 0 ? "minus|two" : "big");
    ASSERT_TRUE(insert.Run());
    EXPECT_EQ(db.Changes(), 1);
  }
  insert.Reset();  // no text bound: NULL, read back as ""
  insert.Bind(1, 7);
  ASSERT_TRUE(insert.Run());
  using Row = std::pair<int64_t, std::string>;
  EXPECT_EQ(Rows(db), (std::vector<Row>{{-2, "minus|two"}, {7, ""}, {int64_t{1} << 40, "big"}}));
}

TEST_F(SqliteTest, ErrorsNameTheFile) {
  Database db = OpenOrDie(dir_);
  std::string error;
  EXPECT_FALSE(db.Exec("SELEKT 1", &error));
  EXPECT_EQ(error.rfind("test.db: ", 0), 0u) << error;
  Statement bad;
  EXPECT_FALSE(bad.Prepare(db, "SELECT * FROM missing", &error));
  EXPECT_EQ(error.rfind("test.db: prepare: ", 0), 0u) << error;
}

TEST_F(SqliteTest, ATransactionNotCommittedIsRolledBack) {
  Database db = OpenOrDie(dir_);
  std::string error;
  ASSERT_TRUE(db.Exec("CREATE TABLE t(n INTEGER, s TEXT)", &error)) << error;
  {
    Transaction tx(db, &error, "BEGIN IMMEDIATE");
    ASSERT_TRUE(tx.Began()) << error;
    ASSERT_TRUE(db.Exec("INSERT INTO t VALUES(1, 'gone')", &error)) << error;
  }
  EXPECT_TRUE(Rows(db).empty());
  {
    Transaction tx(db, &error);
    ASSERT_TRUE(db.Exec("INSERT INTO t VALUES(2, 'kept')", &error)) << error;
    ASSERT_TRUE(tx.Commit(&error)) << error;
  }
  EXPECT_EQ(Rows(db).size(), 1u);
}

TEST_F(SqliteTest, OpenFailsWhereTheDirectoryIsAFile) {
  const std::string file = dir_ + "/not_a_dir";
  std::FILE* f = std::fopen(file.c_str(), "w");
  ASSERT_TRUE(f);
  std::fclose(f);
  std::string error;
  EXPECT_FALSE(Database::Open(file, "test.db", &error));
  EXPECT_EQ(error.rfind(file + ": ", 0), 0u) << error;
}

}  // namespace
}  // namespace trl::sqlite
