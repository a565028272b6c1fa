// The packed records the batch scripts take and give (lua_scripts.h): fixed-width
// little-endian integers, the layout of the struct library Redis bundles with its Lua ('<'
// with B, H, i4, i8, c8). Written and read field by field; nothing here is a general format.
//
// Thread-safety: PutInt is a pure function; a PackedReader belongs to its caller.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace trl::redis {

// Appends the low `bytes` bytes of `v`, least significant first (two's complement: a negative
// value reads back with PackedReader::Int of the same width).
inline void PutInt(std::string& out, int64_t v, int bytes) {
  char le[8];
  auto u = static_cast<uint64_t>(v);
  for (char& c : le) {
    c = static_cast<char>(u & 0xFF);
    u >>= 8;
  }
  out.append(le, static_cast<size_t>(bytes));
}

// Reads fields in order. Reading past the end yields 0 and makes Ok() false for good.
class PackedReader {
 public:
  explicit PackedReader(std::string_view in) : in_(in) {}

  // A signed integer of `bytes` bytes (1..8).
  int64_t Int(int bytes) {
    if (!ok_ || in_.size() - at_ < static_cast<size_t>(bytes)) {
      ok_ = false;
      return 0;
    }
    uint64_t u = 0;
    for (int i = bytes - 1; i >= 0; --i) u = u << 8 | static_cast<unsigned char>(in_[at_ + i]);
    at_ += bytes;
    const int unused = 64 - 8 * bytes;
    return static_cast<int64_t>(u << unused) >> unused;  // sign-extended
  }
  bool Ok() const { return ok_; }
  bool AtEnd() const { return ok_ && at_ == in_.size(); }

 private:
  std::string_view in_;
  size_t at_ = 0;
  bool ok_ = true;
};

}  // namespace trl::redis
