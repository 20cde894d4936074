"""`inv monitor --watch`: fetch metrics every `every_s` until `until_s`, pure-ish.

Time is injected (`clock` = monotonic seconds, `sleep`), so tests drive it with
plain fakes. Rounds run at start + k*every_s (no drift; a slow round skips the
slots it overran) while that time is <= start + until_s. A fetch raising
`Unreachable` is retried with bounded exponential backoff (tenacity, same
injected sleep); when the retries are spent the watch stops with
`WatchUnreachable` (exit 3) carrying the summary so far. Ctrl-C stops cleanly
and returns the summary.

Typical wiring:

    th = settings.thresholds
    prev: Assessment | None = None
    def on_round(n, _prev, cur):
        nonlocal prev
        a = assess(cur, th); console.print(round_line(prev, a, n)); prev = a
    summary = watch(fetch, 60, 3600, time.monotonic, time.sleep, on_round, on_retry=say_reconnecting)
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Literal, TypeVar

import tenacity

from ..errors import Unreachable

R = TypeVar("R")                  # one round's evidence: Metrics for inv monitor, RoundEvidence for the guard
Fetch = Callable[[], R]
OnRound = Callable[[int, "R | None", R], None]
OnRetry = Callable[[int, Unreachable, float], None]   # (failed attempt, error, wait before next)


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5          # fetch attempts per round, the first included
    first_wait_s: float = 2.0  # then 4, 8, 16 …
    max_wait_s: float = 30.0


@dataclasses.dataclass(frozen=True)
class WatchSummary:
    rounds: int
    stopped: Literal["deadline", "interrupted", "unreachable"]
    last: Any                      # the last round's evidence (Metrics for inv monitor), None before one
    started_at: float
    ended_at: float
    reconnects: int

    @property
    def elapsed_s(self) -> float:
        return self.ended_at - self.started_at


class WatchUnreachable(Unreachable):
    """tvps stayed unreachable through every retry; `summary` has the rounds done."""

    def __init__(self, cause: Unreachable, summary: WatchSummary):
        super().__init__(f"watch stopped after {summary.rounds} rounds: {cause.message}", cause.hint)
        self.summary = summary


def _retrying(policy: RetryPolicy, sleep: Callable[[float], None], on_retry: OnRetry | None, count: list[int]) -> tenacity.Retrying:
    def before_sleep(state: tenacity.RetryCallState) -> None:
        count[0] += 1
        err = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        if on_retry is not None and isinstance(err, Unreachable):
            on_retry(state.attempt_number, err, wait)

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(Unreachable),
        stop=tenacity.stop_after_attempt(policy.attempts),
        wait=tenacity.wait_exponential(multiplier=policy.first_wait_s, max=policy.max_wait_s),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )


def watch(
    fetch: Fetch[R],
    every_s: float,
    until_s: float | None,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    on_round: OnRound[R],
    *,
    retry: RetryPolicy = RetryPolicy(),
    on_retry: OnRetry | None = None,
) -> WatchSummary:
    """Run rounds until the deadline (None: until Ctrl-C); the summary."""
    if not every_s > 0 or (until_s is not None and until_s < 0):
        raise ValueError("every_s must be > 0 and until_s >= 0")
    start = clock()
    deadline = math.inf if until_s is None else start + until_s
    reconnects = [0]
    retrying = _retrying(retry, sleep, on_retry, reconnects)
    rounds = 0
    prev_r: R | None = None

    def summary(stopped: Literal["deadline", "interrupted", "unreachable"]) -> WatchSummary:
        return WatchSummary(rounds, stopped, prev_r, start, clock(), reconnects[0])

    try:
        while True:
            try:
                cur = retrying(fetch)
            except Unreachable as e:
                raise WatchUnreachable(e, summary("unreachable")) from e
            rounds += 1
            on_round(rounds, prev_r, cur)
            prev_r = cur
            now = clock()
            next_at = start + (math.floor((now - start) / every_s) + 1) * every_s
            if next_at > deadline:
                return summary("deadline")
            sleep(next_at - now)
    except KeyboardInterrupt:
        return summary("interrupted")
