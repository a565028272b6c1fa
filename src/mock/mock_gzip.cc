#include "mock/mock_gzip.h"

#include <zlib.h>

#include <memory>

namespace trl {
namespace {

// gzip wrapping (16 + window bits). A 4 KiB window and memLevel 6 keep each encoder at about
// 48 KiB instead of zlib's default 256 KiB: a stream holds one for its whole life, and SSE
// events repeat well within 4 KiB.
constexpr int kGzipWindowBits = 16 + 12;
constexpr int kMemLevel = 6;

}  // namespace

MockGzip::MockGzip() {
  auto stream = std::make_unique<z_stream>();
  if (deflateInit2(stream.get(), Z_DEFAULT_COMPRESSION, Z_DEFLATED, kGzipWindowBits, kMemLevel,
                   Z_DEFAULT_STRATEGY) == Z_OK) {
    stream_ = stream.release();
  }
}

MockGzip::~MockGzip() {
  if (stream_ == nullptr) return;
  deflateEnd(stream_);
  delete stream_;
}

bool MockGzip::Compress(std::string_view in, std::string& out, Flush flush) {
  if (stream_ == nullptr || finished_) return false;
  const int mode = flush == Flush::kFinish ? Z_FINISH : Z_SYNC_FLUSH;
  // zlib's API is not const-correct; deflate only reads next_in.
  stream_->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  stream_->avail_in = static_cast<uInt>(in.size());
  for (;;) {
    const size_t before = out.size();
    // deflateBound covers the whole input in one go; the loop only guards the flush markers.
    const size_t room = deflateBound(stream_, stream_->avail_in) + 64;
    out.resize(before + room);
    stream_->next_out = reinterpret_cast<Bytef*>(out.data() + before);
    stream_->avail_out = static_cast<uInt>(room);
    const int status = deflate(stream_, mode);
    out.resize(before + room - stream_->avail_out);
    if (status == Z_STREAM_END) {
      finished_ = true;
      return true;
    }
    if (status != Z_OK && status != Z_BUF_ERROR) return false;
    // Room to spare means deflate had nothing more to write: a sync flush is complete, while a
    // finish that did not reach Z_STREAM_END made no progress.
    if (stream_->avail_out != 0) return mode == Z_SYNC_FLUSH;
  }
}

}  // namespace trl
