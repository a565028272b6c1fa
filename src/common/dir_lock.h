// One process at a time in a directory: an exclusive flock(2) on <dir>/gateway.lock, held for the
// life of the DirLock (the process's, for the gateway's data_dir), with the holder's pid written
// in the file so that the one refused can name it. The kernel drops the lock when the process
// ends, however it ends (a SIGKILL leaves no stale lock behind; the file itself stays).
//
// Thread-safety: Acquire and the destructor from one thread; the lock is the process's (an
// open file description): a second Acquire on the same directory fails, in this process too.
#pragma once

#include <memory>
#include <string>

namespace trl {

class DirLock {
 public:
  // Creates `dir` if needed and locks it. Null and *error when it cannot: "in use by another
  // process (pid 1234)" when another holds the lock, else why the file could not be made.
  static std::unique_ptr<DirLock> Acquire(const std::string& dir, std::string* error);
  ~DirLock();
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

  static constexpr const char* kFileName = "gateway.lock";
  // How the error of a directory another process holds starts.
  static constexpr const char* kInUse = "in use by another process";

 private:
  explicit DirLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace trl
