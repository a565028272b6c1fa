// gzip (RFC 1952) for mock-llm's responses to clients that accept it, through zlib's deflate.
// One encoder per response; not thread-safe (a session uses it on its own thread).
#pragma once

#include <string>
#include <string_view>

struct z_stream_s;

namespace trl {

class MockGzip {
 public:
  enum class Flush {
    kSync,    // Z_SYNC_FLUSH: everything so far decodes at once, so one SSE event arrives whole
    kFinish,  // Z_FINISH: ends the gzip member with its trailer; nothing may follow
  };

  // Allocates zlib's state (about 48 KiB); Ok() is false when that failed.
  MockGzip();
  ~MockGzip();
  MockGzip(const MockGzip&) = delete;
  MockGzip& operator=(const MockGzip&) = delete;

  bool Ok() const { return stream_ != nullptr; }

  // Appends the compressed form of `in` to `out`, flushed as `flush` says. False when zlib
  // fails, or when called on a finished or failed encoder; `out` then holds garbage.
  bool Compress(std::string_view in, std::string& out, Flush flush);

 private:
  z_stream_s* stream_ = nullptr;
  bool finished_ = false;
};

}  // namespace trl
