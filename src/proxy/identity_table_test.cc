#include "proxy/identity_table.h"

#include <gtest/gtest.h>

namespace trl {
namespace {

TEST(IdentityTable, NewNamesUpToTheBoundThenOnlyKnownOnes) {
  IdentityTable table;
  EXPECT_TRUE(table.Admit("alice", 2));
  EXPECT_TRUE(table.Admit("alice", 2));  // known: not counted twice
  EXPECT_TRUE(table.Admit("bob", 2));
  EXPECT_EQ(table.Size(), 2u);
  EXPECT_FALSE(table.Admit("carol", 2));
  EXPECT_TRUE(table.Admit("bob", 2));
  EXPECT_TRUE(table.Admit("alice", 1));  // a lower bound keeps the names already in
  EXPECT_TRUE(table.Admit("carol", 3));  // a higher one lets new names in again
  EXPECT_EQ(table.Size(), 3u);
}

}  // namespace
}  // namespace trl
