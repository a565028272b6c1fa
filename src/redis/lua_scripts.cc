#include "redis/lua_scripts.h"

namespace trl::redis {
namespace {

// Shared by every script. Lua 5.1 numbers are doubles: integers are exact below 2^53, which
// levels (tokens), fractions (< period µs) and times (µs since the epoch, ~2^50.6) all are. The
// one product that is not, capacity × elapsed µs in a refill (2e6 tokens per day × a day is
// ~2^57), is done by long multiplication that keeps the quotient and remainder separately
// (muladd_divmod). Numbers written into Redis go through string.format('%d'), since Lua's own
// number-to-text conversion keeps only 14 digits.
constexpr const char* kPrelude = R"lua(
local TWO53 = 9007199254740992

-- floor(a / b), exact for integers |a| < 2^53 and 0 < b < 2^52.
local function fdiv(a, b)
  local q = math.floor(a / b)
  local r = a - q * b
  if r < 0 then q = q - 1 elseif r >= b then q = q + 1 end
  return q
end

-- q, r with a * b + c = q * d + r and 0 <= r < d, for integers a, b >= 0, 0 <= c < d < 2^52.
-- Stops early once q >= limit (returns limit, 0): the caller only needs to know that.
local function muladd_divmod(a, b, c, d, limit)
  local p = a * b
  if p < TWO53 - d then  -- exact (a true product above 2^53 never rounds below it)
    local t = p + c
    local q = fdiv(t, d)
    return q, t - q * d
  end
  local qa = fdiv(a, d)
  local ra = a - qa * d
  local bits = {}
  while b > 0 do
    local half = math.floor(b / 2)
    bits[#bits + 1] = b - half * 2
    b = half
  end
  local q, r = 0, 0
  for i = #bits, 1, -1 do
    q = q * 2
    r = r * 2
    if r >= d then r = r - d; q = q + 1 end
    if bits[i] == 1 then
      q = q + qa
      r = r + ra
      if r >= d then r = r - d; q = q + 1 end
    end
    if q >= limit then return limit, 0 end
  end
  r = r + c
  if r >= d then r = r - d; q = q + 1 end
  if q >= limit then return limit, 0 end
  return q, r
end

local function clock(arg)
  local now = tonumber(arg)
  if now > 0 then return now end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local function int(x) return string.format('%d', x) end

local function spec_at(argv, base)
  return {kind = argv[base + 1], cap = tonumber(argv[base + 2]),
          period = tonumber(argv[base + 3]), cal = argv[base + 4] == '1'}
end

-- bucket.h FullLevel.
local function full(spec, now)
  local stamp = now
  if spec.cal and spec.period > 0 then stamp = fdiv(now, spec.period) * spec.period end
  return {spec.cap, 0, stamp}
end

local function load(key, spec, now)
  local v = redis.call('GET', key)
  if v then
    local l, f, s = string.match(v, '^(%-?%d+) (%d+) (%-?%d+)$')
    if l then return {tonumber(l), tonumber(f), tonumber(s)} end
  end
  return full(spec, now)
end

-- bucket.h Refresh.
local function refresh(spec, now, st)
  local cap, period = spec.cap, spec.period
  if period > 0 then
    if spec.cal then
      local window = fdiv(now, period) * period
      if window > st[3] then st[1] = cap; st[2] = 0; st[3] = window end
    elseif now > st[3] then
      if st[1] < cap then
        local need = cap - st[1]
        local whole, rem = muladd_divmod(cap, now - st[3], st[2], period, need)
        if whole >= need then
          st[1] = cap; st[2] = 0
        else
          st[1] = st[1] + whole; st[2] = rem
        end
      end
      st[3] = now
    end
  end
  if st[1] >= cap then st[1] = cap; st[2] = 0 end
end

-- bucket.h Spend.
local function spend(spec, amount, st)
  st[1] = st[1] - amount
  if st[1] >= spec.cap then st[1] = spec.cap; st[2] = 0 end
end

-- Kept until the bucket would be full again (a missing key reads full), plus the margin.
local function save(key, spec, now, st, margin)
  local ms = 0
  if spec.period > 0 then
    if spec.cal then
      ms = (st[3] + spec.period - now) / 1000
    elseif spec.cap > 0 and st[1] < spec.cap then
      ms = ((spec.cap - st[1]) * spec.period - st[2]) / spec.cap / 1000
    end
  end
  ms = math.ceil(ms) + margin
  if ms < 1 then ms = 1 end
  redis.call('SET', key, string.format('%d %d %d', st[1], st[2], st[3]), 'PX', int(ms))
end
)lua";

// A replay (the marker of this admission exists: it was applied, and the reply was lost with
// its connection) charges nothing again and answers "admitted" with the buckets as they are now.
constexpr const char* kAdmitBody = R"lua(
local replay = redis.call('EXISTS', KEYS[1]) == 1
local now = clock(ARGV[1])
local lease_ttl = tonumber(ARGV[2])
local margin = tonumber(ARGV[5])
local n = #KEYS - 1
local specs, states = {}, {}
local all = true
for i = 1, n do
  local base = 5 + (i - 1) * 5
  local spec = spec_at(ARGV, base)
  local amount = tonumber(ARGV[base + 5])
  local key = KEYS[i + 1]
  local s = {}
  if spec.kind == 'c' then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', int(now))
    s.in_use = redis.call('ZCARD', key)
    s.fits = replay or s.in_use < spec.cap
  else
    s.level = load(key, spec, now)
    refresh(spec, now, s.level)
    s.fits = replay or s.level[1] >= amount
  end
  spec.amount = amount
  specs[i] = spec
  states[i] = s
  all = all and s.fits
end
local out = {0, now, '0'}
if all then
  out[1] = 1
  for i = 1, n do
    local spec, s, key = specs[i], states[i], KEYS[i + 1]
    if spec.kind == 'c' then
      out[3] = ARGV[3]
      if not replay then
        redis.call('ZADD', key, int(now + lease_ttl), ARGV[3])
        redis.call('PEXPIRE', key, int(math.ceil(lease_ttl / 1000) + margin))
        s.in_use = s.in_use + 1
      end
    elseif not replay then
      spend(spec, spec.amount, s.level)
      save(key, spec, now, s.level, margin)
    end
  end
end
for i = 1, n do
  local s = states[i]
  out[#out + 1] = s.fits and 1 or 0
  if s.level then
    out[#out + 1] = s.level[1]
    out[#out + 1] = s.level[2]
    out[#out + 1] = s.level[3]
    out[#out + 1] = 0
  else
    out[#out + 1] = 0
    out[#out + 1] = 0
    out[#out + 1] = 0
    out[#out + 1] = s.in_use
  end
end
if all and not replay then redis.call('SET', KEYS[1], '1', 'PX', ARGV[4]) end
return out
)lua";

constexpr const char* kSettleBody = R"lua(
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local now = clock(ARGV[1])
local margin = tonumber(ARGV[3])
for i = 1, #KEYS - 1 do
  local base = 3 + (i - 1) * 7
  local spec = spec_at(ARGV, base)
  local delta = tonumber(ARGV[base + 5])
  local key = KEYS[i + 1]
  if spec.kind == 'c' then
    redis.call('ZREM', key, ARGV[base + 7])
  elseif spec.kind == 't' and delta ~= 0 then
    local st = load(key, spec, now)
    refresh(spec, now, st)
    -- A refund for a calendar window that has ended is dropped: that window's budget is gone.
    if not (spec.cal and delta < 0 and st[3] ~= tonumber(ARGV[base + 6])) then
      spend(spec, delta, st)
      save(key, spec, now, st, margin)
    end
  end
end
redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])
return 1
)lua";

constexpr const char* kReadBody = R"lua(
local now = clock(ARGV[1])
local out = {now}
for i = 1, #KEYS do
  local spec = spec_at(ARGV, 1 + (i - 1) * 4)
  local key = KEYS[i]
  if spec.kind == 'c' then
    out[#out + 1] = 0
    out[#out + 1] = 0
    out[#out + 1] = 0
    out[#out + 1] = redis.call('ZCOUNT', key, '(' .. int(now), '+inf')
  else
    local st = load(key, spec, now)
    refresh(spec, now, st)
    out[#out + 1] = st[1]
    out[#out + 1] = st[2]
    out[#out + 1] = st[3]
    out[#out + 1] = 0
  end
end
return out
)lua";

}  // namespace

const std::string kAdmitScript = std::string(kPrelude) + kAdmitBody;
const std::string kSettleScript = std::string(kPrelude) + kSettleBody;
const std::string kReadScript = std::string(kPrelude) + kReadBody;

}  // namespace trl::redis
