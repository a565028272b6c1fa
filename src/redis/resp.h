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

  // The most elements an array reply may have: hiredis allocates them all when the array's
  // header arrives, before any element ("*600000000" would take 4.8 GB). A larger one is a
  // protocol error. The largest replies read (a batch's, a hash of every key) are far smaller.
  static constexpr int kMaxArrayElements = 1 << 22;

 private:
  static void* CreateArray(const redisReadTask* task, int elements);

  redisReader* reader_;
  int refused_elements_ = 0;  // the size of the array refused, if one was
};

}  // namespace trl::redis
