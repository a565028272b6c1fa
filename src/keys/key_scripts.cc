#include "keys/key_scripts.h"

namespace trl::key_scripts {
namespace {

// A run that finds its operation's answer returns it; `answer` keeps the first run's.
constexpr const char* kOnce = R"lua(
local done = redis.call('GET', KEYS[3])
if done then return tonumber(done) end
local function answer(r)
  redis.call('SET', KEYS[3], r, 'PX', ARGV[#ARGV])
  return r
end
)lua";

constexpr const char* kCreateBody = R"lua(
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return answer(-1) end
return answer(redis.call('INCR', KEYS[2])))lua";

constexpr const char* kReplaceBody = R"lua(
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return answer(-1) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return answer(redis.call('INCR', KEYS[2])))lua";

constexpr const char* kRemoveBody = R"lua(
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return answer(-1) end
return answer(redis.call('INCR', KEYS[2])))lua";

}  // namespace

const std::string kCreate = std::string(kOnce) + kCreateBody;
const std::string kReplace = std::string(kOnce) + kReplaceBody;
const std::string kRemove = std::string(kOnce) + kRemoveBody;
const std::string kLoad = R"lua(
return {redis.call('GET', KEYS[2]) or '0', redis.call('HGETALL', KEYS[1])})lua";

}  // namespace trl::key_scripts
