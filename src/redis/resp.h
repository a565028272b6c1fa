// RESP, the Redis wire protocol, through hiredis: its command formatter
// (redisFormatCommandArgv) and its incremental reply reader (redisReader). Nothing here parses
// RESP by hand.
//
// Thread-safety: FormatCommand is a pure function; a ReplyReader belongs to one connection.
#pragma once

#include <hiredis/hiredis.h>

#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace trl::redis {

struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
// A complete reply (a tree for arrays), owned.
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

// One command in RESP ("*3\r\n$3\r\nSET\r\n..."), ready to be written.
std::string FormatCommand(std::span<const std::string_view> args);

inline std::string_view ReplyText(const redisReply& reply) {
  return reply.str ? std::string_view(reply.str, reply.len) : std::string_view();
}
inline bool IsError(const redisReply* reply) {
  return reply != nullptr && reply->type == REDIS_REPLY_ERROR;
}
// An error reply whose text starts with `prefix` ("NOSCRIPT", "MOVED", ...).
bool IsErrorWithPrefix(const redisReply* reply, std::string_view prefix);

// Feeds bytes as they arrive; yields replies as they complete.
class ReplyReader {
 public:
  ReplyReader();
  ~ReplyReader();
  ReplyReader(const ReplyReader&) = delete;
  ReplyReader& operator=(const ReplyReader&) = delete;

  // False on a protocol error (the connection must be dropped; Error() says why).
  bool Feed(const char* data, size_t size);
  // The next complete reply, or null when more bytes are needed. Sets *ok = false on a protocol
  // error.
  ReplyPtr Next(bool* ok);
  std::string Error() const;

 private:
  redisReader* reader_;
};

}  // namespace trl::redis
