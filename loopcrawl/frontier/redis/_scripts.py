"""The Lua scripts that move requests between queue, lease and done.

Each move is one script, so it is atomic: no request is lost or doubled
between two commands, whatever fails or runs at the same time. Every key a
script touches is passed in KEYS and shares the crawl's hash tag (one slot).
Times are the server's (``TIME``, in ms), so deadlines compare across
machines whatever their clocks. Only commands of Redis 6.2 (LPOP with a
count, ZADD XX and NX); scripts run by EVALSHA (redis-py loads them again
after a restart flushed them).

Lua numbers are doubles: fingerprints and seen-set members travel as decimal
strings and are never turned into numbers here.
"""

from __future__ import annotations

# Shared by the scripts below (prepended to each).
_PRELUDE = r"""
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Queue a leased value again: at the front of the FIFO, or back in the
-- ranked set ('P<score> <member>') with its old sequence number.
local function requeue(q, qp, v)
  if string.byte(v, 1) == 80 then
    local sp = string.find(v, ' ', 2, true)
    redis.call('ZADD', qp, string.sub(v, 2, sp - 1), string.sub(v, sp + 1))
  else
    redis.call('LPUSH', q, v)
  end
end

-- Return leases past their deadline to the queue (at most 1000 a call), to
-- its front in the order they were leased.
local function sweep(n, q, qp, leases, deadlines, now)
  local gone = redis.call('ZRANGEBYSCORE', deadlines, '-inf', now, 'LIMIT', 0, 1000)
  if #gone == 0 then return 0 end
  table.sort(gone, function(a, b) return tonumber(a) > tonumber(b) end)
  local k = 0
  for _, t in ipairs(gone) do
    local v = redis.call('HGET', leases, t)
    if v then
      requeue(q, qp, v)
      redis.call('HDEL', leases, t)
      k = k + 1
    end
  end
  redis.call('ZREM', deadlines, unpack(gone))
  if k > 0 then redis.call('HINCRBY', n, 'expired', k) end
  return k
end

-- Queue the requests of ``lines``, one a line (tab-separated): seen-set key
-- (its index in KEYS), member, '1' to skip it if seen ('0': dont_filter),
-- score ('' for the FIFO) and payload (JSON: no tab, no line break).
-- Returns how many were queued, and a '1' (queued) or '0' per line.
local function add(n, q, qp, lines)
  local fifo, seen = {}, 0
  local queued, flags = 0, {}
  for key, member, filter, s, payload in
      string.gmatch(lines, '(%d+)\t(%d+)\t([01])\t([^\t]*)\t([^\n]*)') do
    local fresh = redis.call('SADD', KEYS[tonumber(key)], member) == 1
    if fresh then seen = seen + 1 end
    if fresh or filter == '0' then
      if s == '' then
        fifo[#fifo + 1] = payload
        if #fifo == 1000 then
          redis.call('RPUSH', q, unpack(fifo))
          fifo = {}
        end
      else
        local seq = redis.call('HINCRBY', n, 'seq', 1)
        redis.call('ZADD', qp, s, string.format('%016x', seq) .. payload)
      end
      queued = queued + 1
      flags[#flags + 1] = '1'
    else
      flags[#flags + 1] = '0'
    end
  end
  if #fifo > 0 then redis.call('RPUSH', q, unpack(fifo)) end
  if seen > 0 then redis.call('HINCRBY', n, 'seen', seen) end
  return queued, flags
end
"""

_ACK = r"""
-- The acks of ``lines``, one a line (tab-separated): token, fingerprint,
-- host, kind ('d' done, 'u' done and not counted against the budget, 'f'
-- failed). Returns a '1' (acked) or '0' (the lease had been lost) per line. The host table keeps the busiest hosts: past 20,000 it is cut
-- to the top 10,000 (a host that comes back starts again from 0), so it
-- stays small on a broad crawl.
local function ack(n, leases, deadlines, claims, rate, hosts, lines)
  local res, gone, per_host = {}, {}, {}
  local done, failed, pages = 0, 0, 0
  local has_claims = redis.call('HLEN', claims) > 0
  for token, fp, h, kind in string.gmatch(lines, '(%d+)\t(%d+)\t([^\t]*)\t([duf])') do
    if redis.call('HDEL', leases, token) == 1 then
      gone[#gone + 1] = token
      if has_claims then redis.call('HDEL', claims, fp) end
      per_host[h] = (per_host[h] or 0) + 1
      if kind == 'f' then failed = failed + 1 else done = done + 1 end
      if kind ~= 'u' then pages = pages + 1 end
      res[#res + 1] = '1'
    else
      res[#res + 1] = '0'
    end
  end
  for j = 1, #gone, 1000 do
    redis.call('ZREM', deadlines, unpack(gone, j, math.min(j + 999, #gone)))
  end
  for h, c in pairs(per_host) do redis.call('ZINCRBY', hosts, c, h) end
  if done > 0 then redis.call('HINCRBY', n, 'done', done) end
  if failed > 0 then redis.call('HINCRBY', n, 'failed', failed) end
  if pages > 0 then redis.call('HINCRBY', n, 'pages', pages) end
  local acked = done + failed
  if acked > 0 then
    local sec = math.floor(now_ms() / 1000)
    if redis.call('HINCRBY', rate, sec, acked) == acked then
      -- The first ack of this second: forget seconds older than a minute, and
      -- the hosts past the top 10,000.
      local old = {}
      for _, s in ipairs(redis.call('HKEYS', rate)) do
        if tonumber(s) < sec - 60 then old[#old + 1] = s end
      end
      if #old > 0 then redis.call('HDEL', rate, unpack(old)) end
      local nh = redis.call('ZCARD', hosts)
      if nh > 20000 then redis.call('ZREMRANGEBYRANK', hosts, 0, nh - 10001) end
    end
  end
  return res
end
"""

