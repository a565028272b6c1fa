// The shared usage sink: every instance adds to the same Redis hashes (usage.h has the layout).
//
// One hour = one hash tag {h<hour>}, so the rows of an hour, its index set and a call's marker
// sit in one cluster slot and one script call sees them all; different hours spread over the
// cluster.
//
// Scripts: sent with plain EVAL (RedisClient::Execute without a Script), because the client
// takes its scripts (AddScript) only before Start, and RedisStore::Create starts the shared
// client before the usage sink exists. Redis caches an EVAL'd script by its SHA on its own, and
// a call a second per hour of data makes the bytes of the body beside the point.
//
// Counting exactly once:
// - the client sends a command again when its connection dropped before the reply; each Write
//   call carries a marker key (unique per sink and call), set by the script with NX, so a resend
//   of an applied call changes nothing;
// - a Write that fails after some hours were applied returns false, and its caller puts the
//   whole batch back (UsageRecorder::Restore): the sink remembers what it applied (debt_) and
//   subtracts it from the next Write, where those rows come back.
// - a call that timed out may or may not have been applied: the sink keeps it as it was sent
//   (in_doubt_) and treats its rows as applied (debt); the next Write first sends it again,
//   marker and all, until Redis answers. Applied or not, its rows then count exactly once (the
//   marker outlives the resends: an hour, against the 1 s between flushes).
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/grammar/lut_chars.hpp>
#include <boost/url/pct_string_view.hpp>
#include <charconv>
#include <cstdio>
#include <map>
#include <random>
#include <tuple>

#include "redis/redis_client.h"
#include "usage/usage.h"
#include "usage/usage_rows.h"

