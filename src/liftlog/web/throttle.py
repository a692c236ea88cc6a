"""Failed sign-ins counted per email and per client address, to slow down password guessing.

In memory and per server process: a restart forgets, and each of ``--workers N`` processes counts
on its own (so a guesser gets at most N times the allowance). Only failures count; a success clears
its email's count. While a key is over its limit, sign-in is refused before the password is even
checked, which also spares the server the argon2 hash an attempt costs.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

WINDOW_S = 15 * 60
PER_EMAIL = 5  # failures of one email in the window
PER_ADDRESS = 50  # failures from one client address (an office behind one NAT has many users)
MAX_KEYS = 50_000  # a bound on memory, whatever an attacker sends


class Throttle:
    def __init__(
        self,
        window_s: float = WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.window_s = window_s
        self.clock = clock
        self.max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def retry_after(self, limits: dict[str, int]) -> int:
        """Seconds until every key of ``limits`` ({key: allowed failures}) is under its limit."""
        now = self.clock()
        wait = 0.0
        for key, limit in limits.items():
            times = self._recent(key, now)
            if len(times) >= limit:
                wait = max(wait, times[len(times) - limit] + self.window_s - now)
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, *keys: str) -> None:
        now = self.clock()
        for key in keys:
            self._recent(key, now)
            self._failures.setdefault(key, deque()).append(now)
        while len(self._failures) > self.max_keys:  # forget the longest-known keys first
            del self._failures[next(iter(self._failures))]

    def clear(self, key: str) -> None:
        self._failures.pop(key, None)
