"""Per-service limits: requests and tokens per minute, and a monthly budget in money.

Minutes are fixed windows (the clock's minutes). Tokens are known only once a call has
ended, so a call is refused when the minute's tokens are already at the limit. The budget is
held before the call: a call reserves what it can cost at most (an estimate from its request),
is refused when that does not fit in what the month's spend and the calls under way leave,
and settles to its real cost when it ends (a failed call releases its reservation), so
concurrent calls cannot spend past the budget. A month's spend starts from the usage records
(read once per service and month) and then grows with each call. Counters live in memory, or
in Redis so that every hub replica counts the same requests. A Redis that cannot be reached
lets requests pass.
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
# Reservations in Redis expire after a quiet spell this long, so those of a hub that died with
# calls under way do not hold the budget for good. Longer than any call can last.
_RESERVED_TTL_S = 3600


class Limits(Protocol):
    async def admit(self, service: ServiceIdentity, reserve_usd: float) -> float:
        """Refuse the call (a GatewayError) or admit it; what it reserved of the budget."""
        ...

    def spend(
        self, service: ServiceIdentity, tokens: int, cost_usd: float, reserved_usd: float
    ) -> None:
        """Count a call that ended, and release what it reserved."""
        ...


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


def _over_budget(
    service: ServiceIdentity, spent: float, held: float, asked: float, now: float
) -> GatewayError:
    """`spent` this month, `held` by calls under way, `asked` by the call refused."""
    budget = service.monthly_budget_usd or 0.0
    start = _month_start(now)
    resets = _next_month(start)
    under_way = f", {_money(held)} held by calls under way" if held > 0 else ""
    needs = (
        f"; this call could cost up to {_money(asked)} (a lower max_tokens holds less)"
        if asked > 0
        else ""
    )
    if held > 0 and spent + asked <= budget:
        # It fits once the calls under way have settled.
        wait = 1
        then = "it may fit once the calls under way end; try again shortly."
    else:
        wait = max(1, math.ceil(resets.timestamp() - now))
        then = (
            f"it renews on {resets:%Y-%m-%d}. An admin can raise it with "
            "'switchboard service limits'."
        )
    return GatewayError(
        429,
        f"Service {service.name!r} has used its monthly budget of {_money(budget)} "
        f"({_money(spent)} spent since {start:%Y-%m-%d}{under_way}{needs}); {then}",
        type="rate_limit_error",
        code="monthly_budget_exceeded",
        headers={"retry-after": str(wait)},
    )


def _refused(spent: float, held: float, asked: float, budget: float) -> bool:
    return spent >= budget or spent + held + asked > budget


class MemoryLimits:
    """Counters of one process."""

    def __init__(self, seed: SpendSeed) -> None:
        self._seed = seed
        self._requests: dict[int, tuple[int, int]] = {}
        self._tokens: dict[int, tuple[int, int]] = {}
        self._spent: dict[int, tuple[datetime, float]] = {}
        self._held: dict[int, float] = {}

    async def admit(self, service: ServiceIdentity, reserve_usd: float) -> float:
        now = time.time()
        minute = int(now // 60)
        budget = service.monthly_budget_usd
        if budget is not None:
            start = _month_start(now)
            known = self._spent.get(service.id)
            if known is None or known[0] != start:
                seeded = await self._seed(service.id, start)
                known = self._spent.setdefault(service.id, (start, seeded))
            held = self._held.get(service.id, 0.0)
            if _refused(known[1], held, reserve_usd, budget):
                raise _over_budget(service, known[1], held, reserve_usd, now)
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
        if budget is None or reserve_usd <= 0:
            return 0.0
        self._held[service.id] = self._held.get(service.id, 0.0) + reserve_usd
        return reserve_usd

    def spend(
        self, service: ServiceIdentity, tokens: int, cost_usd: float, reserved_usd: float
    ) -> None:
        now = time.time()
        if service.tpm_limit:
            minute = int(now // 60)
            at, used = self._tokens.get(service.id, (minute, 0))
            self._tokens[service.id] = (minute, (used if at == minute else 0) + tokens)
        known = self._spent.get(service.id)
        if known is not None and known[0] == _month_start(now):
            self._spent[service.id] = (known[0], known[1] + cost_usd)
        if reserved_usd:
            held = self._held.pop(service.id, 0.0) - reserved_usd
            # What is left of sums of floats once every call has settled is rounding.
            if held > 1e-12:
                self._held[service.id] = held


class RedisLimits:
    """Counters shared by every hub process on the same Redis: one round trip per request
    (two when the budget refuses it, to release what it reserved)."""

    def __init__(self, redis: Redis, seed: SpendSeed, prefix: str) -> None:
        self._redis = redis
        self._seed = seed
        self._prefix = prefix
        self._tasks: set[asyncio.Task[None]] = set()

    def _key(self, service: ServiceIdentity, what: str, window: str) -> str:
        return f"{self._prefix}{service.id}:{what}:{window}"

    async def admit(self, service: ServiceIdentity, reserve_usd: float) -> float:
        now = time.time()
        minute = str(int(now // 60))
        start = _month_start(now)
        budget = service.monthly_budget_usd
        spent_key = self._key(service, "spent", f"{start:%Y-%m}")
        held_key = self._key(service, "held", "all")
        reserve = reserve_usd if budget is not None and reserve_usd > 0 else 0.0
        pipe = self._redis.pipeline(transaction=False)
        if budget is not None:
            pipe.get(spent_key)
            # Reserved first and given back when refused: Redis orders the increments, so
            # calls racing for the last of the budget can never all get it.
            pipe.incrbyfloat(held_key, reserve)
            pipe.expire(held_key, _RESERVED_TTL_S)
        if service.tpm_limit:
            pipe.get(self._key(service, "tokens", minute))
        if service.rpm_limit:
            requests_key = self._key(service, "requests", minute)
            pipe.incr(requests_key)
            pipe.expire(requests_key, 120)
        refusal: GatewayError | None = None
        try:
            results = list(await pipe.execute())
            if budget is not None:
                spent, held = results.pop(0), float(results.pop(0)) - reserve
                results.pop(0)
                if spent is None:
                    spent = await self._seed_month(spent_key, service, start)
                if _refused(float(spent), held, reserve, budget):
                    refusal = _over_budget(service, float(spent), held, reserve, now)
        except RedisError as error:
            logger.warning("limit counters unavailable (%s); letting %s pass", error, service.name)
            return 0.0
        tokens = int(results.pop(0) or 0) if service.tpm_limit else 0
        requests = int(results.pop(0)) if service.rpm_limit else 0
        if refusal is None and service.tpm_limit and tokens >= service.tpm_limit:
            refusal = _too_many(service, service.tpm_limit, "tokens", now)
        if refusal is None and service.rpm_limit and requests > service.rpm_limit:
            refusal = _too_many(service, service.rpm_limit, "requests", now)
        if refusal is not None:
            if reserve:
                await self._release(held_key, reserve)
            raise refusal
        return reserve

    async def _release(self, held_key: str, amount: float) -> None:
        try:
            await self._redis.incrbyfloat(held_key, -amount)
        except RedisError as error:
            logger.warning("could not release a budget reservation in Redis: %s", error)

    async def _seed_month(self, key: str, service: ServiceIdentity, start: datetime) -> float:
        seeded = await self._seed(service.id, start)
        await self._redis.set(key, repr(seeded), nx=True, ex=_MONTH_TTL_S)
        return float(await self._redis.get(key) or seeded)

    def spend(
        self, service: ServiceIdentity, tokens: int, cost_usd: float, reserved_usd: float
    ) -> None:
        now = time.time()
        pipe = self._redis.pipeline(transaction=False)
        if service.tpm_limit:
            key = self._key(service, "tokens", str(int(now // 60)))
            pipe.incrby(key, tokens)
            pipe.expire(key, 120)
        if service.monthly_budget_usd is not None:
            pipe.incrbyfloat(self._key(service, "spent", f"{_month_start(now):%Y-%m}"), cost_usd)
        if reserved_usd:
            pipe.incrbyfloat(self._key(service, "held", "all"), -reserved_usd)
        task = asyncio.create_task(self._send(pipe))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _send(pipe: Pipeline) -> None:
        try:
            await pipe.execute()
        except RedisError as error:
            logger.warning("could not count usage against limits in Redis: %s", error)
