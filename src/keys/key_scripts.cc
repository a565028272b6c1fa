#include "keys/key_scripts.h"

namespace trl::key_scripts {
namespace {

// A run that finds its operation's answer returns it; `answer` keeps the first run's. `logged`
// bumps the version and records the change of ARGV[1] in the log (see key_scripts.h).
constexpr const char* kOnce = R"lua(
local done = redis.call('GET', KEYS[3])
if done then return tonumber(done) end
local function answer(r)
  redis.call('SET', KEYS[3], r, 'PX', ARGV[#ARGV])
  return r
end
local function raise_floor(f)
  if tonumber(redis.call('HGET', KEYS[5], 'floor') or '0') < f then
    redis.call('HSET', KEYS[5], 'floor', f)
  end
end
local function logged()
  local v = redis.call('INCR', KEYS[2])
  if tonumber(redis.call('HGET', KEYS[5], 'logged') or '0') ~= v - 1 then raise_floor(v - 1) end
  redis.call('ZADD', KEYS[4], v, ARGV[1])
  local excess = redis.call('ZCARD', KEYS[4]) - tonumber(ARGV[#ARGV - 1])
  if excess > 0 then
    local last = redis.call('ZRANGE', KEYS[4], excess - 1, excess - 1, 'WITHSCORES')
    redis.call('ZREMRANGEBYRANK', KEYS[4], 0, excess - 1)
    raise_floor(tonumber(last[2]))
  end
  redis.call('HSET', KEYS[5], 'logged', v)
  return v
end
)lua";

constexpr const char* kCreateBody = R"lua(
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return answer(-1) end
return answer(logged()))lua";

// Only over the record of revision ARGV[3] and secret ARGV[4] (-2 when the stored one is
// another).
constexpr const char* kReplaceBody = R"lua(
local stored = redis.call('HGET', KEYS[1], ARGV[1])
if not stored then return answer(-1) end
local ok, record = pcall(cjson.decode, stored)
if not ok or type(record) ~= 'table' then return answer(-2) end
if (tonumber(record.rev) or 0) ~= tonumber(ARGV[3]) or record.sha256 ~= ARGV[4] then
  return answer(-2)
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return answer(logged()))lua";

constexpr const char* kRemoveBody = R"lua(
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return answer(-1) end
return answer(logged()))lua";

}  // namespace

const std::string kCreate = std::string(kOnce) + kCreateBody;
const std::string kReplace = std::string(kOnce) + kReplaceBody;
const std::string kRemove = std::string(kOnce) + kRemoveBody;
const std::string kLoad = R"lua(
return {redis.call('GET', KEYS[2]) or '0', redis.call('HGETALL', KEYS[1])})lua";

// `false` stands for a removed key's record: Lua's nil would end the array there.
const std::string kChanges = R"lua(
local v = tonumber(redis.call('GET', KEYS[2]) or '0')
local since = tonumber(ARGV[1])
if since == v then return {v, 1, {}, {}} end
local log = redis.call('HMGET', KEYS[4], 'logged', 'floor')
if since > v or since < tonumber(log[2] or '0') or tonumber(log[1] or '0') ~= v then
  return {v, 0}
end
local names = redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. since, '+inf')
local records = {}
for i, name in ipairs(names) do records[i] = redis.call('HGET', KEYS[1], name) end
return {v, 1, names, records})lua";

}  // namespace trl::key_scripts
