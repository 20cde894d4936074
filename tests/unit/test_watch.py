"""The watch loop with a plain fake clock: no real time passes."""
from __future__ import annotations

import pytest

from monitor_samples import metrics
from twilight_ops.errors import Unreachable
from twilight_ops.monitor.watch import RetryPolicy, WatchUnreachable, watch


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


class Fetcher:
    """Returns metrics numbered by call; `script` entries: seconds to take, or an exception."""

    def __init__(self, t: FakeTime, script: list | None = None):
        self.t, self.script, self.calls, self.at = t, list(script or []), 0, []

    def __call__(self):
        self.calls += 1
        self.at.append(self.t.now)
        step = self.script.pop(0) if self.script else 0.0
        if isinstance(step, BaseException):
            raise step
        self.t.now += step
        return metrics(total=self.calls)


def test_rounds_on_a_fixed_schedule_until_the_deadline():
    t = FakeTime()
    fetch = Fetcher(t, [1.0, 1.0, 1.0, 1.0])
    seen = []
    s = watch(fetch, 10, 30, t.clock, t.sleep, lambda n, prev, cur: seen.append((n, prev and prev.total, cur.total)))
    assert fetch.at == [1000.0, 1010.0, 1020.0, 1030.0]
    assert t.sleeps == [9.0, 9.0, 9.0]
    assert seen == [(1, None, 1), (2, 1, 2), (3, 2, 3), (4, 3, 4)]
    assert (s.rounds, s.stopped, s.last.total, s.reconnects) == (4, "deadline", 4, 0)
    assert s.elapsed_s == 31.0


def test_a_slow_round_skips_the_slots_it_overran():
    t = FakeTime()
    fetch = Fetcher(t, [25.0, 0.0])
    s = watch(fetch, 10, 30, t.clock, t.sleep, lambda *a: None)
    assert fetch.at == [1000.0, 1030.0] and s.rounds == 2


def test_reconnects_with_backoff_then_continues():
    t = FakeTime()
    fetch = Fetcher(t, [Unreachable("ssh: connection reset"), Unreachable("ssh: timed out"), 0.0])
    retries = []
    s = watch(fetch, 60, 0, t.clock, t.sleep, lambda *a: None,
              retry=RetryPolicy(attempts=5, first_wait_s=2, max_wait_s=30),
              on_retry=lambda attempt, err, wait: retries.append((attempt, err.message, wait)))
    assert retries == [(1, "ssh: connection reset", 2.0), (2, "ssh: timed out", 4.0)]
    assert t.sleeps == [2.0, 4.0]
    assert (s.rounds, s.reconnects, s.stopped) == (1, 2, "deadline")


def test_gives_up_after_bounded_retries_with_the_summary():
    t = FakeTime()
    fetch = Fetcher(t, [0.0] + [Unreachable("gone")] * 10)
    with pytest.raises(WatchUnreachable) as e:
        watch(fetch, 10, 100, t.clock, t.sleep, lambda *a: None, retry=RetryPolicy(attempts=3, first_wait_s=1, max_wait_s=30))
    assert e.value.exit_code == 3
    assert (e.value.summary.rounds, e.value.summary.stopped, e.value.summary.last.total) == (1, "unreachable", 1)
    assert fetch.calls == 4 and t.sleeps == [10.0, 1.0, 2.0]


def test_ctrl_c_stops_cleanly_with_a_summary():
    t = FakeTime()
    fetch = Fetcher(t, [0.0, 0.0, KeyboardInterrupt()])
    s = watch(fetch, 5, None, t.clock, t.sleep, lambda *a: None)
    assert (s.rounds, s.stopped, s.last.total) == (2, "interrupted", 2)


def test_ctrl_c_during_the_sleep():
    t = FakeTime()

    def sleep(seconds: float) -> None:
        raise KeyboardInterrupt

    s = watch(Fetcher(t), 5, None, t.clock, sleep, lambda *a: None)
    assert (s.rounds, s.stopped) == (1, "interrupted")


def test_other_errors_are_not_retried():
    t = FakeTime()
    fetch = Fetcher(t, [ValueError("bug")])
    with pytest.raises(ValueError):
        watch(fetch, 5, 10, t.clock, t.sleep, lambda *a: None)
    assert fetch.calls == 1


def test_rejects_a_nonsense_schedule():
    t = FakeTime()
    with pytest.raises(ValueError):
        watch(Fetcher(t), 0, 10, t.clock, t.sleep, lambda *a: None)
