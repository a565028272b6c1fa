#include "common/journal.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>

namespace trl {
namespace {

constexpr size_t kFrame = 8;  // u32 length + u32 CRC-32

void PutU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t GetU32(std::string_view in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(in[i])) << (8 * i);
  return v;
}

uint32_t Crc(std::string_view bytes) {
  return static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
}

void Frame(std::string& out, std::string_view record) {
  PutU32(out, static_cast<uint32_t>(record.size()));
  PutU32(out, Crc(record));
  out.append(record);
}

std::string Why(std::string_view what, const std::string& path) {
  return std::string(what) + " " + path + ": " + std::strerror(errno);
}

// The number in "<name>-<number>.journal", or nullopt for any other file.
std::optional<uint64_t> SegmentNumber(std::string_view file, std::string_view name) {
  constexpr std::string_view kSuffix = ".journal";
  if (file.size() <= name.size() + 1 + kSuffix.size() || !file.starts_with(name) ||
      file[name.size()] != '-' || !file.ends_with(kSuffix)) {
    return std::nullopt;
  }
  std::string_view digits =
      file.substr(name.size() + 1, file.size() - name.size() - 1 - kSuffix.size());
  uint64_t number = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), number);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return number;
}

// The number of bytes written: all of them, or fewer when write failed (errno says why).
size_t WriteAll(int fd, std::string_view bytes) {
  size_t written = 0;
  while (written < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  return written;
}

}  // namespace

Journal::Journal(std::string dir, std::string name, FsyncPolicy policy)
    : dir_(std::move(dir)), name_(std::move(name)), policy_(policy) {}

Journal::~Journal() {
  if (fd_ >= 0) ::close(fd_);
}

std::string Journal::PathOf(uint64_t number) const {
  return dir_ + "/" + name_ + "-" + std::to_string(number) + ".journal";
}

std::unique_ptr<Journal> Journal::Open(const std::string& dir, std::string_view name,
                                       FsyncPolicy policy, std::string_view header,
                                       std::string* error) {
  std::unique_ptr<Journal> journal(new Journal(dir, std::string(name), policy));
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::filesystem::directory_iterator files(dir, ec);
  if (ec) {
    if (error) *error = "cannot read " + dir + ": " + ec.message();
    return nullptr;
  }
  for (const auto& entry : files) {
    if (auto number = SegmentNumber(entry.path().filename().string(), name)) {
      journal->leftover_.push_back(*number);
    }
  }
  std::sort(journal->leftover_.begin(), journal->leftover_.end());
  const uint64_t next = journal->leftover_.empty() ? 1 : journal->leftover_.back() + 1;
  if (!journal->StartSegment(next, header, error)) return nullptr;
  return journal;
}

bool Journal::StartSegment(uint64_t number, std::string_view header, std::string* error) {
  const std::string path = PathOf(number);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (error) *error = Why("cannot create", path);
    return false;
  }
  std::string head;
  Frame(head, header);
  if (WriteAll(fd, head) != head.size()) {
    if (error) *error = Why("cannot write", path);
    ::close(fd);
    return false;
  }
  // The new name must outlive a machine crash too, or its records would vanish with it.
  if (policy_ != FsyncPolicy::kNo) {
    int dir_fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {
      ::fsync(dir_fd);
      ::close(dir_fd);
    }
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  current_ = number;
  current_size_ = head.size();
  unsynced_ = true;
  return true;
}

void Journal::Append(std::string_view record) { Frame(buffer_, record); }

bool Journal::Sync(std::string* error) {
  if (::fdatasync(fd_) != 0) {
    if (error) *error = Why("cannot sync", PathOf(current_));
    return false;
  }
  unsynced_ = false;
  last_sync_ = std::chrono::steady_clock::now();
  return true;
}

bool Journal::Commit(std::string* error) {
  if (!buffer_.empty()) {
    const size_t written = WriteAll(fd_, buffer_);
    current_size_ += written;
    // Only the bytes not written are written again: a record is never repeated in part.
    buffer_.erase(0, written);
    if (!buffer_.empty()) {
      if (error) *error = Why("cannot write", PathOf(current_));
      // A disk that stays full must not take the gateway's memory with it.
      if (buffer_.size() > kMaxBuffered) buffer_.clear();
      return false;
    }
    unsynced_ = true;
  }
  if (!unsynced_) return true;
  switch (policy_) {
    case FsyncPolicy::kAlways:
      return Sync(error);
    case FsyncPolicy::kEverySecond:
      if (std::chrono::steady_clock::now() - last_sync_ >= std::chrono::seconds(1)) {
        return Sync(error);
      }
      return true;
    case FsyncPolicy::kNo:
      return true;
  }
  return true;
}

std::optional<uint64_t> Journal::Rotate(std::string_view header, std::string* error) {
  if (!Commit(error)) return std::nullopt;
  // What the closed segment holds reaches the disk before the segment that follows it.
  if (policy_ != FsyncPolicy::kNo && unsynced_ && !Sync(error)) return std::nullopt;
  const uint64_t closed = current_;
  if (!StartSegment(closed + 1, header, error)) return std::nullopt;
  return closed;
}

void Journal::DropThrough(uint64_t number) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
    auto n = SegmentNumber(entry.path().filename().string(), name_);
    if (n && *n <= number && *n != current_) std::filesystem::remove(entry.path(), ec);
  }
  std::erase_if(leftover_, [number](uint64_t n) { return n <= number; });
}

bool Journal::Read(uint64_t number, const std::function<void(std::string_view)>& on_header,
                   const std::function<void(std::string_view)>& on_record,
                   std::string* error) const {
  const std::string path = PathOf(number);
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    if (error) *error = Why("cannot open", path);
    return false;
  }
  const std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  std::string_view rest = bytes;
  for (bool first = true; rest.size() >= kFrame; first = false) {
    const uint32_t length = GetU32(rest);
    if (rest.size() - kFrame < length) break;
    std::string_view record = rest.substr(kFrame, length);
    if (Crc(record) != GetU32(rest.substr(4))) break;
    (first ? on_header : on_record)(record);
    rest.remove_prefix(kFrame + length);
  }
  return true;
}

RecordWriter& RecordWriter::Int(int64_t value) {
  const auto u = static_cast<uint64_t>(value);
  for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>((u >> (8 * i)) & 0xff));
  return *this;
}

RecordWriter& RecordWriter::Text(std::string_view text) {
  Int(static_cast<int64_t>(text.size()));
  out_.append(text);
  return *this;
}

int64_t RecordReader::Int() {
  if (in_.size() < 8) {
    failed_ = true;
    in_ = {};
    return 0;
  }
  uint64_t u = 0;
  for (int i = 0; i < 8; ++i) u |= static_cast<uint64_t>(static_cast<uint8_t>(in_[i])) << (8 * i);
  in_.remove_prefix(8);
  return static_cast<int64_t>(u);
}

std::string_view RecordReader::Text() {
  const int64_t length = Int();
  if (failed_ || length < 0 || static_cast<uint64_t>(length) > in_.size()) {
    failed_ = true;
    in_ = {};
    return {};
  }
  std::string_view text = in_.substr(0, static_cast<size_t>(length));
  in_.remove_prefix(static_cast<size_t>(length));
  return text;
}

}  // namespace trl
