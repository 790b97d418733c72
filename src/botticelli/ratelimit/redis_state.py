"""The limiter's buckets in Redis, so several processes or hosts on one quota stay under it
together. One hash per limiter; every change is one Lua script, atomic on the server and timed by
the server's clock (``TIME``), so hosts with skewed clocks still agree.

Same arithmetic and verdicts as ``LocalState`` (buckets.py): keep the two in step. Requires the
``redis`` extra (``pip install 'botticelli[redis]'``); imported only when a Redis URL is set.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from .buckets import OK, Vector, Verdict

if TYPE_CHECKING:
    import redis
    import redis.asyncio

# KEYS[1]: the state hash. ARGV[1]: op; ARGV[2..9]: cap1..4, rate1..4; then per op:
#   reserve: amount1..4, margin, max_daily_wait -> {status, wait, kind, shift}
#   adjust:  delta1..4
#   sync:    target1..4 ("" = unknown)
#   block:   seconds
#   peek:    -> {level1..4, blocked_for, shift}
# ARGV[last]: ttl in seconds for the hash. Numbers go back as strings: Lua would truncate floats.
_SCRIPT = """
local key = KEYS[1]
local op = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local caps, rates = {}, {}
for k = 1, 4 do
  caps[k] = tonumber(ARGV[1 + k])
  rates[k] = tonumber(ARGV[5 + k])
