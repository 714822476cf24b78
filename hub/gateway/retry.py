"""When and how long to wait before calling an upstream again."""

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp

__all__ = ["RETRYABLE_STATUSES", "RetryPolicy", "parse_retry_after"]

# A retry can fix these: the provider is overloaded, rate-limited or failing. Other 4xx are
# the request's own fault and go back to the client as they are.
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int
    backoff_s: float
    backoff_max_s: float
    deadline_s: float
    connect_timeout_s: float
    first_byte_timeout_s: float
    read_timeout_s: float
    total_timeout_s: float

    def session_timeout(self) -> aiohttp.ClientTimeout:
        """Every call's: connecting, and each read. The rest is timed by the gateway."""
        return aiohttp.ClientTimeout(
            total=None, sock_connect=self.connect_timeout_s, sock_read=self.read_timeout_s
        )

    def stream_timeout(self) -> aiohttp.ClientTimeout:
        """A stream's: the total time-out covers it to its end."""
        return aiohttp.ClientTimeout(
            total=self.total_timeout_s,
            sock_connect=self.connect_timeout_s,
            sock_read=self.read_timeout_s,
        )

    def backoff(self, retry: int) -> float:
        """Exponential backoff with full jitter before the `retry`-th call of a deployment."""
        return random.uniform(0.0, min(self.backoff_max_s, self.backoff_s * 2 ** (retry - 1)))


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
