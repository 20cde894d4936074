"""Steering the twin's backend: faults, clock, which release runs.

Everything goes through the same executor as the real tasks (the twin is
"remote"): faults.json and clock.json are written over sftp into
~/twilight/data, which the backend mounts as /data and reads per request.
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


def known_faults() -> list[str]:
    import importlib.util
    import sys

    name = "twilight_twin_backend_app"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("backend") / "app.py")
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[name] = module
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    return sorted(module.FAULTS)


def _data_dir(ex: SSHExecutor, settings: Settings) -> str:
    return posixpath.dirname(layout(settings, ex.home).warehouse)


def set_faults(ex: SSHExecutor, settings: Settings, names: list[str], **params: object) -> None:
    known = known_faults()
    for n in names:
        if n not in known:
            raise BadInput(f"fault {n!r} is unknown", "known: " + ", ".join(known))
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


def set_clock(ex: SSHExecutor, settings: Settings, offset_seconds: float, invoke_yaml: Path | None) -> None:
    """Shift the backend's clock and the tool's (twin invoke.yaml) by the same offset."""
    path = posixpath.join(_data_dir(ex, settings), "clock.json")
    if offset_seconds:
        ex.write_file(path, json.dumps({"offset_seconds": offset_seconds}).encode(), mode=0o644)
    else:
        ex.run(["rm", "-f", "--", path])
    if invoke_yaml is not None and invoke_yaml.exists():
        data = yaml.safe_load(invoke_yaml.read_text()) or {}
        data.setdefault("twilight", {})["clock_offset_seconds"] = offset_seconds
        tmp = invoke_yaml.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(data, sort_keys=True))
        tmp.replace(invoke_yaml)


def run_version(ex: SSHExecutor, settings: Settings, version: str, timeout: int = 120) -> None:
    """compose pull + up --wait of one release (test set-up; the deploy phase does more)."""
    lay = layout(settings, ex.home)
    ex.run(compose_cmd.compose_pull(lay, version), timeout=300)
    ex.run(compose_cmd.compose_up(lay, version, wait_timeout=timeout), timeout=timeout + 60)
