"""Per-service limits: requests and tokens per minute, and a monthly budget in money.

Minutes are fixed windows (the clock's minutes). Tokens and cost are known only once a call
has ended, so a call is refused when the minute's tokens or the month's spend are already at
the limit. A month's spend starts from the usage records (read once per service and month)
and then grows with each call. Counters live in memory, or in Redis so that every hub
replica counts the same requests. A Redis that cannot be reached lets requests pass.
"""

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Protocol

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from hub.gateway.errors import GatewayError
from hub.services.service_accounts import ServiceIdentity

__all__ = ["Limits", "MemoryLimits", "RedisLimits", "SpendSeed"]

logger = logging.getLogger(__name__)

# What a service spent since the start of a month, from the usage records.
SpendSeed = Callable[[int, datetime], Awaitable[float]]
_MONTH_TTL_S = 40 * 86400


class Limits(Protocol):
    async def admit(self, service: ServiceIdentity) -> None: ...

    def spend(self, service: ServiceIdentity, tokens: int, cost_usd: float) -> None: ...


def _month_start(now: float) -> datetime:
    day = datetime.fromtimestamp(now, UTC)
    return datetime(day.year, day.month, 1, tzinfo=UTC)


def _next_month(start: datetime) -> datetime:
    if start.month == 12:
        return datetime(start.year + 1, 1, 1, tzinfo=UTC)
    return datetime(start.year, start.month + 1, 1, tzinfo=UTC)


def _too_many(service: ServiceIdentity, limit: int, unit: str, now: float) -> GatewayError:
    wait = max(1, math.ceil(60 - now % 60))
    return GatewayError(
        429,
        f"Service {service.name!r} is over its limit of {limit} {unit} per minute; "
        f"try again in {wait} s.",
        type="rate_limit_error",
        code=f"{unit}_per_minute_limit",
        headers={"retry-after": str(wait)},
    )


def _money(amount: float) -> str:
    return f"${amount:,.2f}" if amount >= 0.01 or amount == 0 else f"${amount:.2g}"


def _over_budget(service: ServiceIdentity, spent: float, now: float) -> GatewayError:
    start = _month_start(now)
    resets = _next_month(start)
    wait = max(1, math.ceil(resets.timestamp() - now))
    return GatewayError(
        429,
        f"Service {service.name!r} has used its monthly budget of "
        f"{_money(service.monthly_budget_usd or 0.0)} ({_money(spent)} spent since "
        f"{start:%Y-%m-%d}); "
        f"it renews on {resets:%Y-%m-%d}. An admin can raise it with "
        "'switchboard service limits'.",
        type="rate_limit_error",
        code="monthly_budget_exceeded",
        headers={"retry-after": str(wait)},
    )


class MemoryLimits:
    """Counters of one process."""

    def __init__(self, seed: SpendSeed) -> None:
        self._seed = seed
        self._requests: dict[int, tuple[int, int]] = {}
        self._tokens: dict[int, tuple[int, int]] = {}
        self._spent: dict[int, tuple[datetime, float]] = {}

    async def admit(self, service: ServiceIdentity) -> None:
        now = time.time()
        minute = int(now // 60)
        if service.monthly_budget_usd is not None:
            start = _month_start(now)
            known = self._spent.get(service.id)
            if known is None or known[0] != start:
                seeded = await self._seed(service.id, start)
                known = self._spent.setdefault(service.id, (start, seeded))
            if known[1] >= service.monthly_budget_usd:
                raise _over_budget(service, known[1], now)
        if service.tpm_limit:
            at, used = self._tokens.get(service.id, (minute, 0))
            if at == minute and used >= service.tpm_limit:
                raise _too_many(service, service.tpm_limit, "tokens", now)
        if service.rpm_limit:
            at, count = self._requests.get(service.id, (minute, 0))
            count = count if at == minute else 0
            if count >= service.rpm_limit:
                raise _too_many(service, service.rpm_limit, "requests", now)
            self._requests[service.id] = (minute, count + 1)

    def spend(self, service: ServiceIdentity, tokens: int, cost_usd: float) -> None:
        now = time.time()
        if service.tpm_limit:
            minute = int(now // 60)
            at, used = self._tokens.get(service.id, (minute, 0))
            self._tokens[service.id] = (minute, (used if at == minute else 0) + tokens)
        known = self._spent.get(service.id)
        if known is not None and known[0] == _month_start(now):
            self._spent[service.id] = (known[0], known[1] + cost_usd)


class RedisLimits:
    """Counters shared by every hub process on the same Redis: one round trip per request."""

    def __init__(self, redis: Redis, seed: SpendSeed, prefix: str) -> None:
        self._redis = redis
        self._seed = seed
        self._prefix = prefix
        self._tasks: set[asyncio.Task[None]] = set()

    def _key(self, service: ServiceIdentity, what: str, window: str) -> str:
        return f"{self._prefix}{service.id}:{what}:{window}"

    async def admit(self, service: ServiceIdentity) -> None:
        now = time.time()
        minute = str(int(now // 60))
        start = _month_start(now)
        spent_key = self._key(service, "spent", f"{start:%Y-%m}")
        pipe = self._redis.pipeline(transaction=False)
        if service.monthly_budget_usd is not None:
            pipe.get(spent_key)
        if service.tpm_limit:
            pipe.get(self._key(service, "tokens", minute))
        if service.rpm_limit:
            requests_key = self._key(service, "requests", minute)
            pipe.incr(requests_key)
            pipe.expire(requests_key, 120)
        try:
            results = list(await pipe.execute())
            if service.monthly_budget_usd is not None:
                spent = results.pop(0)
                if spent is None:
                    spent = await self._seed_month(spent_key, service, start)
                if float(spent) >= service.monthly_budget_usd:
                    raise _over_budget(service, float(spent), now)
        except RedisError as error:
            logger.warning("limit counters unavailable (%s); letting %s pass", error, service.name)
            return
        if service.tpm_limit and int(results.pop(0) or 0) >= service.tpm_limit:
            raise _too_many(service, service.tpm_limit, "tokens", now)
        if service.rpm_limit and int(results.pop(0)) > service.rpm_limit:
            raise _too_many(service, service.rpm_limit, "requests", now)

    async def _seed_month(self, key: str, service: ServiceIdentity, start: datetime) -> float:
        seeded = await self._seed(service.id, start)
        await self._redis.set(key, repr(seeded), nx=True, ex=_MONTH_TTL_S)
        return float(await self._redis.get(key) or seeded)

    def spend(self, service: ServiceIdentity, tokens: int, cost_usd: float) -> None:
        now = time.time()
        pipe = self._redis.pipeline(transaction=False)
        if service.tpm_limit:
            key = self._key(service, "tokens", str(int(now // 60)))
            pipe.incrby(key, tokens)
            pipe.expire(key, 120)
        if service.monthly_budget_usd is not None:
            pipe.incrbyfloat(self._key(service, "spent", f"{_month_start(now):%Y-%m}"), cost_usd)
        task = asyncio.create_task(self._send(pipe))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _send(pipe: Pipeline) -> None:
        try:
            await pipe.execute()
        except RedisError as error:
            logger.warning("could not count usage against limits in Redis: %s", error)
