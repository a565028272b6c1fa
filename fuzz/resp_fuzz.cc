// The Redis wire protocol (redis/resp.h): a ReplyReader fed a server's bytes as they arrive (the
// first byte picks the size of the reads, 1-16 bytes), then FormatCommand on the rest split at
// NUL bytes into arguments.
//
// A command formatted and read back is an array of the same arguments.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "redis/resp.h"

namespace {

namespace redis = trl::redis;

// Visits every element of a reply tree, as the client's callers do.
void Walk(const redisReply& reply, int depth) {
  TRL_FUZZ_CHECK(depth < 1000);
  (void)redis::ReplyText(reply);
  (void)redis::IsErrorWithPrefix(&reply, "MOVED");
  if (reply.type == REDIS_REPLY_ARRAY) {
    for (size_t i = 0; i < reply.elements; ++i) {
      TRL_FUZZ_CHECK(reply.element[i] != nullptr);
      Walk(*reply.element[i], depth + 1);
    }
  }
}

void ReadReplies(std::string_view bytes, size_t chunk) {
  redis::ReplyReader reader;
  for (size_t at = 0; at < bytes.size(); at += chunk) {
    const std::string_view piece = bytes.substr(at, chunk);
    if (!reader.Feed(piece.data(), piece.size())) return;
    bool ok = true;
    while (redis::ReplyPtr reply = reader.Next(&ok)) Walk(*reply, 0);
    if (!ok) {
      TRL_FUZZ_CHECK(!reader.Error().empty());
      return;
    }
  }
}

void FormatAndReadBack(std::string_view bytes) {
  std::vector<std::string_view> args;
  for (size_t start = 0;;) {
    const size_t nul = bytes.find('\0', start);
    args.push_back(bytes.substr(start, nul - start));
    if (nul == std::string_view::npos) break;
    start = nul + 1;
  }
  const std::string command = redis::FormatCommand(args);
  redis::ReplyReader reader;
  TRL_FUZZ_CHECK(reader.Feed(command.data(), command.size()));
  bool ok = true;
  redis::ReplyPtr reply = reader.Next(&ok);
  TRL_FUZZ_CHECK(ok && reply && reply->type == REDIS_REPLY_ARRAY);
  TRL_FUZZ_CHECK(reply->elements == args.size());
  for (size_t i = 0; i < args.size(); ++i) {
    TRL_FUZZ_CHECK(redis::ReplyText(*reply->element[i]) == args[i]);
  }
  TRL_FUZZ_CHECK(reader.Next(&ok) == nullptr && ok);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t chunk = 1 + (data[0] & 0x0f);
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  ReadReplies(bytes, chunk);
  FormatAndReadBack(bytes);
  return 0;
}
