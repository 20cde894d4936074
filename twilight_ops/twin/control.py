"""Steering the twin's backend: faults, clock, which release runs.

Everything goes through the same executor as the real tasks (the twin is
"remote"): faults.json and clock.json are written over sftp into
~/twilight/data, which the backend mounts as /data and reads per request; the clock
also into ~/.twin-clock, which libfaketime (preloaded in the twin's SSH sessions) reads.
"""
from __future__ import annotations

import datetime as dt
import json
import posixpath
from pathlib import Path

import yaml

from ..builders.layout import layout
from ..builders import compose as compose_cmd
from ..config import Settings
from ..errors import BadInput
from ..remote import SSHExecutor


def backend_app():
    """The stand-in backend's app.py as a module (it ships in the image as a script)."""
    import importlib.util
    import sys

    name = "twilight_twin_backend_app"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("backend") / "app.py")
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[name] = module
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def known_faults() -> list[str]:
    return list(backend_app().KNOWN_FAULTS)


def share(value: object, what: str) -> float:
    """A share 0..1 given on the command line (0.06 = 6 %); BadInput otherwise."""
    import math

    try:
        n = float(str(value))
    except ValueError:
        raise BadInput(f"{what} {str(value)[:20]!r} is not a number", f"give a share from 0 to 1, e.g. {what} 0.06") from None
    if not math.isfinite(n) or not 0 <= n <= 1:
        raise BadInput(f"{what} {str(value)[:20]!r} is not a share from 0 to 1", f"e.g. {what} 0.06 for 6 %")
    return n


def _data_dir(ex: SSHExecutor, settings: Settings) -> str:
    return posixpath.dirname(layout(settings, ex.home).warehouse)


def set_faults(ex: SSHExecutor, settings: Settings, names: list[str], *, rates: dict[str, float] | None = None,
               akshare_fail_rate: float | None = None, versions: list[str] | None = None, **params: object) -> None:
    """Write faults.json: `names` on every reply they apply to, or on `rates[name]` of them;
    `akshare_fail_rate` replaces the backend's default share of failing akshare-spot calls."""
    known = known_faults()
    for n in [*names, *(rates or {})]:
        if n not in known:
            raise BadInput(f"fault {n!r} is unknown", "known: " + ", ".join(known))
    for n, r in (rates or {}).items():
        share(r, f"rate of {n}")
    if akshare_fail_rate is not None:
        params["akshare_fail_rate"] = share(akshare_fail_rate, "--akshare-fail-rate")
    if rates:
        params["rates"] = dict(rates)
    if versions:
        params["versions"] = list(versions)      # only while one of these releases runs
    body = {"price": names, **params}
    ex.write_file(posixpath.join(_data_dir(ex, settings), "faults.json"), json.dumps(body).encode(), mode=0o644)


def clear_faults(ex: SSHExecutor, settings: Settings) -> None:
    ex.run(["rm", "-f", "--", posixpath.join(_data_dir(ex, settings), "faults.json")])


def offset_for(at: str, now: dt.datetime | None = None) -> float:
    """Seconds to add to the wall clock so that now reads as `at` (ISO 8601 with a zone)."""
    try:
        target = dt.datetime.fromisoformat(at)
    except ValueError:
        raise BadInput(f"--at {at!r} is not an ISO 8601 time", "e.g. --at 2026-05-11T10:00:00+08:00") from None
    if target.tzinfo is None:
        raise BadInput(f"--at {at!r} has no time zone", "add one, e.g. +08:00 for Asia/Shanghai")
    now = now or dt.datetime.now(dt.timezone.utc)
    return round((target - now).total_seconds(), 3)


MAX_SKEW_S = 86400.0


def faketime_path(home: str) -> str:
    """libfaketime's offset for the twin's SSH sessions (sshd.faketime_env)."""
    from .sshd import FAKETIME_FILE

    return posixpath.join(home, FAKETIME_FILE)


