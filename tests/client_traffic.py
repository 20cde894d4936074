"""Client /price traffic in twin tests, sent where no later preflight will see it.

preflight's no_traffic counts every /price call that is not the tool's own for 10 minutes.
A test that sends client traffic on purpose (`inv twin.load`, a bare httpx call) does so
under `elsewhere_in_time(twin)`: the twin's clock (backend and tool together, as
`inv twin.clock` moves it) reads a past minute that depends on the wall clock, so its audit
rows never fall in a real-clock window of a later test, module or session.
"""
from __future__ import annotations

import contextlib
import time
from typing import Iterator

import yaml

DAY = 86_400


def unused_offset(now: float | None = None) -> float:
    """400 days back, plus one minute per second of wall clock (mod ~1.9 years): two runs
    a few seconds apart land hours apart, so their 10-minute windows never meet."""
    t = int(time.time() if now is None else now)
    return float(-400 * DAY - (t % 1_000_000) * 60)


@contextlib.contextmanager
def elsewhere_in_time(twin) -> Iterator[float]:
    from twilight_ops.remote import SSHExecutor
    from twilight_ops.twin import build, control

    settings = build.settings_for(twin.invoke_yaml)
    before = float((yaml.safe_load(twin.invoke_yaml.read_text()) or {}).get("twilight", {}).get("clock_offset_seconds", 0) or 0)
    offset = unused_offset()
    with SSHExecutor(settings) as ex:
        control.set_clock(ex, settings, offset, twin.invoke_yaml)
    try:
        yield offset
    finally:
        with SSHExecutor(settings) as ex:
            control.set_clock(ex, settings, before, twin.invoke_yaml)
