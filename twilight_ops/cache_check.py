"""A sound version of the runbook's cache check (T+00:35 check 3), as pure decisions.

The runbook's "second call's freshness_seconds is ≥ 60 less than the first" cannot hold as
written (inside the TTL both calls serve one quote, so freshness grows).  What must hold:

  * two calls inside the TTL hit the cache: the same `as_of`, and `freshness_seconds`
    advancing by the time between the calls (±1 s resolution, + the calls' latency);
  * a call after TTL + slack is a refetch: a newer `as_of`.

Red flags: cache_never_hit (freshness stuck at 0, or a refetch inside the TTL),
clock_backwards (`as_of` going back), cache_never_expires (the same `as_of` after TTL + slack);
freshness_gap_mismatch when a hit's freshness does not advance with the clock.

    plan_gap(ttl)                       seconds between the two calls inside the TTL
    sample(get, ttl, slack, sleep, clock) -> [Sample, Sample, Sample]   (the three calls)
    verdict(samples, ttl, slack) -> CacheVerdict
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Callable

RESOLUTION_S = 1.0     # freshness_seconds is whole seconds


@dataclasses.dataclass(frozen=True)
class Sample:
    at: float                      # monotonic seconds, middle of the call
    status: int | None
    as_of: dt.datetime | None
    freshness: int | None
    market_state: str | None
    latency: float = 0.0           # seconds the call took

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "as_of": self.as_of.isoformat() if self.as_of else None,
                "freshness_seconds": self.freshness, "market_state": self.market_state, "at": round(self.at, 3)}


@dataclasses.dataclass(frozen=True)
class CacheVerdict:
    ok: bool
    red_flags: tuple[str, ...]
    reason: str


def plan_gap(ttl: float) -> float:
    """Long enough for freshness to show it (≥ 2 s), well inside the TTL."""
    return max(2.0, min(10.0, ttl / 3))


def sample(get: Callable[[], Sample], ttl: float, slack: float, sleep: Callable[[float], None],
           clock: Callable[[], float]) -> list[Sample]:
    """Three calls: a first one (re-made on a fresh fetch when the cached quote is too old to
    leave room for the gap), one `plan_gap(ttl)` later, one after the first quote's age passes TTL + slack.
    `sleep` here is a sampling interval, not a wait for a condition."""
    gap = plan_gap(ttl)
    first = get()
    f = first.freshness
    if f is None or not 0 <= f < ttl - gap - RESOLUTION_S:
        # too old to leave room for the gap, or an age that cannot be trusted (beyond the TTL):
        # wait until the cached quote has certainly expired, so the next call is a fetch
        sleep((ttl - f if f is not None and 0 <= f <= ttl else ttl) + slack)
        first = get()
        f = first.freshness
    age = f if f is not None and 0 <= f <= ttl else 0
    fetched_at = first.at - age
    sleep(gap)
    second = get()
    sleep(max(0.0, fetched_at + ttl + slack - clock()))
    third = get()
    return [first, second, third]


def verdict(samples: list[Sample], ttl: float, slack: float) -> CacheVerdict:
    a, b, c = samples
    missing = [s for s in samples if s.status != 200 or s.as_of is None or s.freshness is None]
    if missing:
        s = missing[0]
        return CacheVerdict(False, (), f"a call answered HTTP {s.status} without as_of/freshness_seconds: the cache cannot be judged")
    flags: list[str] = []
    why: list[str] = []
    assert a.as_of and b.as_of and c.as_of and a.freshness is not None and b.freshness is not None
    if b.as_of < a.as_of or c.as_of < b.as_of:
        flags.append("clock_backwards")
        back = a.as_of if b.as_of < a.as_of else b.as_of
        why.append(f"as_of went back from {back.isoformat()} to {(b.as_of if b.as_of < a.as_of else c.as_of).isoformat()}")
    gap = b.at - a.at
    hit = b.as_of == a.as_of
    if b.freshness == 0 and gap >= 1.5 * RESOLUTION_S:
        flags.append("cache_never_hit")
        why.append(f"freshness_seconds stayed 0 across two calls {gap:.1f} s apart"
                   + ("" if hit else " (the second was a refetch inside the TTL)"))
    elif not hit and b.as_of > a.as_of:
        flags.append("cache_never_hit")
        why.append(f"the second call, {gap:.1f} s later inside the {ttl:g} s TTL, was a refetch (newer as_of)")
    elif hit and "clock_backwards" not in flags:
        advanced = b.freshness - a.freshness
        allowance = RESOLUTION_S + a.latency + b.latency + 0.5
        if abs(advanced - gap) > allowance:
            flags.append("freshness_gap_mismatch")
            why.append(f"freshness_seconds advanced {advanced} s over a {gap:.1f} s gap (same as_of)")
    if c.as_of == a.as_of or (c.as_of == b.as_of and hit):
        flags.append("cache_never_expires")
        why.append(f"a call {c.at - a.at + (a.freshness or 0):.0f} s after the fetch (TTL {ttl:g} s + slack {slack:g} s) "
                   "still served the same as_of")
    if flags:
        return CacheVerdict(False, tuple(dict.fromkeys(flags)), "; ".join(why))
    return CacheVerdict(True, (), f"hit inside the TTL (same as_of, freshness {a.freshness}→{b.freshness} over {gap:.1f} s); "
                        f"refetched after TTL {ttl:g} s + {slack:g} s (as_of {c.as_of.isoformat()})")
