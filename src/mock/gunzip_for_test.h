// Test-only: decodes what a gzip-accepting client received, as a browser or Node's fetch would.
#pragma once

#include <zlib.h>

#include <optional>
#include <string>
#include <string_view>

namespace trl {

// Inflates one gzip member, or a prefix of one when `allow_unfinished` (a stream still open,
// or cut): the bytes decodable so far. nullopt when `data` is not gzip, or ends early and
// `allow_unfinished` is false.
inline std::optional<std::string> GunzipForTest(std::string_view data,
                                                bool allow_unfinished = false) {
  z_stream stream{};
  if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK) return std::nullopt;
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  std::string out;
  int status = Z_OK;
  while (status == Z_OK) {
    char chunk[4096];
    stream.next_out = reinterpret_cast<Bytef*>(chunk);
    stream.avail_out = sizeof(chunk);
    status = inflate(&stream, Z_SYNC_FLUSH);
    out.append(chunk, sizeof(chunk) - stream.avail_out);
    if (status == Z_OK && stream.avail_in == 0 && stream.avail_out != 0) break;
  }
  const bool finished = status == Z_STREAM_END && stream.avail_in == 0;
  inflateEnd(&stream);
  if (finished || (allow_unfinished && status == Z_OK)) return out;
  return std::nullopt;
}

}  // namespace trl
