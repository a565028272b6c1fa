#include "redis/resp.h"

#include <boost/container/small_vector.hpp>
#include <cstdlib>
#include <new>
#include <vector>

namespace trl::redis {

std::string FormatCommand(std::span<const std::string_view> args) {
  boost::container::small_vector<const char*, 64> argv;
  boost::container::small_vector<size_t, 64> lens;
  for (std::string_view a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  // The sds variant formats with hiredis's own sdscatfmt; redisFormatCommandArgv calls sprintf
  // once per argument, which was ~1.7% of the gateway's CPU on the Redis store (a batch of
  // admissions has hundreds of arguments).
  sds target = nullptr;
  int len =
      redisFormatSdsCommandArgv(&target, static_cast<int>(args.size()), argv.data(), lens.data());
  if (len < 0 || target == nullptr) throw std::bad_alloc();
  std::string out(target, static_cast<size_t>(len));
  redisFreeSdsCommand(target);
  return out;
}

bool IsErrorWithPrefix(const redisReply* reply, std::string_view prefix) {
  if (!IsError(reply)) return false;
  std::string_view text = ReplyText(*reply);
  return text.size() >= prefix.size() && text.substr(0, prefix.size()) == prefix &&
         (text.size() == prefix.size() || text[prefix.size()] == ' ');
}

namespace {

// hiredis's own reply functions, but for arrays, which ReplyReader::CreateArray bounds first.
// hiredis does not export them: they are read off a reader it made.
struct ReplyFunctions {
  redisReplyObjectFunctions bounded;
  void* (*create_array)(const redisReadTask*, int);
};

ReplyFunctions& Functions(const redisReplyObjectFunctions& hiredis_own,
                          void* (*bounded_create_array)(const redisReadTask*, int)) {
  static ReplyFunctions functions = [&] {
    ReplyFunctions f{hiredis_own, hiredis_own.createArray};
    f.bounded.createArray = bounded_create_array;
    return f;
  }();
  return functions;
}

}  // namespace

ReplyReader::ReplyReader() : reader_(redisReaderCreate()) {
  if (!reader_) throw std::bad_alloc();
  reader_->fn = &Functions(*reader_->fn, &CreateArray).bounded;
  reader_->privdata = this;  // every read task's privdata
}

void* ReplyReader::CreateArray(const redisReadTask* task, int elements) {
  if (elements > kMaxArrayElements) {
    static_cast<ReplyReader*>(task->privdata)->refused_elements_ = elements;
    return nullptr;  // hiredis's protocol error; Error() names it
  }
  return Functions(redisReplyObjectFunctions{}, nullptr).create_array(task, elements);
}

ReplyReader::~ReplyReader() { redisReaderFree(reader_); }

bool ReplyReader::Feed(const char* data, size_t size) {
  return redisReaderFeed(reader_, data, size) == REDIS_OK;
}

ReplyPtr ReplyReader::Next(bool* ok) {
  void* reply = nullptr;
  if (redisReaderGetReply(reader_, &reply) != REDIS_OK) {
    *ok = false;
    return nullptr;
  }
  *ok = true;
  return ReplyPtr(static_cast<redisReply*>(reply));
}

std::string ReplyReader::Error() const {
  if (refused_elements_ != 0) {
    return "an array reply of " + std::to_string(refused_elements_) + " elements (more than " +
           std::to_string(kMaxArrayElements) + ")";
  }
  return reader_->errstr;
}

}  // namespace trl::redis
