// KeyStore on Redis, shared by every instance: the records hash, the version counter and the
// change log of key_scripts.h, one cluster slot.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <iterator>
#include <unordered_set>

#include "common/crypto.h"
#include "keys/key_scripts.h"
#include "keys/key_store.h"
#include "redis/redis_client.h"

namespace trl {
namespace {

// Redis: each write is one EVAL of a script of key_scripts.h, atomic with its version bump and
// safe to resend. Admin writes are rare, so EVAL (not EVALSHA) keeps this independent of the
// client's script registry.

constexpr const char* kRecords = "trl:keys:{keys}:records";
constexpr const char* kVersion = "trl:keys:{keys}:version";
constexpr const char* kOperationPrefix = "trl:keys:{keys}:op:";
constexpr const char* kChanges = "trl:keys:{keys}:changes";
constexpr const char* kLog = "trl:keys:{keys}:log";

int64_t ToInt(const redisReply& r) {
  if (r.type == REDIS_REPLY_INTEGER) return r.integer;
  int64_t v = 0;
  std::string_view text = redis::ReplyText(r);
  for (char c : text) {
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

class RedisKeyStore final : public KeyStore {
 public:
  RedisKeyStore(redis::RedisClient& client, Millis timeout, int64_t log_size)
      : client_(client), timeout_(timeout), log_size_(log_size) {}

  // Every record without holding Redis for the length of one 100,000-key read (seconds in one
  // Lua call, and every instance's admissions wait behind it): the version first, then the hash
  // in HSCAN pages, then the log's changes since that version, which replace whatever the pages
  // saw of those names (HSCAN may miss or repeat a name changed while it runs, never another).
  // When the log cannot tell (a write from a release without it), one atomic read instead.
  asio::awaitable<Loaded> LoadAll() override {
    Loaded out;
    const std::optional<int64_t> start = co_await Version();
    if (!start) {
      out.error = "Redis did not answer the key load";
      co_return out;
    }
    bool scanned = co_await Scan(out.keys);
    if (!scanned) {
      out.error = "Redis did not answer the key load";
      co_return out;
    }
    Changes since = co_await ChangesSince(*start);
    if (since.ok && !since.complete) {
      Loaded atomic = co_await LoadAtOnce();
      co_return atomic;
    }
    if (!since.ok) {
      out.error = since.error;
      co_return out;
    }
    std::unordered_set<std::string_view> touched(since.removed.begin(), since.removed.end());
    for (const KeyRecord& r : since.changed) touched.insert(r.key.name);
    std::unordered_set<std::string> seen;  // copies: the erase moves the names it keeps
    std::erase_if(out.keys, [&](const KeyRecord& r) {
      return touched.contains(r.key.name) || !seen.insert(r.key.name).second;
    });
    std::move(since.changed.begin(), since.changed.end(), std::back_inserter(out.keys));
    out.version = since.version;
    out.ok = true;
    co_return out;
  }

  asio::awaitable<Changes> ChangesSince(int64_t since) override {
    Changes out;
    std::vector<std::string> args{"EVAL", key_scripts::kChanges, "4", kRecords, kVersion, kChanges,
                                  kLog,   std::to_string(since)};
    std::string routing = kRecords;
    redis::Result r = co_await client_.Execute(std::move(args), std::move(routing), Deadline());
    if (!r.Ok() || r.reply->type != REDIS_REPLY_ARRAY || r.reply->elements < 2) {
      out.error = "Redis did not answer the key changes";
      co_return out;
    }
    const redisReply& reply = *r.reply;
    out.version = ToInt(*reply.element[0]);
    out.complete = reply.element[1]->type == REDIS_REPLY_INTEGER && reply.element[1]->integer == 1;
    if (out.complete) {
      if (reply.elements != 4 || reply.element[2]->type != REDIS_REPLY_ARRAY ||
          reply.element[3]->type != REDIS_REPLY_ARRAY ||
          reply.element[2]->elements != reply.element[3]->elements) {
        out.error = "Redis answered the key changes in an unknown form";
        co_return out;
      }
      ReadChanges(*reply.element[2], *reply.element[3], out);
    }
    out.ok = true;
    co_return out;
  }

  asio::awaitable<std::optional<int64_t>> Version() override {
    std::vector<std::string> args{"GET", kVersion};
    std::string routing = kVersion;
    redis::Result r = co_await client_.Execute(std::move(args), std::move(routing), Deadline());
    std::optional<int64_t> v;
    if (r.status == redis::ResultStatus::kOk && r.reply && !redis::IsError(r.reply.get())) {
      v = r.reply->type == REDIS_REPLY_NIL ? 0 : ToInt(*r.reply);
    }
    co_return v;
  }

  // The arguments are built into locals: GCC 12 mishandles non-trivial temporaries inside
  // co_await expressions.
  asio::awaitable<Written> Create(const KeyRecord& record) override {
    std::vector<std::string> argv{record.key.name, SerializeKeyRecord(record)};
    Written written = co_await Write(key_scripts::kCreate, argv, WriteStatus::kExists);
    co_return written;
  }
  asio::awaitable<Written> Replace(const KeyRecord& record, const KeyRecord& over) override {
    std::vector<std::string> argv{record.key.name, SerializeKeyRecord(record),
                                  std::to_string(over.revision), ToHex(over.key.key_sha256)};
    Written written = co_await Write(key_scripts::kReplace, argv, WriteStatus::kNotFound);
    co_return written;
  }
  asio::awaitable<Written> Remove(std::string_view name) override {
    std::vector<std::string> argv{std::string(name)};
    Written written = co_await Write(key_scripts::kRemove, argv, WriteStatus::kNotFound);
    co_return written;
  }

 private:
  static constexpr const char* kPage = "1000";  // HSCAN COUNT: about a millisecond of Redis

  // Every record of the hash, page by page, into `into` (a name may come twice).
  asio::awaitable<bool> Scan(std::vector<KeyRecord>& into) {
    std::string cursor = "0";
    do {
      std::vector<std::string> args{"HSCAN", kRecords, cursor, "COUNT", kPage};
      std::string routing = kRecords;
      redis::Result r = co_await client_.Execute(std::move(args), std::move(routing), Deadline());
      if (!r.Ok() || r.reply->type != REDIS_REPLY_ARRAY || r.reply->elements != 2 ||
          r.reply->element[1]->type != REDIS_REPLY_ARRAY) {
        co_return false;
      }
      cursor = std::string(redis::ReplyText(*r.reply->element[0]));
      ReadPairs(*r.reply->element[1], into);
    } while (cursor != "0");
    co_return true;
  }

  // Every record and the version, in one Lua call (Redis does nothing else meanwhile).
  asio::awaitable<Loaded> LoadAtOnce() {
    Loaded out;
    std::vector<std::string> args{"EVAL", key_scripts::kLoad, "2", kRecords, kVersion};
    std::string routing = kRecords;
    redis::Result r = co_await client_.Execute(std::move(args), std::move(routing), Deadline());
    if (!r.Ok() || r.reply->type != REDIS_REPLY_ARRAY || r.reply->elements != 2 ||
        r.reply->element[1]->type != REDIS_REPLY_ARRAY) {
      out.error = "Redis did not answer the key load";
      co_return out;
    }
    out.version = ToInt(*r.reply->element[0]);
    ReadPairs(*r.reply->element[1], out.keys);
    out.ok = true;
    co_return out;
  }

  // name, record, name, record... into `into`; unreadable records skipped (and logged).
  static void ReadPairs(const redisReply& pairs, std::vector<KeyRecord>& into) {
    for (size_t i = 0; i + 1 < pairs.elements; i += 2) {
      auto record = ParseKeyRecord(redis::ReplyText(*pairs.element[i + 1]));
      if (record) {
        into.push_back(std::move(*record));
      } else {
        spdlog::error("Redis: the record of key '{}' is unreadable; skipped",
                      redis::ReplyText(*pairs.element[i]));
      }
    }
  }

  // names[i] changed to records[i] (nil: removed; unreadable: counted as removed).
  static void ReadChanges(const redisReply& names, const redisReply& records, Changes& out) {
    for (size_t i = 0; i < names.elements; ++i) {
      const redisReply& record = *records.element[i];
      std::optional<KeyRecord> parsed;
      if (record.type != REDIS_REPLY_NIL) {
        parsed = ParseKeyRecord(redis::ReplyText(record));
        if (!parsed) {
          spdlog::error("Redis: the record of key '{}' is unreadable; skipped",
                        redis::ReplyText(*names.element[i]));
        }
      }
      if (parsed) {
        out.changed.push_back(std::move(*parsed));
      } else {
        out.removed.emplace_back(redis::ReplyText(*names.element[i]));
      }
    }
  }

  redis::SteadyTime Deadline() const { return std::chrono::steady_clock::now() + timeout_; }

  // One write (key_scripts.h), under an operation id of its own so that a resend of it (after
  // a dropped connection) answers as the first run did. `argv` is consumed.
  asio::awaitable<Written> Write(const std::string& script, std::vector<std::string>& argv,
                                 WriteStatus when_refused) {
    std::vector<std::string> args{
        "EVAL", script, "5", kRecords, kVersion, kOperationPrefix + RandomHex(16), kChanges, kLog};
    for (auto& a : argv) args.push_back(std::move(a));
    args.push_back(std::to_string(log_size_));
    // Kept while a resend can still arrive: the command's deadline, with room to spare.
    args.push_back(std::to_string((timeout_ + std::chrono::minutes(1)).count()));
    std::string routing = kRecords;
    redis::Result r = co_await client_.Execute(std::move(args), std::move(routing), Deadline());
    if (!r.Ok() || r.reply->type != REDIS_REPLY_INTEGER) co_return Written{WriteStatus::kError};
    if (r.reply->integer == -2) co_return Written{WriteStatus::kConflict};
    if (r.reply->integer < 0) co_return Written{when_refused};
    co_return Written{WriteStatus::kOk, r.reply->integer};
  }

  redis::RedisClient& client_;
  Millis timeout_;
  int64_t log_size_;
};

}  // namespace

std::unique_ptr<KeyStore> MakeRedisKeyStore(redis::RedisClient& client, Millis timeout,
                                            int64_t log_size) {
  return std::make_unique<RedisKeyStore>(client, timeout, log_size);
}

}  // namespace trl
