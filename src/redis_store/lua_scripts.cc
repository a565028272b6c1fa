#include "redis_store/lua_scripts.h"

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

-- bucket.h FullLevel. A state is {level, frac, stamp, capacity}.
local function full(spec, now)
  local stamp = now
  if spec.cal and spec.period > 0 then stamp = fdiv(now, spec.period) * spec.period end
  return {spec.cap, 0, stamp, spec.cap}
end

-- "level frac stamp capacity" (a value without the capacity was measured against today's).
local function load(key, spec, now)
  local v = redis.call('GET', key)
  if v then
    local l, f, s, c = string.match(v, '^(%-?%d+) (%d+) (%-?%d+) ?(%d*)$')
    if l then
      c = tonumber(c) or spec.cap
      return {tonumber(l), tonumber(f), tonumber(s), c}
    end
  end
  return full(spec, now)
end

-- bucket.h Refresh. Returns true when the capacity changed: the caller saves the bucket then,
-- as MemoryStore keeps every refreshed level (without a change of capacity, refreshing at one
-- time or another ends the same, so a bucket only read need not be saved).
local function refresh(spec, now, st)
  local cap, period = spec.cap, spec.period
  local rescaled = st[4] ~= cap
  if rescaled then  -- a changed limit value: what was used stays used
    st[1] = st[1] + cap - st[4]
    st[4] = cap
    if spec.cal then st[2] = math.max(0, math.min(st[2], cap)) end
  end
  if period > 0 then
    if spec.cal then
      local window = fdiv(now, period) * period
      if window > st[3] then  -- the debt of the windows before is carried over
        local start = math.min(st[1], 0) + math.ceil((window - st[3]) / period) * cap
        if start > cap then start = cap end
        st[1] = start; st[2] = cap - start; st[3] = window
      end
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
  return rescaled
end

-- bucket.h Spend.
local function spend(spec, amount, st)
  st[1] = st[1] - amount
  if st[1] >= spec.cap then st[1] = spec.cap; st[2] = 0 end
end

-- bucket.h SettleDelta: a refund for an ended calendar window gives back only the debt that
-- window passed on.
local function settle_delta(spec, delta, admitted, st)
  if delta >= 0 or not spec.cal or st[3] == admitted then return spend(spec, delta, st) end
  local back = math.min(-delta, st[2])
  st[2] = st[2] - back
  spend(spec, -back, st)
end

-- Kept until the bucket would be full again (a missing key reads full), plus the margin.
local function save(key, spec, now, st, margin)
  local ms = 0
  if spec.period > 0 then
    if spec.cal then
      local windows = 1
      if st[1] < 0 and spec.cap > 0 then windows = 1 + math.ceil(-st[1] / spec.cap) end
      ms = (st[3] + windows * spec.period - now) / 1000
    elseif spec.cap > 0 and st[1] < spec.cap then
      ms = ((spec.cap - st[1]) * spec.period - st[2]) / spec.cap / 1000
    end
  end
  ms = math.ceil(ms) + margin
  if ms < 1 then ms = 1 end
  redis.call('SET', key, string.format('%d %d %d %d', st[1], st[2], st[3], st[4]), 'PX', int(ms))
end
)lua";

// A batch of one shard: its settlements, then its admissions, in one call. The admissions are
// judged one after the other as if each were a call of its own (so a batch decides exactly what
// the same admissions would one by one), after the settlements (whose refunds and released
// slots they see), with each bucket read once and written once. Exactly once, across lost
// replies and retries, rests on each admission's record (lua_scripts.h): an admission whose
// record exists was applied by an earlier copy of the call and is not charged again; a
// settlement applies its token deltas only when it removes a live record.
constexpr const char* kBatchBody = R"lua(
local now = clock(ARGV[1])
local now_text = int(now)  -- formatted once a call
local short_ttl = ARGV[2]
local margin = tonumber(ARGV[3])
local specs = specs_of(ARGV[4], 2)
local records = KEYS[1]
-- By index in KEYS: the bucket as read (once).
local buckets = {}
local function bucket(k)
  local b = buckets[k]
  if b then return b end
  local spec = specs[k]
  b = {spec = spec}
  if spec.kind == 'c' then
    redis.call('ZREMRANGEBYSCORE', KEYS[k], '-inf', now_text)
    b.in_use = redis.call('ZCARD', KEYS[k])
    b.first = b.in_use
    b.leases = {}
  else
    b.level = load(KEYS[k], spec, now)
    b.dirty = refresh(spec, now, b.level)
    b.first = b.level[1]
  end
  buckets[k] = b
  return b
end
-- (Formatting a number costs more than most of what a request does here: a TTL is formatted
-- again only when it differs from the last one.)
local last_ttl, last_ttl_text
local function ttl_ms(micros)
  if micros ~= last_ttl then last_ttl, last_ttl_text = micros, int(math.ceil(micros / 1000) + margin) end
  return last_ttl_text
