"""The host gate's one Lua script (``gate.py`` explains the design).

``SYNC`` brings a batch of hosts up to date for one worker in one round
trip: it returns the places of holders whose deadline passed, applies the
worker's events (Crawl-delay, 429/503, successes, Retry-After, an answer),
sets how many places the worker holds (a target, not a delta), reserves the
turns it asks for, and answers with the host's state. Times are the
server's, in ms (``TIME``), so they compare across machines.

Safe to run twice (``_reconnect.py``): the places are a target, the events
carry a sequence number per worker and host that the script records
(``s:<worker>``) and skips when not newer, and a turn reserved twice only
leaves the host idle for one delay.

KEYS, three per host: the host's hash (``held``, ``holders``, ``next``,
``last``, ``until``, ``delay``, ``base``, ``w:<worker>`` places held,
``s:<worker>`` last event sequence), its holders by deadline (sorted set),
its waiters by the time they were first refused (sorted set, first come
first served). All three expire an hour after the host's last sync.

ARGV: worker, per_host, default delay (ms), place ttl (ms), waiter window
(ms), throttle bounds (ms, ms); then nine per host: event sequence, target
places, want a turn (0/1), claim a turn (0/1), back-off (ms), throttles,
successes, Crawl-delay (ms), answered (0/1).

Answer: server time (ms); then eight per host: places held, fair share,
others waiting, delay, base delay, no start before (ms), the turn (ms, -1:
none), the claimed turn (ms, -1: none).
"""

from __future__ import annotations

__all__ = ["ARGS_PER_HOST", "KEYS_PER_HOST", "OUT_PER_HOST", "SYNC"]

KEYS_PER_HOST = 3
ARGS_PER_HOST = 9
OUT_PER_HOST = 8

SYNC = r"""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local w = ARGV[1]
local per_host = tonumber(ARGV[2])
local dflt = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local window = tonumber(ARGV[5])
local tmin, tmax = tonumber(ARGV[6]), tonumber(ARGV[7])
local wf, sf = 'w:' .. w, 's:' .. w
local out = {now}
for i = 0, #KEYS / 3 - 1 do
  local h, dl, wq = KEYS[3 * i + 1], KEYS[3 * i + 2], KEYS[3 * i + 3]
  local a = 8 + 9 * i
  -- A holder whose deadline passed is gone: its places come back.
  local dead = redis.call('ZRANGEBYSCORE', dl, '-inf', now)
  for _, d in ipairs(dead) do
    local n = tonumber(redis.call('HGET', h, 'w:' .. d) or '0')
    if n > 0 then
      redis.call('HINCRBY', h, 'held', -n)
      redis.call('HINCRBY', h, 'holders', -1)
    end
    redis.call('HDEL', h, 'w:' .. d, 's:' .. d)
    redis.call('ZREM', dl, d)
    redis.call('ZREM', wq, d)
  end
  redis.call('ZREMRANGEBYSCORE', wq, '-inf', now - window)
  local s = redis.call('HMGET', h, 'held', 'holders', 'next', 'last', 'until', 'delay', 'base',
                       wf, sf)
  local held = tonumber(s[1] or '0')
  local holders = tonumber(s[2] or '0')
  local nxt = tonumber(s[3] or '0')
  local last = tonumber(s[4] or '0')
  local untl = tonumber(s[5] or '0')
  local delay = tonumber(s[6] or dflt)
  local base = tonumber(s[7] or dflt)
  local mine = tonumber(s[8] or '0')
  local seq = tonumber(ARGV[a])
  if seq > tonumber(s[9] or '0') then
    local crawl_delay = tonumber(ARGV[a + 7])
    if crawl_delay > base then base = crawl_delay end
    if base > delay then
      delay = base
      nxt = math.max(nxt, last + delay)
    end
    for _ = 1, tonumber(ARGV[a + 5]) do
      delay = math.min(math.max(delay * 2, tmin), tmax)
      nxt = math.max(nxt, last + delay)
    end
    for _ = 1, tonumber(ARGV[a + 6]) do
      if delay > base then
        local d = math.floor(delay * 0.75)
        if d > base + 10 then delay = d else delay = base end
      end
    end
    if tonumber(ARGV[a + 8]) > 0 then
      nxt = math.max(nxt, now + delay)
      last = math.max(last, now)
    end
    local backoff = tonumber(ARGV[a + 4])
    if backoff > 0 then untl = math.max(untl, now + backoff) end
    redis.call('HSET', h, sf, seq)
  end
  -- Places: at most per_host held in all; while others wait, a fair share
  -- each, and free places go to the waiters in the order they came.
  local target = tonumber(ARGV[a + 1])
  local waiting = redis.call('ZCARD', wq)
  local rank = redis.call('ZRANK', wq, w)
  if rank then waiting = waiting - 1 else rank = waiting end
  local cap = per_host
  if waiting > 0 then
    local contenders = holders + waiting
    if mine == 0 then contenders = contenders + 1 end
    cap = math.max(1, math.floor(per_host / contenders))
  end
  local new = mine
  if target < mine then
    new = target
  elseif target > mine then
    local avail = math.min(target - mine, per_host - held - rank)
    if waiting > 0 then avail = math.min(avail, cap - mine) end
    if avail > 0 then
      new = mine + avail
      redis.call('ZREM', wq, w)
    elseif mine == 0 then
      redis.call('ZADD', wq, 'NX', now, w)
    end
  end
  if new ~= mine then
    held = held + new - mine
    if mine == 0 then holders = holders + 1 elseif new == 0 then holders = holders - 1 end
    mine = new
  end
  redis.call('ZADD', dl, now + ttl, w)
  local turn, claim = -1, -1
  if tonumber(ARGV[a + 2]) > 0 and mine > 0 then
    turn = math.max(now, nxt, untl)
    nxt = turn + delay
    last = turn
  end
  if tonumber(ARGV[a + 3]) > 0 then
    claim = math.max(now, nxt, untl)
    nxt = claim + delay
    last = claim
  end
  redis.call('HSET', h, 'held', held, 'holders', holders, 'next', nxt, 'last', last,
             'until', untl, 'delay', delay, 'base', base, wf, mine)
  -- A host nobody asked about for an hour takes no memory (a holder syncs
  -- every quarter second; what is lost, a Crawl-delay, is sent again).
  redis.call('PEXPIRE', h, 3600000)
  redis.call('PEXPIRE', dl, 3600000)
  redis.call('PEXPIRE', wq, 3600000)
  for _, v in ipairs({mine, cap, waiting, delay, base, untl, turn, claim}) do
    out[#out + 1] = v
  end
end
return out
"""