def set_clock(ex: SSHExecutor, settings: Settings, offset_seconds: float, invoke_yaml: Path | None,
              skew_seconds: float = 0.0) -> None:
    """Shift the backend's clock and the tool's (twin invoke.yaml) by the same offset; with a skew,
    tvps alone runs `skew_seconds` off the tool's clock (negative: behind).

    tvps's clock = wall clock + offset + skew, for everything on it that reads a clock: the
    backend (clock.json's offset_seconds, read per request) and every process of an SSH session
    (`date`, …: libfaketime, preloaded by the account's bash while ~/.twin-clock exists, reads the offset from it).
    The tool's clock (invoke.yaml clock_offset_seconds) = wall clock + offset."""
    import math

    if not math.isfinite(skew_seconds) or abs(skew_seconds) > MAX_SKEW_S:
        raise BadInput(f"--skew {skew_seconds!r} is not a number of seconds within a day", "e.g. --skew -600 (10 min behind)")
    tvps = offset_seconds + skew_seconds
    path = posixpath.join(_data_dir(ex, settings), "clock.json")
    fake = faketime_path(ex.home)
    if tvps or skew_seconds:
        ex.write_file(path, json.dumps({"offset_seconds": tvps, "skew_seconds": skew_seconds}).encode(), mode=0o644)
        ex.write_file(fake, f"{tvps:+.3f}\n".encode(), mode=0o644)
    else:
        ex.run(["rm", "-f", "--", path, fake])
    if invoke_yaml is not None:
        set_tool_key(invoke_yaml, "clock_offset_seconds", offset_seconds)


def set_tool_key(invoke_yaml: Path, key: str, value: object | None) -> None:
    """One `twilight.<key>` in the twin's invoke.yaml (None removes it: the tool's default again)."""
    if not invoke_yaml.exists():
        return
    data = yaml.safe_load(invoke_yaml.read_text()) or {}
    section = data.setdefault("twilight", {})
    if value is None:
        section.pop(key, None)
    else:
        section[key] = value
    tmp = invoke_yaml.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=True))
    tmp.replace(invoke_yaml)


def run_version(ex: SSHExecutor, settings: Settings, version: str, timeout: int = 120) -> None:
    """compose pull + up --wait of one release (test set-up; the deploy phase does more)."""
    lay = layout(settings, ex.home)
    ex.run(compose_cmd.compose_pull(lay, version), timeout=300)
    ex.run(compose_cmd.compose_up(lay, version, wait_timeout=timeout), timeout=timeout + 60)


def set_cache_ttl(ex: SSHExecutor, settings: Settings, seconds: float | None, invoke_yaml: Path | None = None) -> None:
    """cache.json {"ttl_seconds": N} (read per request); None removes it (back to CACHE_TTL_SECONDS).
    With `invoke_yaml`, the tool's `cache_ttl_seconds` there follows (removed with None), as
    set_clock keeps the two clocks together."""
    path = posixpath.join(_data_dir(ex, settings), "cache.json")
    if seconds is not None and not 0 <= seconds <= 86400:
        raise BadInput(f"--ttl {seconds:g} is out of range", "give 0 to 86400 seconds")
    if seconds is None:
        ex.run(["rm", "-f", "--", path])
    else:
        ex.write_file(path, json.dumps({"ttl_seconds": seconds}).encode(), mode=0o644)
    if invoke_yaml is not None:        # TTL < 1 s is a cache that is never hit: the tool keeps its own TTL
        set_tool_key(invoke_yaml, "cache_ttl_seconds", None if seconds is None or seconds < 1 else f"{seconds:g}")


TRADE_CAL_FIRST = dt.date(2015, 1, 1)
TRADE_CAL_LAST = dt.date(2035, 12, 31)


def trade_cal_seed(stale_before: dt.date | None = None, holidays: tuple[dt.date, ...] = ()) -> bytes:
    """The twin's trade_cal seed: every weekday open over 2015..2035 (the tool's weekday fallback
    agrees, so any weekday can be chosen with twin.clock), minus `holidays`; with `stale_before`
    it ends the day before that date, so from then on the backend says "closing" on every call."""
    app = backend_app()
    last = TRADE_CAL_LAST if stale_before is None else stale_before - dt.timedelta(days=1)
    if last < TRADE_CAL_FIRST:
        raise BadInput(f"a seed ending {last} would be empty", f"choose a date after {TRADE_CAL_FIRST}")
    return json.dumps(app.trade_cal_seed(TRADE_CAL_FIRST, last, tuple(holidays)), separators=(",", ":")).encode()


def set_trade_cal(ex: SSHExecutor, settings: Settings, seed: bytes) -> None:
    ex.write_file(posixpath.join(_data_dir(ex, settings), "trade_cal.json"), seed, mode=0o644)