end

-- Settlements.
local data, pos = ARGV[5], 1
local released = {}
while pos <= #data do
  local id = string.sub(data, pos, pos + 7)
  local ttl, flags, n
  ttl, flags, n, pos = struct.unpack('<i8BH', data, pos + 8)
  local key = records .. id
  local rec = redis.call('GETDEL', key)
  -- A tombstone stays; an admission whose outcome its caller never learned gets one when it
  -- left no record, so that a late copy of it applies nothing.
  if rec == 'x' or (not rec and flags == 1) then redis.call('SET', key, 'x', 'PX', ttl_ms(ttl)) end
  local admitted = rec and rec ~= 'x' and tonumber(rec)
  for _ = 1, n do
    local k, delta
    k, delta, pos = struct.unpack('<Hi8', data, pos)
    local spec = specs[k]
    if spec.kind == 'c' then
      local r = released[k]
      if not r then r = {}; released[k] = r end
      r[#r + 1] = id
    elseif admitted and (spec.kind == 't' or spec.kind == 's') and delta ~= 0 then
      local b = bucket(k)
      local window = 0
      if spec.cal then window = fdiv(admitted, spec.period) * spec.period end
      settle_delta(spec, delta, window, b.level)
      b.dirty = true
    end
  end
end
-- Before any admission counts the slots in use.
for k, r in pairs(released) do redis.call('ZREM', KEYS[k], unpack(r)) end
-- The levels the admissions start from (only token buckets are read above).
for _, b in pairs(buckets) do b.first = b.level[1] end

-- Admissions: each one's record first. 'n' new, 'r' applied by an earlier copy of this call,
-- 'x' its caller already gave it up (a tombstone).
local adm = {}
data, pos = ARGV[6], 1
local fresh = true
while pos <= #data do
  local a = {id = string.sub(data, pos, pos + 7)}
  local flags
  a.ttl, flags, a.n, pos = struct.unpack('<i8BH', data, pos + 8)
  a.at = pos
  pos = pos + a.n * 10
  a.key = records .. a.id
  local rttl = short_ttl
  if flags == 1 then rttl = ttl_ms(a.ttl) end
  a.state = 'n'
  if not redis.call('SET', a.key, now_text, 'PX', rttl, 'NX') then
    a.state = redis.call('GET', a.key) == 'x' and 'x' or 'r'
    fresh = false
  end
  adm[#adm + 1] = a
end

local flags = {}
-- All at once: when the admissions' total demand fits every bucket they charge, each of them
-- fits, one after the other, so each bucket is checked and charged once. ARGV[7]: their number,
-- then each bucket's total (-1: not charged); empty when the caller cannot tell (a concurrency
-- slot, a negative amount, a single admission).
data, pos = ARGV[7] or '', 3
if fresh and #data > 0 then
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
    flags[1] = string.rep('1', #adm)
  end
end
local replays = {}
local charged, amounts = {}, {}  -- the admission being judged: its buckets and amounts
local at_once = #flags == 1
-- One admission, judged: '1' charged (or applied by an earlier copy), '0' refused, 'x' given up.
local function judge(a)
  local pos, all = a.at, true
  for c = 1, a.n do
    local k, amount
    k, amount, pos = struct.unpack('<Hi8', ARGV[6], pos)
    local b = buckets[k] or bucket(k)  -- read even when not judged: the reply has its state
    if b.level then all = all and b.level[1] >= amount
    else all = all and b.in_use < b.spec.cap end
    charged[c], amounts[c] = b, amount
  end
  if a.state ~= 'n' then return a.state == 'r' and '1' or 'x' end
  if not all then
    redis.call('DEL', a.key)
    return '0'
  end
  for c = 1, a.n do
    local b = charged[c]
    if b.level then
      spend(b.spec, amounts[c], b.level)
      b.dirty = true
    else
      b.in_use = b.in_use + 1
      b.leases[#b.leases + 1] = int(now + a.ttl)
      b.leases[#b.leases + 1] = a.id
      if not b.ttl or a.ttl > b.ttl then b.ttl = a.ttl end
    end
  end
  return '1'
end
for i, a in ipairs(adm) do
  replays[i] = a.state == 'r' and '1' or '0'
  if not at_once then flags[i] = judge(a) end
end
for k, b in pairs(buckets) do
  if b.dirty then save(KEYS[k], b.spec, now, b.level, margin) end
  if b.leases and #b.leases > 0 then
    redis.call('ZADD', KEYS[k], unpack(b.leases))
    redis.call('PEXPIRE', KEYS[k], ttl_ms(b.ttl))
  end
end
-- The reply: the caller replays the admissions on the levels they started from. Each bucket's
-- fraction and stamp are the same after every admission of the call (the refresh and the
-- settlements come first, and a charge only lowers a level).
local out = {struct.pack('<i8', now), table.concat(flags), table.concat(replays)}
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