# Create the crawl if its meta is missing, record new seeds, queue them.
# KEYS: meta, seeds, n, q, qp, seen sets...
# ARGV: settings, created, format, seen_bits, max_pages ('' none), seed count,
#       the seeds, then add()'s lines.
# Returns {created 0/1, queued}, or {-1, seen_bits} when the crawl exists with
# other seen bits than the caller split the fingerprints by (it splits again).
SEED = _PRELUDE + r"""
local meta = KEYS[1]
local created = 0
if redis.call('EXISTS', meta) == 0 then
  redis.call('HSET', meta, 'settings', ARGV[1], 'created', ARGV[2], 'format', ARGV[3],
             'seen_bits', ARGV[4])
  if ARGV[5] ~= '' then redis.call('HSET', meta, 'max_pages', ARGV[5]) end
  created = 1
else
  local bits = redis.call('HGET', meta, 'seen_bits')
  if bits ~= ARGV[4] then return {-1, tonumber(bits)} end
end
local k = tonumber(ARGV[6])
local at = redis.call('ZCARD', KEYS[2])
for j = 7, 6 + k do
  at = at + redis.call('ZADD', KEYS[2], 'NX', at, ARGV[j])
end
local queued = add(KEYS[3], KEYS[4], KEYS[5], ARGV[7 + k])
return {created, queued}
"""

# KEYS: n, q, qp, leases, deadlines, workers, meta
# ARGV: how many, ttl (ms), worker id
# Returns {deadline (ms)}, or {deadline, first token, the payloads one a
# line}: tokens are consecutive. With a page budget (meta max_pages), no more is leased
# than the budget minus pages counted and leases held.
LEASE = _PRELUDE + r"""
local n, q, qp, leases, deadlines = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now = now_ms()
sweep(n, q, qp, leases, deadlines, now)
redis.call('ZADD', KEYS[6], now, ARGV[3])
local want = tonumber(ARGV[1])
local max = redis.call('HGET', KEYS[7], 'max_pages')
if max then
  local left = tonumber(max) - tonumber(redis.call('HGET', n, 'pages') or '0')
               - redis.call('HLEN', leases)
  if left < want then want = left end
end
local deadline = now + tonumber(ARGV[2])
if want <= 0 then return {deadline} end
local vals, out = {}, {}
local function ranked(lo, hi)
  local k = want - #vals
  if k <= 0 then return end
  local ms = redis.call('ZRANGEBYSCORE', qp, lo, hi, 'WITHSCORES', 'LIMIT', 0, k)
  if #ms == 0 then return end
  local members = {}
  for j = 1, #ms, 2 do
    members[#members + 1] = ms[j]
    vals[#vals + 1] = 'P' .. ms[j + 1] .. ' ' .. ms[j]
    out[#out + 1] = string.sub(ms[j], 17)
  end
  redis.call('ZREM', qp, unpack(members))
end
local has_ranked = redis.call('ZCARD', qp) > 0
if has_ranked then ranked('-inf', '(0') end
if want > #vals then
  local got = redis.call('LPOP', q, want - #vals)
  if got then
    for _, v in ipairs(got) do
      vals[#vals + 1] = v
      out[#out + 1] = v
    end
  end
end
if has_ranked then ranked('0', '+inf') end
local k = #vals
if k == 0 then return {deadline} end
local last = redis.call('HINCRBY', n, 'token', k)
local hs, zs = {}, {}
for j = 1, k do
  local t = last - k + j
  hs[#hs + 1] = t
  hs[#hs + 1] = vals[j]
  zs[#zs + 1] = deadline
  zs[#zs + 1] = t
end
redis.call('HSET', leases, unpack(hs))
redis.call('ZADD', deadlines, unpack(zs))
return {deadline, last - k + 1, table.concat(out, '\n')}
"""

