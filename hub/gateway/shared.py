"""Building the gateway with its breakers and limit counters: in memory on one process, in
Redis when `REDIS_URL` is set, so every hub replica and worker shares them."""

from datetime import datetime

import anyio
from redis.asyncio import Redis
from sqlalchemy import Engine

from hub.core.config import Settings
from hub.core.metrics import GatewayMetrics
from hub.gateway.breaker import Breaker, BreakerPolicy, MemoryBreaker, RedisBreaker
from hub.gateway.limits import Limits, MemoryLimits, RedisLimits
from hub.gateway.model_catalog import ModelCatalog
from hub.gateway.proxy import Gateway
from hub.gateway.retry import RetryPolicy
from hub.services.usage import UsageRecorder, spent_since

__all__ = ["build_gateway"]


def build_gateway(
    settings: Settings,
    catalog: ModelCatalog,
    recorder: UsageRecorder,
    engine: Engine,
    metrics: GatewayMetrics,
) -> tuple[Gateway, Redis | None]:
    """The gateway, and the Redis client it uses (None without `REDIS_URL`), to close."""
    policy = RetryPolicy(
        attempts=settings.retry_attempts,
        backoff_s=settings.retry_backoff_s,
        backoff_max_s=settings.retry_backoff_max_s,
        deadline_s=settings.request_deadline_s,
        connect_timeout_s=settings.upstream_connect_timeout_s,
        first_byte_timeout_s=settings.upstream_first_byte_timeout_s,
        read_timeout_s=settings.upstream_read_timeout_s,
        total_timeout_s=settings.upstream_total_timeout_s,
    )
    breaker_policy = BreakerPolicy(
        failures=settings.breaker_failures,
        window_s=settings.breaker_window_s,
        cooldown_s=settings.breaker_cooldown_s,
        # A probe that never reports back (its hub went away) frees the slot after this.
        probe_ttl_s=settings.request_deadline_s,
    )

    async def seed(service_id: int, since: datetime) -> float:
        return await anyio.to_thread.run_sync(spent_since, engine, service_id, since)

    redis: Redis | None = None
    breaker: Breaker
    limits: Limits
    if settings.redis_url:
        redis = Redis.from_url(settings.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
        breaker = RedisBreaker(redis, breaker_policy, prefix=settings.redis_prefix + "breaker:")
        limits = RedisLimits(redis, seed, prefix=settings.redis_prefix + "limit:")
    else:
        breaker = MemoryBreaker(breaker_policy)
        limits = MemoryLimits(seed)
    gateway = Gateway(
        catalog=catalog,
        recorder=recorder,
        policy=policy,
        breaker=breaker,
        limits=limits,
        metrics=metrics,
    )
    return gateway, redis
