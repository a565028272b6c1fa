// A redo log in data_dir: what changed since the last checkpoint, so that a crash (SIGKILL, OOM
// kill, power loss) forgets at most the last few milliseconds instead of everything since the
// last flush to SQLite or Redis.
//
// Files: <dir>/<name>-<number>.journal, numbered upwards across runs. A segment starts with a
// header record (its owner's label for it) followed by records; each record is framed as
// [u32 length][u32 CRC-32 of the bytes][bytes], little-endian. A record cut short by a crash, or
// whose checksum does not match, ends what is read of its segment: nothing after it is trusted.
//
// Writing: Append buffers; Commit writes the buffer to the current segment and syncs it to disk
// as the policy says (FsyncPolicy); Rotate commits and starts the next segment; DropThrough
// deletes the segments a checkpoint has made useless. The loss window of a process crash is the
// time between commits (the gateway commits every few milliseconds); of a machine crash, the
// policy's.
//
// Thread-safety: not thread-safe; its owner calls it from one thread at a time (the gateway: its
// scheduler thread). Blocking (file I/O): never on an I/O thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace trl {

// When a committed record reaches the disk itself, not only the kernel's page cache (which a
// killed process does not lose, but a machine that loses power does). As Redis's appendfsync.
enum class FsyncPolicy {
  kAlways,       // at every commit
  kEverySecond,  // at the first commit a second or more after the last sync
  kNo,           // when the kernel writes it back (usually within 30 s)
};

class Journal {
 public:
  // Opens `dir`/`name`-*.journal (creating `dir` when missing), remembers the segments found
  // there (Leftover) and starts a new segment numbered after them, headed by `header`. Null and
  // *error on failure.
  static std::unique_ptr<Journal> Open(const std::string& dir, std::string_view name,
                                       FsyncPolicy policy, std::string_view header,
                                       std::string* error);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // The segments an earlier run left, oldest first (read them with Read, drop them once applied).
  const std::vector<uint64_t>& Leftover() const { return leftover_; }
  // The segment being written.
  uint64_t Current() const { return current_; }

  // Segment `number`'s header, then each intact record in order. False and *error when the file
  // cannot be read (a torn or corrupt tail is not an error: reading stops there).
  bool Read(uint64_t number, const std::function<void(std::string_view header)>& on_header,
            const std::function<void(std::string_view record)>& on_record,
            std::string* error) const;

  void Append(std::string_view record);
  // Writes what was appended since the last commit; syncs per the policy. On failure the bytes
  // stay buffered for the next commit (up to kMaxBuffered, then they are dropped) and *error
  // says why.
  bool Commit(std::string* error);
  // Commits, then starts segment Current() + 1 headed by `header`. Returns the number of the
  // segment it closed, or nullopt (and *error) when the new segment could not be made (the old
  // one stays current).
  std::optional<uint64_t> Rotate(std::string_view header, std::string* error);
  // Deletes every segment numbered up to `number`, the current one excepted.
  void DropThrough(uint64_t number);
  // Bytes in the current segment.
  uint64_t CurrentSize() const { return current_size_ + buffer_.size(); }

  static constexpr size_t kMaxBuffered = 64 << 20;

 private:
  Journal(std::string dir, std::string name, FsyncPolicy policy);
  std::string PathOf(uint64_t number) const;
  bool StartSegment(uint64_t number, std::string_view header, std::string* error);
  bool Sync(std::string* error);

  std::string dir_, name_;
  FsyncPolicy policy_;
  std::vector<uint64_t> leftover_;
  uint64_t current_ = 0;
  int fd_ = -1;
  uint64_t current_size_ = 0;
  std::string buffer_;
  bool unsynced_ = false;
  std::chrono::steady_clock::time_point last_sync_;
};

// Little-endian fields of a journal record.
class RecordWriter {
 public:
  explicit RecordWriter(std::string& out) : out_(out) {}
  RecordWriter& Int(int64_t value);
  RecordWriter& Text(std::string_view text);  // length-prefixed

 private:
  std::string& out_;
};

// Reads what RecordWriter wrote; a read past the end sets Failed() and returns zero / empty.
class RecordReader {
 public:
  explicit RecordReader(std::string_view in) : in_(in) {}
  int64_t Int();
  std::string_view Text();
  bool Failed() const { return failed_; }
  bool AtEnd() const { return in_.empty(); }

 private:
  std::string_view in_;
  bool failed_ = false;
};

}  // namespace trl