namespace trl {
namespace {

// A script call of 500 rows (5000 arguments) keeps Redis busy well under a millisecond; an
// hour with more rows takes several calls.
constexpr size_t kRowsPerCall = 500;
// Hour calls of one query in flight at once: enough to hide the round trips of a long range,
// few enough not to crowd out the limiter's commands on the same connections.
constexpr size_t kQueryConcurrency = 8;
// The query API allows 400 days; one hour more for a range that starts inside an hour.
constexpr int64_t kMaxQueryHours = 400 * 24 + 1;

// KEYS[1] the hour's index set, KEYS[2] this call's marker, KEYS[2+i] row i's hash.
// ARGV[1] when everything expires (Unix seconds, EXPIREAT), ARGV[2] the marker's TTL in ms,
// then per row: its member in the index set and its counters (kUsageCounters, in its order).
// Returns 1, or 0 when the marker says this call was applied already.
constexpr const char* kWriteScript = R"lua(
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then return 0 end
local fields = {'requests', 'prompt_tokens', 'completion_tokens', 'rejected_tokens',
                'rejected_requests', 'rejected_concurrency', 'cached_tokens', 'cost',
                'rejected_spend'}
for i = 3, #KEYS do
  local a = 3 + (i - 3) * 10
  redis.call('SADD', KEYS[1], ARGV[a])
  for f = 1, 9 do
    if ARGV[a + f] ~= '0' then redis.call('HINCRBY', KEYS[i], fields[f], ARGV[a + f]) end
  end
  redis.call('EXPIREAT', KEYS[i], ARGV[1])
end
redis.call('EXPIREAT', KEYS[1], ARGV[1])
return 1
)lua";

// KEYS[1] the hour's index set. ARGV[1] the prefix of the hour's row hashes, ARGV[2..5] the
// key, tenant, model and user filters: "" for any, else "=" and the encoded name ("=" alone:
// the rows without a user). A member of three parts is a row without a user (Member).
// Returns {member, its counters (kUsageCounters' order), member, ...} of the rows that pass; a
// field a hash lacks (zero, or a counter newer than the hash's writer) as '0'.
// The row hashes are named from the index rather than passed in KEYS (the script cannot know
// them beforehand); they share KEYS[1]'s hash tag, so they are in its slot, on this node.
constexpr const char* kQueryScript = R"lua(
local out = {}
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local k, t, mo, u = string.match(m, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
  if not k then
    k, t, mo = string.match(m, '^([^|]*)|([^|]*)|([^|]*)$')
    u = ''
  end
  if k and (ARGV[2] == '' or ARGV[2] == '=' .. k) and (ARGV[3] == '' or ARGV[3] == '=' .. t)
      and (ARGV[4] == '' or ARGV[4] == '=' .. mo) and (ARGV[5] == '' or ARGV[5] == '=' .. u) then
    local v = redis.call('HMGET', ARGV[1] .. m, 'requests', 'prompt_tokens', 'completion_tokens',
                         'rejected_tokens', 'rejected_requests', 'rejected_concurrency',
                         'cached_tokens', 'cost', 'rejected_spend')
    out[#out + 1] = m
    for f = 1, 9 do out[#out + 1] = v[f] or '0' end
  end
end
return out
)lua";
// The scripts name the counters themselves (and count them: 9 per row).
static_assert(kUsageCounters.size() == 9, "kWriteScript and kQueryScript name every counter");

// Everything but '%', '|', '{' and '}' stands as it is (like BucketRef::Id): a name can neither
// split a member nor open a hash tag of its own.
constexpr auto kVerbatim = ~boost::urls::grammar::lut_chars("%|{}");

std::string Encode(std::string_view name) { return boost::urls::encode(name, kVerbatim); }

std::optional<std::string> Decode(std::string_view text) {
  auto encoded = boost::urls::make_pct_string_view(text);
  if (!encoded) return std::nullopt;
  return encoded->decode();
}

// "<key>|<tenant>|<model>", and "|<user>" when the row has one: a row without a user keeps the
// member (and hash) it had before users were counted, so that it adds to the same hash as
// what an earlier version wrote.
std::string Member(const UsageRow& row) {
  std::string member = Encode(row.key) + '|' + Encode(row.tenant) + '|' + Encode(row.model);
  if (!row.user.empty()) member += '|' + Encode(row.user);
  return member;
}

// A member's identity into `row`: three parts (no user) or four. False when it is not one
// (not written by this sink).
bool ParseMember(std::string_view member, UsageRow& row) {
  std::optional<std::string> parts[4];
  size_t count = 0;
  bool more = true;  // a part follows
  while (more && count < 4) {
    const size_t bar = member.find('|');
    parts[count++] = Decode(member.substr(0, bar));
    more = bar != std::string_view::npos;
    if (more) member.remove_prefix(bar + 1);
  }
  if (more || count < 3) return false;
  for (size_t p = 0; p < count; ++p) {
    if (!parts[p]) return false;
  }
  row.key = std::move(*parts[0]);
  row.tenant = std::move(*parts[1]);
  row.model = std::move(*parts[2]);
  row.user = count == 4 ? std::move(*parts[3]) : std::string();
  return true;
}

std::string Filter(const std::optional<std::string>& name) {
  return name ? "=" + Encode(*name) : std::string();
}

std::string Describe(const redis::Result& r) {
  switch (r.status) {
    case redis::ResultStatus::kTimeout:
      return "redis: timed out";
    case redis::ResultStatus::kUnavailable:
      return "redis: unavailable";
    case redis::ResultStatus::kOk:
      break;
  }
  return "redis: " + std::string(r.reply ? redis::ReplyText(*r.reply) : "no reply");
}

using RowKey = std::tuple<std::string, std::string, std::string, std::string, int64_t>;
RowKey KeyOf(const UsageRow& row) { return {row.key, row.tenant, row.model, row.user, row.start}; }

bool IsZero(const UsageCounts& c) { return c == UsageCounts{}; }

void Subtract(const UsageCounts& debt, UsageCounts& from) {
  for (const UsageCounter& counter : kUsageCounters) {
    int64_t& v = from.*counter.field;
    const int64_t d = debt.*counter.field;
    v = v > d ? v - d : 0;
  }
}

class RedisUsageSink final : public UsageSink {
 public:
  RedisUsageSink(redis::RedisClient& client, Millis retention, Millis timeout)
      : client_(client), retention_(retention), timeout_(timeout) {
    std::random_device random;
    char id[24];
    std::snprintf(id, sizeof(id), "%08x%08x", random(), random());
    sink_id_ = id;
  }

  asio::awaitable<bool> Write(std::span<const UsageRow> rows, std::string* error) override {
    bool ok = false;
    try {
      ok = co_await WriteRows(rows, error);
    } catch (const std::exception& e) {
      if (error) *error = std::string("redis: ") + e.what();
    }
    co_return ok;
  }

  asio::awaitable<UsageResult> Query(const UsageQuery& query) override {
    UsageResult result;
    try {
      result = co_await QueryHours(query);
    } catch (const std::exception& e) {
      result = {};
      result.error = std::string("redis: ") + e.what();
    }
    co_return result;
  }

  asio::awaitable<bool> DropBefore(int64_t before_unix, int64_t* removed,
                                   std::string* error) override {
    // Every hash and index set carries its own EXPIREAT.
    if (removed) *removed = 0;
    co_return true;
  }

 private:
  // "trl:usage:{h<hour>}:"
  static std::string HourPrefix(int64_t hour) {
    return "trl:usage:{h" + std::to_string(hour) + "}:";
  }

  // The rows less what an earlier failed Write applied of them, grouped by hour.
  std::map<int64_t, std::vector<UsageRow>> Pending(std::span<const UsageRow> rows) {
    std::map<int64_t, std::vector<UsageRow>> by_hour;
    std::lock_guard lock(debt_mutex_);
    for (const UsageRow& row : rows) {
      UsageRow copy = row;
      copy.start = HourOf(row.start);
      if (!debt_.empty()) {
        auto it = debt_.find(KeyOf(copy));
        if (it != debt_.end()) {
          Subtract(it->second, copy.counts);
          debt_.erase(it);
        }
      }
      if (!IsZero(copy.counts)) by_hour[copy.start].push_back(std::move(copy));
    }
    // Debt whose rows did not come back was never going to: forget it rather than hold it.
    debt_.clear();
    return by_hour;
  }

  void AddDebt(const std::vector<UsageRow>& applied) {
    std::lock_guard lock(debt_mutex_);
    for (const UsageRow& row : applied) debt_[KeyOf(row)].Add(row.counts);
  }

  std::vector<std::string> WriteArgs(int64_t hour, std::span<const UsageRow> rows) {
    const std::string prefix = HourPrefix(hour);
    const int64_t expire_at = hour + kSecondsPerHour + retention_.count() / 1000;
    // Long enough to outlive every resend of this call, a timed-out one's included.
    const int64_t marker_ttl_ms = 3'600'000 + 2 * timeout_.count();
    std::vector<std::string> args = {"EVAL", kWriteScript, std::to_string(rows.size() + 2)};
    args.reserve(3 + 2 + rows.size() * (2 + kUsageCounters.size()) + 2);
    args.push_back(prefix + "rows");
    args.push_back(prefix + "op:" + sink_id_ + ":" + std::to_string(next_op_.fetch_add(1)));
    std::vector<std::string> members;
    members.reserve(rows.size());
    for (const UsageRow& row : rows) {
      members.push_back(Member(row));
      args.push_back(prefix + members.back());
    }
    args.push_back(std::to_string(expire_at));
    args.push_back(std::to_string(marker_ttl_ms));
    for (size_t i = 0; i < rows.size(); ++i) {
      const UsageCounts& c = rows[i].counts;
      args.push_back(std::move(members[i]));
      for (const UsageCounter& counter : kUsageCounters) {
        args.push_back(std::to_string(c.*counter.field));
      }
    }
    return args;
  }

  // Sends the calls that timed out again, until Redis answers each.
  asio::awaitable<bool> ResendInDoubt(std::string* error) {
    std::vector<std::vector<std::string>> calls;
    {
      std::lock_guard lock(debt_mutex_);
      calls.swap(in_doubt_);
    }
    for (size_t i = 0; i < calls.size(); ++i) {
      std::vector<std::string> args = calls[i];
      std::string routing = args[3];
      const auto deadline = std::chrono::steady_clock::now() + timeout_;
      redis::Result r = co_await client_.Execute(std::move(args), std::move(routing), deadline);
      if (!r.Ok()) {
        if (error) *error = Describe(r);
        std::lock_guard lock(debt_mutex_);
        in_doubt_.insert(in_doubt_.end(),
                         std::make_move_iterator(calls.begin() + static_cast<std::ptrdiff_t>(i)),
                         std::make_move_iterator(calls.end()));
        co_return false;
      }
    }
    co_return true;
  }

  asio::awaitable<bool> WriteRows(std::span<const UsageRow> rows, std::string* error) {
    if (!co_await ResendInDoubt(error)) co_return false;
    std::map<int64_t, std::vector<UsageRow>> by_hour = Pending(rows);
    std::vector<UsageRow> applied;
    for (auto& [hour, hour_rows] : by_hour) {
      for (size_t begin = 0; begin < hour_rows.size(); begin += kRowsPerCall) {
        const size_t count = std::min(kRowsPerCall, hour_rows.size() - begin);
        std::span<const UsageRow> chunk(hour_rows.data() + begin, count);
        std::vector<std::string> args = WriteArgs(hour, chunk);
        std::string routing = args[3];
        const auto deadline = std::chrono::steady_clock::now() + timeout_;
        redis::Result r = co_await client_.Execute(args, std::move(routing), deadline);
        if (!r.Ok()) {
          if (error) *error = Describe(r);
          if (r.status == redis::ResultStatus::kTimeout) {
            // Maybe applied: its rows are settled by resending this very call.
            applied.insert(applied.end(), chunk.begin(), chunk.end());
            std::lock_guard lock(debt_mutex_);
            in_doubt_.push_back(std::move(args));
          }
          AddDebt(applied);
          co_return false;
        }
        applied.insert(applied.end(), chunk.begin(), chunk.end());
      }
    }
    co_return true;
  }

  // One hour's rows that pass the query's filters, or an error.
  static constexpr size_t kStride = 1 + kUsageCounters.size();  // a row in kQueryScript's reply
  asio::awaitable<bool> QueryHour(int64_t hour, const UsageQuery& query,
                                  std::vector<UsageRow>& rows, std::string& error) {
    const std::string prefix = HourPrefix(hour);
    std::vector<std::string> args = {"EVAL",
                                     kQueryScript,
                                     "1",
                                     prefix + "rows",
                                     prefix,
                                     Filter(query.key),
                                     Filter(query.tenant),
                                     Filter(query.model),
                                     Filter(query.user)};
    std::string routing = args[3];
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    redis::Result r = co_await client_.Execute(std::move(args), std::move(routing), deadline);
    if (!r.Ok() || r.reply->type != REDIS_REPLY_ARRAY || r.reply->elements % kStride != 0) {
      error = r.Ok() ? "redis: unexpected reply to the usage query" : Describe(r);
      co_return false;
    }
    for (size_t i = 0; i < r.reply->elements; i += kStride) {
      UsageRow row;
      row.start = hour;
      if (!ParseMember(redis::ReplyText(*r.reply->element[i]), row)) continue;
      for (size_t f = 0; f < kUsageCounters.size(); ++f) {
        std::string_view text = redis::ReplyText(*r.reply->element[i + 1 + f]);
        std::from_chars(text.data(), text.data() + text.size(),
                        row.counts.*kUsageCounters[f].field);
      }
      rows.push_back(std::move(row));
    }
    co_return true;
  }

  asio::awaitable<UsageResult> QueryHours(const UsageQuery& query) {
    UsageResult result;
    std::vector<int64_t> hours;
    for (int64_t hour = HourOf(query.from); hour < query.to; hour += kSecondsPerHour) {
      if (static_cast<int64_t>(hours.size()) == kMaxQueryHours) {
        result.error = "the range from..to must not exceed 400 days";
        co_return result;
      }
      hours.push_back(hour);
    }
    // Workers take the next hour until none is left; each hour's rows and error have their own
    // slot, so the workers share nothing but the counter.
    std::vector<std::vector<UsageRow>> rows(hours.size());
    std::vector<std::string> errors(hours.size());
    std::atomic<size_t> next{0};
    auto executor = co_await asio::this_coro::executor;
    const size_t workers = std::min(kQueryConcurrency, hours.size());
    asio::experimental::concurrent_channel<void(boost::system::error_code, bool)> done(executor,
                                                                                       workers);
    auto worker = [&]() -> asio::awaitable<bool> {
      bool ok = true;
      for (size_t i = next++; i < hours.size() && ok; i = next++) {
        ok = co_await QueryHour(hours[i], query, rows[i], errors[i]);
      }
      co_return ok;
    };
    for (size_t w = 0; w < workers; ++w) {
      asio::co_spawn(executor, worker(), [&done](const std::exception_ptr& e, bool ok) {
        done.try_send(boost::system::error_code(), ok && !e);
      });
    }
    bool all_ok = true;
    for (size_t w = 0; w < workers; ++w) {
      bool ok = co_await done.async_receive(asio::use_awaitable);
      all_ok = all_ok && ok;
    }
    if (!all_ok) {
      for (std::string& e : errors) {
        if (!e.empty()) {
          result.error = std::move(e);
          break;
        }
      }
      if (result.error.empty()) result.error = "redis: the usage query failed";
      co_return result;
    }
    std::vector<UsageRow> all;
    for (auto& hour_rows : rows) {
      for (UsageRow& row : hour_rows) all.push_back(std::move(row));
    }
    co_return MakeUsageResult(std::move(all), query);
  }

  redis::RedisClient& client_;
  const Millis retention_;
  const Millis timeout_;
  std::string sink_id_;
  std::atomic<uint64_t> next_op_{0};
  std::mutex debt_mutex_;  // debt_ and in_doubt_
  std::map<RowKey, UsageCounts> debt_;
  std::vector<std::vector<std::string>> in_doubt_;  // calls that timed out, as sent
};

}  // namespace

std::unique_ptr<UsageSink> MakeRedisUsageSink(redis::RedisClient& client, Millis retention,
                                              Millis timeout) {
  return std::make_unique<RedisUsageSink>(client, retention, timeout);
}

}  // namespace trl
