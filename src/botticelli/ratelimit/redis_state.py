"""The limiter's buckets in Redis, so several processes or hosts on one quota stay under it
together. One hash per limiter; every change is one Lua script, atomic on the server and timed by
the server's clock (``TIME``), so hosts with skewed clocks still agree.

Same arithmetic and verdicts as ``LocalState`` (buckets.py): keep the two in step. Requires the
``redis`` extra (``pip install 'botticelli[redis]'``); imported only when a Redis URL is set.

Calls go through one thread-safe synchronous client in a worker thread (``asyncio.to_thread``):
it belongs to no event loop, so the blocking API's loops and ``asyncio.run`` leave no client
behind, and every call is bounded (socket timeouts, no retries, and a hard ``wait_for``) so a
dead or black-holed Redis costs at most ``HARD_TIMEOUT`` before the limiter degrades to
in-process limits (state.py). A failure is a ``SharedStateError``, never a configuration error;
only a malformed URL is one.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from .. import _defaults
from ..errors import ConfigurationError, redact
from .buckets import OK, Vector, Verdict

#: Seconds a connect or a reply may take (Redis answers a script in well under a millisecond).
SOCKET_TIMEOUT = _defaults.REDIS_TIMEOUT
#: Seconds any awaited call takes at most, whatever the socket layer does.
HARD_TIMEOUT = _defaults.REDIS_HARD_TIMEOUT
_SCHEMES = ("redis", "rediss", "unix")

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
-- Every op ends its reply with the levels and the block, so the caller always has the last
-- known shared state (status displays read it without a round trip).
local function tail(out)
  for k = 1, 4 do
    if caps[k] > 0 and levels[k] ~= nil then
      table.insert(out, string.format('%.17g', levels[k]))
    else
      table.insert(out, '0')
    end
  end
  table.insert(out, string.format('%.17g', math.max(0, blocked - now)))
  table.insert(out, string.format('%.17g', shift))
  return out
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
      return tail({'1', string.format('%.17g', waits[k]), tostring(k - 1), string.format('%.17g', shift)})
    end
  end
  for k = 1, 4 do
    if caps[k] > 0 then levels[k] = levels[k] - math.min(tonumber(ARGV[9 + k]), caps[k]) end
  end
  store()
  local head = {'0', string.format('%.17g', math.max(wait, 0)), tostring(binding)}
  table.insert(head, string.format('%.17g', shift))
  return tail(head)
elseif op == 'adjust' then
  for k = 1, 4 do
    local d = tonumber(ARGV[9 + k])
    if caps[k] > 0 then
      local level = refill(k)
      if d > 0 then
        levels[k] = math.min(caps[k], level + d)
      elseif d < 0 then
        levels[k] = math.max(level + d, math.min(level, 0))
      end
    end
  end
  store()
  return tail({})
elseif op == 'sync' then
  for k = 1, 4 do
    if caps[k] > 0 then
      local level = refill(k)
      local target = tonumber(ARGV[9 + k])
      if target ~= nil and target < level then levels[k] = target end
    end
  end
  store()
  return tail({})
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
  return tail({})
elseif op == 'peek' then
  for k = 1, 4 do
    if caps[k] > 0 then refill(k) end
  end
  return tail({})
end
return redis.error_reply('unknown op ' .. op)
"""


class SharedStateError(Exception):
    """One call to the shared state failed (unreachable, timed out, refused); the limiter goes on
    with in-process limits."""


def _redis_module() -> Any:
    try:
        import redis
        import redis.backoff
        import redis.connection
        import redis.retry
    except ImportError:  # pragma: no cover - depends on the installation
        raise ConfigurationError(
            "a Redis URL is set for shared rate limits but the redis package is missing: "
            "pip install 'botticelli[redis]'"
        ) from None
    return redis


def check_url(url: str, where: str) -> None:
    """Raise ``ConfigurationError`` naming ``where`` (the variable or argument the URL came from)
    unless ``url`` is a Redis URL redis-py can use; credentials never appear in the message."""
    module = _redis_module()
    reason = ""
    try:
        parts = urlsplit(url)
        if parts.scheme not in _SCHEMES:
            reason = f"the scheme must be one of {', '.join(s + '://' for s in _SCHEMES)}"
        else:
            _ = parts.port  # "host:notaport" and out-of-range ports raise here
            module.connection.parse_url(url)
    except (ValueError, TypeError) as exc:
        reason = str(exc) or type(exc).__name__
    if reason:
        raise ConfigurationError(
            f"{where}: {redact(url)!r} is not a usable Redis URL for shared rate limits ({reason}); "
            "expected redis://host[:port][/db] (with user:password@ before the host if it needs "
            "them), rediss://... or unix:///path"
        )


def _fmt(values: Sequence[float]) -> list[str]:
    return [repr(float(v)) for v in values]


def _floats(raw: Sequence[Any]) -> list[float]:
    return [float(x.decode() if isinstance(x, bytes) else x) for x in raw]


#: What the last call saw: levels, seconds blocked, monotonic time, caps and rates then.
Snapshot = tuple[list[float], float, float, Vector, Vector]