end
local ttl = tonumber(ARGV[#ARGV])
local h = redis.call('HGETALL', key)
local s = {}
for i = 1, #h, 2 do s[h[i]] = tonumber(h[i + 1]) end
local blocked = s['b'] or 0
local shift = s['sh'] or 0
local levels, stamps = {}, {}
local function refill(k)
  local cap = caps[k]
  local level = s['l' .. k]
  local stamp = s['t' .. k]
  if level == nil then
    level = cap
    stamp = now
  else
    local old = s['c' .. k]
    if old ~= nil and old ~= cap then level = math.min(cap, level + cap - old) end
  end
  if now > stamp then
    level = math.min(cap, level + (now - stamp) * rates[k])
    stamp = now
  end
  levels[k] = level
  stamps[k] = stamp
  return level
end
local function store()
  local out = {'b', string.format('%.17g', blocked), 'sh', string.format('%.17g', shift)}
  for k = 1, 4 do
    if caps[k] > 0 then
      table.insert(out, 'l' .. k); table.insert(out, string.format('%.17g', levels[k]))
      table.insert(out, 't' .. k); table.insert(out, string.format('%.17g', stamps[k]))
      table.insert(out, 'c' .. k); table.insert(out, string.format('%.17g', caps[k]))
    end
  end
  redis.call('HSET', key, unpack(out))
  redis.call('EXPIRE', key, ttl)
end
if op == 'reserve' then
  local margin = tonumber(ARGV[14])
  local max_daily = tonumber(ARGV[15])
  local wait = math.max(blocked - now, 0)
  local binding = -1
  if wait > 0 then binding = 4 end
  local waits = {0, 0, 0, 0}
  for k = 1, 4 do
    if caps[k] > 0 then
      local level = refill(k)
      local amount = math.min(tonumber(ARGV[9 + k]), caps[k])
      local need = (amount - level) / rates[k] + margin
      local ahead = stamps[k] - now
      local w
      if need > 0 then w = ahead + need else w = math.max(ahead, 0) end
      waits[k] = w
      if w > wait then wait = w; binding = k - 1 end
    end
  end
  for _, k in ipairs({2, 4}) do
    if caps[k] > 0 and waits[k] > max_daily then
      return {'1', string.format('%.17g', waits[k]), tostring(k - 1), string.format('%.17g', shift)}
    end
  end
  for k = 1, 4 do
    if caps[k] > 0 then levels[k] = levels[k] - math.min(tonumber(ARGV[9 + k]), caps[k]) end
  end
  store()
  return {'0', string.format('%.17g', math.max(wait, 0)), tostring(binding), string.format('%.17g', shift)}
elseif op == 'adjust' then
  for k = 1, 4 do
    local d = tonumber(ARGV[9 + k])
    if caps[k] > 0 then
      local level = refill(k)
      if d ~= 0 then levels[k] = math.min(caps[k], level + d) end
    end
  end
  store()
  return 'ok'
elseif op == 'sync' then
  for k = 1, 4 do
    if caps[k] > 0 then
      local level = refill(k)
      local target = tonumber(ARGV[9 + k])
      if target ~= nil and target < level then levels[k] = target end
    end
  end
  store()
  return 'ok'
elseif op == 'block' then
  local untl = now + tonumber(ARGV[10])
  for k = 1, 4 do
    if caps[k] > 0 then refill(k) end
  end
  if untl > blocked then
    local extension = untl - math.max(blocked, now)
    for k = 1, 4 do
      if caps[k] > 0 then stamps[k] = math.max(stamps[k], now) + extension end
    end
    blocked = untl
    shift = shift + extension
  end
  store()
  return 'ok'
elseif op == 'peek' then
  local out = {}
  for k = 1, 4 do
    if caps[k] > 0 then table.insert(out, string.format('%.17g', refill(k))) else table.insert(out, '0') end
  end
  table.insert(out, string.format('%.17g', math.max(0, blocked - now)))
  table.insert(out, string.format('%.17g', shift))
  return out
end
return redis.error_reply('unknown op ' .. op)
"""


def _redis_module() -> Any:
    try:
        import redis.asyncio
    except ImportError:  # pragma: no cover - depends on the installation
        raise ConfigurationError(
            "a Redis URL is set for shared rate limits but the redis package is missing: "
            "pip install 'botticelli[redis]'"
        ) from None
    return redis


def _fmt(values: Sequence[float]) -> list[str]:
    return [repr(float(v)) for v in values]


class RedisState:
    """Bucket levels of one limiter, shared through Redis at ``url`` under ``key``."""

    def __init__(self, url: str, key: str, ttl: float) -> None:
        self._module = _redis_module()
        self.url = url
        self.key = key
        self._ttl = str(max(60, int(ttl)))
        # A redis.asyncio client belongs to the event loop that made it (like httpx2 pools).
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self._sync: Any = None
        self._shift = 0.0

    def _script(self) -> Any:
        loop = asyncio.get_running_loop()
        script = self._clients.get(loop)
        if script is None:
            client: redis.asyncio.Redis = self._module.asyncio.Redis.from_url(self.url)
            script = self._clients[loop] = client.register_script(_SCRIPT)
        return script

    async def _call(self, op: str, caps: Vector, rates: Vector, *extra: str) -> Any:
        args = [op, *_fmt(caps), *_fmt(rates), *extra, self._ttl]
        try:
            return await self._script()(keys=[self.key], args=args)
        except self._module.RedisError as exc:
            raise ConfigurationError(
                f"shared rate limits: Redis at {_safe(self.url)} failed: {exc}"
            ) from None

    async def reserve(
        self, caps: Vector, rates: Vector, amounts: Vector, margin: float, max_daily_wait: float
    ) -> Verdict:
        raw = await self._call("reserve", caps, rates, *_fmt(amounts), repr(margin), repr(max_daily_wait))
        status, wait, kind, shift = (x.decode() if isinstance(x, bytes) else str(x) for x in raw)
        self._shift = float(shift)
        return (OK if status == "0" else 1), float(wait), int(kind), self._shift, None

    async def adjust(self, caps: Vector, rates: Vector, deltas: Vector) -> None:
        await self._call("adjust", caps, rates, *_fmt(deltas))

    async def sync(self, caps: Vector, rates: Vector, targets: Sequence[float | None]) -> None:
        await self._call("sync", caps, rates, *("" if t is None else repr(float(t)) for t in targets))

    async def block(self, caps: Vector, rates: Vector, seconds: float) -> None:
        await self._call("block", caps, rates, repr(seconds), "0", "0", "0")

    async def current_shift(self, caps: Vector, rates: Vector) -> float:
        """The shared shift now (one round trip; only sleepers call it, after their sleep)."""
        return (await self.apeek(caps, rates))[2]

    async def apeek(self, caps: Vector, rates: Vector) -> tuple[list[float], float, float]:
        raw = await self._call("peek", caps, rates)
        values = [float(x.decode() if isinstance(x, bytes) else x) for x in raw]
        return values[:4], values[4], values[5]

    def peek(self, caps: Vector, rates: Vector) -> tuple[list[float], float]:
        """Blocking read for status displays (sync callers, the CLI)."""
        if self._sync is None:
            client = self._module.Redis.from_url(self.url)
            self._sync = client.register_script(_SCRIPT)
        args = ["peek", *_fmt(caps), *_fmt(rates), self._ttl]
        try:
            raw = self._sync(keys=[self.key], args=args)
        except self._module.RedisError as exc:
            raise ConfigurationError(
                f"shared rate limits: Redis at {_safe(self.url)} failed: {exc}"
            ) from None
        values = [float(x.decode() if isinstance(x, bytes) else x) for x in raw]
        return values[:4], values[4]


def _safe(url: str) -> str:
    """The URL without a password."""
    if "@" in url:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
