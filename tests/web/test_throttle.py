"""The sign-in throttle's window, with a clock the test moves."""

from __future__ import annotations

from liftlog.web.throttle import Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_is_refused_at_its_limit_until_its_oldest_failure_leaves_the_window() -> None:
    clock = Clock()
    throttle = Throttle(window_s=60, clock=clock)
    limits = {"email:a": 3, "address:x": 10}
    for at in (1000.0, 1010.0, 1030.0):
        clock.now = at
        assert throttle.retry_after(limits) == 0
        throttle.failed(*limits)
    clock.now = 1040.0  # the failure at 1000 leaves the 60 s window at 1060
    assert throttle.retry_after(limits) == 20
    clock.now = 1059.5
    assert throttle.retry_after(limits) == 1  # rounded up: never "0 s" while still refused
    clock.now = 1060.0
    assert throttle.retry_after(limits) == 0
    assert throttle.retry_after({"email:b": 3}) == 0  # other keys are not affected


def test_success_clears_an_email_and_memory_stays_bounded() -> None:
    clock = Clock()
    throttle = Throttle(window_s=60, clock=clock, max_keys=100)
    throttle.failed("email:a", "email:a")
    throttle.clear("email:a")
    assert throttle.retry_after({"email:a": 1}) == 0
    for i in range(1000):
        throttle.failed(f"email:{i}")
    assert len(throttle._failures) == 100
    assert throttle.retry_after({"email:999": 1}) > 0  # the newest are the ones kept