class RedisState:
    """Bucket levels of one limiter, shared through Redis at ``url`` under ``key``. ``where``
    names the setting the URL came from, for the error a malformed one raises."""

    def __init__(self, url: str, key: str, ttl: float, *, where: str = "redis_url") -> None:
        self._module = _redis_module()
        check_url(url, where)
        self.url = url
        self.key = key
        self._ttl = str(max(60, int(ttl)))
        self._lock = threading.Lock()
        self._client: Any = None
        self._script: Any = None
        self._shift = 0.0
        self.snapshot: Snapshot | None = None

    def _options(self) -> dict[str, Any]:
        module = self._module
        return {
            "socket_timeout": SOCKET_TIMEOUT,
            "socket_connect_timeout": SOCKET_TIMEOUT,
            "retry": module.retry.Retry(module.backoff.NoBackoff(), 0),
        }

    def _run(self, args: list[str]) -> list[Any]:
        """One script call on the shared client (blocking: runs in a worker thread)."""
        with self._lock:
            if self._script is None:
                self._client = self._module.Redis.from_url(self.url, **self._options())
                self._script = self._client.register_script(_SCRIPT)
            script = self._script
        try:
            return list(script(keys=[self.key], args=args))
        except (self._module.RedisError, OSError, ValueError) as exc:
            raise SharedStateError(redact(str(exc) or type(exc).__name__)) from None

    def _remember(self, raw: Sequence[Any], caps: Vector, rates: Vector) -> list[float]:
        values = _floats(raw)
        tail = values[-6:]
        self._shift = tail[5]
        self.snapshot = (tail[:4], tail[4], time.monotonic(), caps, rates)
        return values

    async def _call(self, op: str, caps: Vector, rates: Vector, *extra: str) -> list[float]:
        args = [op, *_fmt(caps), *_fmt(rates), *extra, self._ttl]
        try:
            raw = await asyncio.wait_for(asyncio.to_thread(self._run, args), HARD_TIMEOUT)
        except TimeoutError:
            raise SharedStateError(f"no answer within {HARD_TIMEOUT:g} s") from None
        except RuntimeError as exc:  # no worker thread to be had (interpreter shutting down)
            raise SharedStateError(str(exc)) from None
        return self._remember(raw, caps, rates)

    async def reserve(
        self, caps: Vector, rates: Vector, amounts: Vector, margin: float, max_daily_wait: float
    ) -> Verdict:
        values = await self._call(
            "reserve", caps, rates, *_fmt(amounts), repr(float(margin)), repr(float(max_daily_wait))
        )
        status, wait, kind, shift = values[:4]
        return (OK if status == 0 else 1), wait, int(kind), shift, None

    async def adjust(self, caps: Vector, rates: Vector, deltas: Vector) -> None:
        await self._call("adjust", caps, rates, *_fmt(deltas))

    async def sync(self, caps: Vector, rates: Vector, targets: Sequence[float | None]) -> None:
        await self._call("sync", caps, rates, *("" if t is None else repr(float(t)) for t in targets))

    async def block(self, caps: Vector, rates: Vector, seconds: float) -> None:
        await self._call("block", caps, rates, repr(float(seconds)), "0", "0", "0")

    async def current_shift(self, caps: Vector, rates: Vector) -> float:
        """The shared shift now (one round trip; only sleepers call it, after their sleep)."""
        return (await self.apeek(caps, rates))[2]

    async def apeek(self, caps: Vector, rates: Vector) -> tuple[list[float], float, float]:
        values = await self._call("peek", caps, rates)
        return values[:4], values[4], values[5]

    def peek(self, caps: Vector, rates: Vector) -> tuple[list[float], float]:
        """Blocking read for status displays when no event loop runs in this thread (the CLI):
        a short-lived client with short timeouts, closed before returning."""
        args = ["peek", *_fmt(caps), *_fmt(rates), self._ttl]
        try:
            with self._module.Redis.from_url(self.url, **self._options()) as client:
                raw = client.register_script(_SCRIPT)(keys=[self.key], args=args)
        except (self._module.RedisError, OSError, ValueError) as exc:
            raise SharedStateError(redact(str(exc) or type(exc).__name__)) from None
        values = self._remember(raw, caps, rates)
        return values[:4], values[4]

    def last_known(self, caps: Vector, rates: Vector) -> tuple[list[float], float, float] | None:
        """The levels the last call saw, refilled for the time since (no round trip): what a
        status display inside an event loop shows. ``None`` before the first call. Returns
        (levels, blocked for, seconds since the read)."""
        snapshot = self.snapshot
        if snapshot is None:
            return None
        levels, blocked, at, _, _ = snapshot
        age = max(0.0, time.monotonic() - at)
        refill = max(0.0, age - blocked)
        now = [min(caps[k], levels[k] + refill * rates[k]) if caps[k] > 0 else 0.0 for k in range(4)]
        return now, max(0.0, blocked - age), age

    def close(self) -> None:
        """Close the shared client (a later call opens a new one)."""
        with self._lock:
            client, self._client, self._script = self._client, None, None
        if client is not None:
            client.close()
