"""A circuit breaker per deployment: in memory on one process, in Redis across replicas.

Closed: requests pass, failures are counted in a window. `failures` of them within the window
open it: requests skip the deployment at once. After the cool-down exactly one request (the
probe) is let through (half-open); its success closes the breaker, its failure opens it again.
A probe that never reports back (its process died) frees the probe slot after `probe_ttl_s`.
"""

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

__all__ = [
    "Admission",
    "Breaker",
    "BreakerPolicy",
    "BreakerState",
    "MemoryBreaker",
    "RedisBreaker",
]

logger = logging.getLogger(__name__)


class Admission(StrEnum):
    PASS = "pass"
    PROBE = "probe"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failures: int
    window_s: float
    cooldown_s: float
    probe_ttl_s: float


@dataclass(frozen=True, slots=True)
class BreakerState:
    deployment: str
    state: Literal["closed", "open", "half_open"]
    recent_failures: int
    # Seconds until a probe may go through (open), 0 otherwise.
    retry_in_s: float


class Breaker(Protocol):
    policy: BreakerPolicy

    async def admit(self, name: str) -> Admission: ...

    async def failure(self, name: str, *, probe: bool) -> None: ...

    async def success(self, name: str, *, probe: bool) -> None: ...

    async def states(self, names: list[str]) -> list[BreakerState]: ...


@dataclass(slots=True)
class _Memory:
    failures: deque[float] = field(default_factory=deque)
    open_until: float = 0.0
    probe_until: float = 0.0


class MemoryBreaker:
    """Breakers of one process."""

    def __init__(self, policy: BreakerPolicy) -> None:
        self.policy = policy
        self._states: dict[str, _Memory] = {}

    async def admit(self, name: str) -> Admission:
        state = self._states.get(name)
        if state is None or not state.open_until:
            return Admission.PASS
        now = time.monotonic()
        if now < state.open_until or now < state.probe_until:
            return Admission.SKIP
        state.probe_until = now + self.policy.probe_ttl_s
        logger.warning("circuit breaker for %s is half-open: one probe goes through", name)
        return Admission.PROBE

    async def failure(self, name: str, *, probe: bool) -> None:
        state = self._states.setdefault(name, _Memory())
        now = time.monotonic()
        if probe:
            state.open_until, state.probe_until = now + self.policy.cooldown_s, 0.0
            logger.warning("circuit breaker for %s: the probe failed, open again", name)
            return
        if state.open_until:
            return
        state.failures.append(now)
        while state.failures and state.failures[0] < now - self.policy.window_s:
            state.failures.popleft()
        if len(state.failures) >= self.policy.failures:
            state.open_until = now + self.policy.cooldown_s
            state.failures.clear()
            logger.warning(
                "circuit breaker for %s opened after %d failures in %g s",
                name,
                self.policy.failures,
                self.policy.window_s,
            )

    async def success(self, name: str, *, probe: bool) -> None:
        if not probe:
            return
        state = self._states.get(name)
        if state is not None and state.open_until:
            self._states.pop(name)
            logger.warning("circuit breaker for %s closed: the probe succeeded", name)

    async def states(self, names: list[str]) -> list[BreakerState]:
        now = time.monotonic()
        result = []
        for name in names:
            state = self._states.get(name, _Memory())
            recent = sum(1 for at in state.failures if at >= now - self.policy.window_s)
            if not state.open_until:
                result.append(BreakerState(name, "closed", recent, 0.0))
            elif now < state.open_until:
                result.append(BreakerState(name, "open", recent, state.open_until - now))
            else:
                result.append(BreakerState(name, "half_open", recent, 0.0))
        return result


# KEYS: open_until, probe. ARGV: now_ms, probe_ttl_ms. Returns 0 skip, 1 pass, 2 probe.
_ADMIT = """
local open_until = redis.call('GET', KEYS[1])
if not open_until then return 1 end
if tonumber(open_until) > tonumber(ARGV[1]) then return 0 end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 2 end
return 0
"""
# KEYS: failures, open_until, probe. ARGV: now_ms, window_ms, threshold, cooldown_ms, probe.
# Returns 1 when this call opened the breaker, 2 when a failed probe opened it again.
_FAILURE = """
local open_until = tonumber(ARGV[1]) + tonumber(ARGV[4])
if ARGV[5] == '1' then
  redis.call('SET', KEYS[2], open_until)
  redis.call('DEL', KEYS[3])
  return 2
end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if count >= tonumber(ARGV[3]) then
  redis.call('SET', KEYS[2], open_until)
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""


class RedisBreaker:
    """Breakers shared by every hub process on the same Redis. A Redis that cannot be reached
    lets requests pass (the gateway keeps serving) and is logged."""

    def __init__(self, redis: Redis, policy: BreakerPolicy, prefix: str) -> None:
        self.policy = policy
        self._redis = redis
        self._prefix = prefix
        self._admit = redis.register_script(_ADMIT)
        self._failure = redis.register_script(_FAILURE)

    def _keys(self, name: str) -> tuple[str, str, str]:
        base = self._prefix + name
        return base + ":failures", base + ":open_until", base + ":probe"

    async def admit(self, name: str) -> Admission:
        _, open_until, probe = self._keys(name)
        try:
            code = await self._admit(
                keys=[open_until, probe], args=[_now_ms(), int(self.policy.probe_ttl_s * 1000)]
            )
        except RedisError as error:
            logger.warning("circuit breaker state unavailable (%s); letting %s pass", error, name)
            return Admission.PASS
        if code == 2:
            logger.warning("circuit breaker for %s is half-open: one probe goes through", name)
            return Admission.PROBE
        return Admission.PASS if code == 1 else Admission.SKIP

    async def failure(self, name: str, *, probe: bool) -> None:
        policy = self.policy
        args = [
            _now_ms(),
            int(policy.window_s * 1000),
            policy.failures,
            int(policy.cooldown_s * 1000),
            "1" if probe else "0",
        ]
        try:
            code = await self._failure(keys=list(self._keys(name)), args=args)
        except RedisError as error:
            logger.warning("could not count a failure of %s in Redis: %s", name, error)
            return
        if code == 1:
            logger.warning(
                "circuit breaker for %s opened after %d failures in %g s",
                name,
                policy.failures,
                policy.window_s,
            )
        elif code == 2:
            logger.warning("circuit breaker for %s: the probe failed, open again", name)

    async def success(self, name: str, *, probe: bool) -> None:
        if not probe:
            return
        try:
            removed = await self._redis.delete(*self._keys(name))
        except RedisError as error:
            logger.warning("could not close the circuit breaker of %s in Redis: %s", name, error)
            return
        if removed:
            logger.warning("circuit breaker for %s closed: the probe succeeded", name)

    async def states(self, names: list[str]) -> list[BreakerState]:
        if not names:
            return []
        keys = [key for name in names for key in self._keys(name)]
        values = await self._redis.mget(keys)
        now = _now_ms()
        result = []
        for i, name in enumerate(names):
            failures, open_until, _ = values[3 * i : 3 * i + 3]
            recent = int(failures or 0)
            if open_until is None:
                result.append(BreakerState(name, "closed", recent, 0.0))
            elif int(open_until) > now:
                result.append(BreakerState(name, "open", recent, (int(open_until) - now) / 1000))
            else:
                result.append(BreakerState(name, "half_open", recent, 0.0))
        return result


def _now_ms() -> int:
    return int(time.time() * 1000)
