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

-- The specs of the buckets of a call, packed (lua_scripts.h), by index in KEYS from `first`.
local function specs_of(packed, first)
  local specs, k, pos = {}, first, 1
  while pos <= #packed do
    local kind, cal, cap, period
    kind, cal, cap, period, pos = struct.unpack('<c1Bi8i8', packed, pos)
    specs[k] = {kind = kind, cap = cap, period = period, cal = cal == 1}
    k = k + 1
  end
  return specs
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

// A batch of one shard: its settlements, then its admissions, in one call. The admissions are
// judged one after the other as if each were a call of its own (so a batch decides exactly what
// the same admissions would one by one), after the settlements (whose refunds and released
// slots they see), with each bucket read once and written once. The marker says that the
// settlements were applied and which admissions were: a replay (the reply was lost with its
// connection) applies no settlement again, charges the applied admissions again for nothing and
// answers "admitted" for them with the buckets as they are now; the others are judged afresh.
constexpr const char* kBatchBody = R"lua(
local applied = redis.call('GET', KEYS[1])
local now = clock(ARGV[1])
local margin = tonumber(ARGV[3])
local specs = specs_of(ARGV[4], 2)
-- By index in KEYS: the bucket as read (once).
local buckets = {}
local function bucket(k)
  local b = buckets[k]
  if b then return b end
  local spec = specs[k]
  b = {spec = spec}
  if spec.kind == 'c' then
    redis.call('ZREMRANGEBYSCORE', KEYS[k], '-inf', int(now))
    b.in_use = redis.call('ZCARD', KEYS[k])
    b.first = b.in_use
    b.leases = {}
  else
    b.level = load(KEYS[k], spec, now)
    refresh(spec, now, b.level)
    b.first = b.level[1]
  end
  buckets[k] = b
  return b
end

local data, pos = ARGV[5], 1
local settled = #data > 0
if not applied then
  local released = {}
  while pos <= #data do
    -- (A lease id is read only where it is used: Lua makes and hashes a string of it.)
    local k, delta, stamp
    k, delta, stamp, pos = struct.unpack('<Hi8i8', data, pos)
    pos = pos + 8
    local spec = specs[k]
    if spec.kind == 'c' then
      local r = released[k]
      if not r then r = {}; released[k] = r end
      r[#r + 1] = string.sub(data, pos - 8, pos - 1)
    elseif spec.kind == 't' and delta ~= 0 then
      local b = bucket(k)
      -- A refund for a calendar window that has ended is dropped: that window's budget is gone.
      if not (spec.cal and delta < 0 and b.level[3] ~= stamp) then
        spend(spec, delta, b.level)
        b.dirty = true
      end
    end
  end
  -- Before any admission counts the slots in use.
  for k, r in pairs(released) do redis.call('ZREM', KEYS[k], unpack(r)) end
  -- The levels the admissions start from (only token buckets are read above).
  for _, b in pairs(buckets) do b.first = b.level[1] end
end

local flags = {}
local changed = settled
-- All at once: when the admissions' total demand fits every bucket they charge, each of them
-- fits, one after the other, so each bucket is checked and charged once. ARGV[7]: their number,
-- then each bucket's total (-1: not charged); empty when the caller cannot tell (a concurrency
-- slot, a negative amount, a single admission).
data, pos = ARGV[7] or '', 3
if not applied and #data > 0 then
  local count = struct.unpack('<H', data)
  local fits, totals = true, {}
  for k = 2, #KEYS do
    local demand
    demand, pos = struct.unpack('<i8', data, pos)
    if demand >= 0 then
      local b = buckets[k] or bucket(k)
      fits = fits and b.level[1] >= demand
      totals[k] = demand
    end
  end
  if fits then
    for k, demand in pairs(totals) do
      local b = buckets[k]
      spend(b.spec, demand, b.level)
      b.dirty = true
    end
    flags[1] = string.rep('1', count)
    changed = true
  end
end
local charged, amounts = {}, {}  -- this admission's charges
local a = 0
data, pos = ARGV[6], 1
if #flags > 0 then pos = #data + 1 end  -- judged all at once
while pos <= #data do
  local lease_at, ttl, n = pos
  ttl, n, pos = struct.unpack('<i8H', data, pos + 8)
  a = a + 1
  local replay = applied and string.sub(applied, a, a) == '1'
  local all = true
  for c = 1, n do
    local k, amount
    k, amount, pos = struct.unpack('<Hi8', data, pos)
    local b = buckets[k] or bucket(k)
    if replay then  -- applied by the first try: not judged or charged again
    elseif b.level then all = all and b.level[1] >= amount
    else all = all and b.in_use < b.spec.cap end
    charged[c], amounts[c] = b, amount
  end
  if all and not replay then
    changed = true
    for c = 1, n do
      local b = charged[c]
      if b.level then
        spend(b.spec, amounts[c], b.level)
        b.dirty = true
      else
        b.in_use = b.in_use + 1
        b.leases[#b.leases + 1] = int(now + ttl)
        b.leases[#b.leases + 1] = string.sub(data, lease_at, lease_at + 7)
        if not b.ttl or ttl > b.ttl then b.ttl = ttl end
      end
    end
  end
  flags[a] = all and '1' or '0'
end
for k, b in pairs(buckets) do
  if b.dirty then save(KEYS[k], b.spec, now, b.level, margin) end
  if b.leases and #b.leases > 0 then
    redis.call('ZADD', KEYS[k], unpack(b.leases))
    redis.call('PEXPIRE', KEYS[k], int(math.ceil(b.ttl / 1000) + margin))
  end
end
-- (A replayed admission's flag is '1' again: the marker keeps every applied one.)
flags = table.concat(flags)
if changed then redis.call('SET', KEYS[1], flags, 'PX', ARGV[2]) end
-- The reply: the caller replays the admissions on the levels they started from. Each bucket's
-- fraction and stamp are the same after every admission of the call (the refresh and the
-- settlements come first, and a charge only lowers a level).
local out = {struct.pack('<i8', now), flags, applied or ''}
for k = 2, #KEYS do
  local b = buckets[k]
  local level = b and b.level
  out[k + 2] = struct.pack('<i8i8i8', b and b.first or 0, level and level[2] or 0,
                           level and level[3] or 0)
end
return table.concat(out)
)lua";

constexpr const char* kReadBody = R"lua(
local now = clock(ARGV[1])
local specs = specs_of(ARGV[2], 1)
local out = {now}
for i = 1, #KEYS do
  local spec = specs[i]
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

const std::string kBatchScript = std::string(kPrelude) + kBatchBody;
const std::string kReadScript = std::string(kPrelude) + kReadBody;

}  // namespace trl::redis
