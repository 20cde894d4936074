"""tvps's clock, measured against the tool's: windows over tvps's data end at tvps's now.

    Skew.bracket(before, tvps, after)  pure: skew = tvps - midpoint, uncertainty = half the round trip
    parse_epoch(text) -> float         pure: `date +%s.%N` output
    check(skew, max_s) -> CheckResult  pure: preflight's clock_skew verdict
    measure(ssh, offset_s) -> Skew     one `date +%s.%N` on tvps bracketed by two reads of the tool's clock
    tvps_now(skew, offset_s)           the tool's clock shifted by the measured skew: tvps's now

The audit log's ts is stamped by tvps's clock; a window computed on the operator's clock
misses rows when the clocks disagree (10 min behind: a 10-minute window sees nothing).
The tool's clock is clock.now_utc(clock_offset_seconds) (0 against the real tvps).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Any

from .builders.files import clock_read
from .clock import now_utc
from .errors import CheckFailed
from .results import CheckResult, Status

NTP_FIX = ("enable NTP on tvps (`sudo timedatectl set-ntp true`, or step it now with `sudo chronyc makestep`) "
           "and check this machine's clock the same way (`timedatectl status`); then re-run `inv preflight`")


@dataclasses.dataclass(frozen=True)
class Skew:
    seconds: float          # tvps's clock minus this machine's (the tool's): > 0 ahead, < 0 behind
    uncertainty: float      # half the round trip of the read

    @classmethod
    def bracket(cls, before: float, tvps: float, after: float) -> "Skew":
        """Epoch seconds: this machine before the read, tvps's answer, this machine after it."""
        if after < before:
            raise ValueError(f"the clock read ends ({after}) before it starts ({before})")
        return cls(tvps - (before + after) / 2.0, (after - before) / 2.0)

    def describe(self) -> str:
        """`tvps is 600 s behind this machine (±0.01 s)`."""
        size = abs(self.seconds)
        amount = f"{size:.0f} s" if size >= 10 else f"{size:.2f} s"
        side = "behind" if self.seconds < 0 else "ahead of"
        return f"tvps is {amount} {side} this machine (±{self.uncertainty:.2f} s)"

    def to_json(self) -> dict[str, Any]:
        return {"skew_s": round(self.seconds, 3), "uncertainty_s": round(self.uncertainty, 3)}


def parse_epoch(text: str) -> float:
    """`date +%s.%N` output -> epoch seconds; CheckFailed on anything else (a date without %N prints `N`)."""
    line = text.strip()
    try:
        value = float(line)
    except ValueError:
        value = math.nan
    if not line.replace(".", "", 1).isdigit() or not math.isfinite(value):
        raise CheckFailed(f"tvps's clock could not be read: `date +%s.%N` printed {line[:60]!r}",
                          "tvps needs GNU date (coreutils); see `ssh tvps date`")
    return value


def check(skew: Skew, max_s: float) -> CheckResult:
    """PASS when |skew| is within max_s (the read's uncertainty counts in tvps's favour), else FAIL with the fix."""
    ev = {**skew.to_json(), "max_s": max_s}
    said = f"clock skew: {skew.describe()}"
    if abs(skew.seconds) - skew.uncertainty > max_s:
        return CheckResult("clock_skew", Status.FAIL, f"{said}, more than {max_s:g} s: windows over tvps's audit log "
                           "would not be the last minutes", ev, NTP_FIX)
    return CheckResult("clock_skew", Status.PASS, f"{said}, within {max_s:g} s", ev)


def measure(ssh: Any, offset_s: float = 0.0, timeout: float = 30.0) -> Skew:
    """One read of tvps's clock over SSH, bracketed by the tool's clock."""
    before = now_utc(offset_s).timestamp()
    r = ssh.run(clock_read(), timeout=timeout)
    after = now_utc(offset_s).timestamp()
    return Skew.bracket(before, parse_epoch(r.stdout), after)


def tvps_now(skew: Skew, offset_s: float = 0.0) -> dt.datetime:
    """tvps's now, from the tool's clock and the measured skew."""
    return now_utc(offset_s) + dt.timedelta(seconds=skew.seconds)
