"""Failed password sign-ins, counted per name and per address, so nobody can try passwords
fast. Kept in the hub's memory: each hub replica counts its own."""

import math
import time
from collections import deque

__all__ = ["SignInAttempts"]


class SignInAttempts:
    def __init__(
        self, *, per_name: int = 5, per_address: int = 20, window_s: float = 900.0
    ) -> None:
        self._per_name = per_name
        self._per_address = per_address
        self._window_s = window_s
        self._by_name: dict[str, deque[float]] = {}
        self._by_address: dict[str, deque[float]] = {}

    def _recent(self, table: dict[str, deque[float]], key: str, now: float) -> deque[float]:
        times = table.setdefault(key, deque())
        while times and times[0] <= now - self._window_s:
            times.popleft()
        return times

    def blocked_for(self, name: str, address: str) -> int:
        """Seconds until another attempt is allowed for this name and address; 0 now."""
        now = time.monotonic()
        waits = [0.0]
        for table, key, limit in (
            (self._by_name, name.lower(), self._per_name),
            (self._by_address, address, self._per_address),
        ):
            times = self._recent(table, key, now)
            if len(times) >= limit:
                waits.append(times[len(times) - limit] + self._window_s - now)
        return math.ceil(max(waits))

    def failed(self, name: str, address: str) -> None:
        now = time.monotonic()
        if len(self._by_name) > 100_000 or len(self._by_address) > 100_000:
            self._by_name.clear()
            self._by_address.clear()
        self._recent(self._by_name, name.lower(), now).append(now)
        self._recent(self._by_address, address, now).append(now)

    def succeeded(self, name: str) -> None:
        self._by_name.pop(name.lower(), None)
