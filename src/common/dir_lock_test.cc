#include "common/dir_lock.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "fakes/temp_dir.h"

namespace trl {
namespace {

using ::testing::HasSubstr;

TEST(DirLock, CreatesTheDirectoryAndWritesThePid) {
  testing::TempDir tmp;
  const std::string dir = tmp.path() + "/data";
  std::string error;
  auto lock = DirLock::Acquire(dir, &error);
  ASSERT_NE(lock, nullptr) << error;
  std::ifstream in(dir + "/" + DirLock::kFileName);
  std::string pid;
  std::getline(in, pid);
  EXPECT_EQ(pid, std::to_string(::getpid()));
}

TEST(DirLock, ASecondLockIsRefusedNamingTheHolder) {
  testing::TempDir tmp;
  std::string error;
  auto first = DirLock::Acquire(tmp.path(), &error);
  ASSERT_NE(first, nullptr) << error;
  EXPECT_EQ(DirLock::Acquire(tmp.path(), &error), nullptr);
  EXPECT_EQ(error, "in use by another process (pid " + std::to_string(::getpid()) + ")");
}

TEST(DirLock, ReleasedWhenDestroyed) {
  testing::TempDir tmp;
  std::string error;
  auto first = DirLock::Acquire(tmp.path(), &error);
  ASSERT_NE(first, nullptr) << error;
  first.reset();
  EXPECT_NE(DirLock::Acquire(tmp.path(), &error), nullptr) << error;
}

TEST(DirLock, ADirectoryThatCannotBeMadeIsAnError) {
  testing::TempDir tmp;
  const std::string file = tmp.path() + "/file";
  std::ofstream(file) << "x";
  std::string error;
  EXPECT_EQ(DirLock::Acquire(file + "/data", &error), nullptr);
  EXPECT_THAT(error, HasSubstr("cannot create it: "));
}

}  // namespace
}  // namespace trl