# A worker's writes of one batch (``_batch.Coalescer``): pages' new links
# and acks, in one script.
# KEYS: n, q, qp, leases, deadlines, claims, rate, hosts, seen sets...
# ARGV: the links (add()'s lines), the acks (ack()'s lines).
# Returns a string of '1' and '0', one a line: the links' (queued), then
# the acks' (acked).
TURN = _PRELUDE + _ACK + r"""
local _, flags = add(KEYS[1], KEYS[2], KEYS[3], ARGV[1])
if ARGV[2] ~= '' then
  for _, v in ipairs(ack(KEYS[1], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], ARGV[2])) do
    flags[#flags + 1] = v
  end
end
return table.concat(flags)
"""

# KEYS: n, q, qp, leases, deadlines
# ARGV: groups of three: token, score ('' for the FIFO), payload.
# A released request goes to the front of the FIFO (or the back of its
# priority); the release of a lost lease is ignored.
RELEASE = _PRELUDE + r"""
local n, q, qp, leases, deadlines = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local k = 0
for i = 1, #ARGV, 3 do
  if redis.call('HDEL', leases, ARGV[i]) == 1 then
    redis.call('ZREM', deadlines, ARGV[i])
    if ARGV[i + 1] == '' then
      redis.call('LPUSH', q, ARGV[i + 2])
    else
      local seq = redis.call('HINCRBY', n, 'seq', 1)
      redis.call('ZADD', qp, ARGV[i + 1], string.format('%016x', seq) .. ARGV[i + 2])
    end
    k = k + 1
  end
end
return k
"""

# KEYS: n, q, qp, leases, deadlines, workers
# ARGV: ttl (ms), worker id, tokens...
# Returns {new deadline (ms), positions (from 1) of the tokens lost...}.
EXTEND = _PRELUDE + r"""
local n, q, qp, leases, deadlines = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now = now_ms()
sweep(n, q, qp, leases, deadlines, now)
redis.call('ZADD', KEYS[6], now, ARGV[2])
local deadline = now + tonumber(ARGV[1])
local res = {deadline}
for i = 3, #ARGV do
  if redis.call('HEXISTS', leases, ARGV[i]) == 1 then
    redis.call('ZADD', deadlines, 'XX', deadline, ARGV[i])
  else
    res[#res + 1] = i - 2
  end
end
return res
"""

# KEYS: n, q, qp, leases, deadlines, meta
# Returns 1 when nothing is leased and nothing is queued (or the page budget
# is spent), else 0.
FINISHED = _PRELUDE + r"""
local n, q, qp, leases, deadlines = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
sweep(n, q, qp, leases, deadlines, now_ms())
if redis.call('HLEN', leases) > 0 then return 0 end
if redis.call('LLEN', q) == 0 and redis.call('ZCARD', qp) == 0 then return 1 end
local max = redis.call('HGET', KEYS[6], 'max_pages')
if max and tonumber(redis.call('HGET', n, 'pages') or '0') >= tonumber(max) then return 1 end
return 0
"""

# KEYS: n, q, qp, leases, deadlines
# Returns {queued, leased, done, failed, seen, expired, pages, now (ms)}.
STATS = _PRELUDE + r"""
local n, q, qp, leases, deadlines = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now = now_ms()
sweep(n, q, qp, leases, deadlines, now)
local c = redis.call('HMGET', n, 'done', 'failed', 'seen', 'expired', 'pages')
return {redis.call('LLEN', q) + redis.call('ZCARD', qp), redis.call('HLEN', leases),
        tonumber(c[1] or '0'), tonumber(c[2] or '0'), tonumber(c[3] or '0'),
        tonumber(c[4] or '0'), tonumber(c[5] or '0'), now}
"""

# KEYS: seen set, claims, n
# ARGV: member, fingerprint, the claiming request's fingerprint ('' none)
# Returns 1: claimed now, or claimed before by the same request; 0: seen.
MARK_SEEN = r"""
if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then
  redis.call('HINCRBY', KEYS[3], 'seen', 1)
  if ARGV[3] ~= '' then
    local c = redis.call('HGET', KEYS[2], ARGV[3])
    redis.call('HSET', KEYS[2], ARGV[3], c and (c .. ' ' .. ARGV[2]) or ARGV[2])
  end
  return 1
end
if ARGV[3] == '' then return 0 end
local c = redis.call('HGET', KEYS[2], ARGV[3])
if c and string.find(' ' .. c .. ' ', ' ' .. ARGV[2] .. ' ', 1, true) then return 1 end
return 0
"""
