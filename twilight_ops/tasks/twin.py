"""The staging twin of tvps: twin.up, twin.down, twin.status."""
from __future__ import annotations

from pathlib import Path

from invoke import task

from ..output import console, operation, print_json

DEFAULT_DIR = ".twin"


def _dir(d: str) -> Path:
    return Path(d or DEFAULT_DIR).expanduser().resolve()


@task(help={"dir": "where the twin lives (default ./.twin)"})
@operation
def up(c, dir=DEFAULT_DIR):
    """Build and start the twin (sshd, dockerd, registry, v0.2.0 running healthy); idempotent."""
    from ..twin import build

    build.up(_dir(dir), say=console.print)


@task(help={"dir": "where the twin lives (default ./.twin)", "purge": "also delete its files and account"})
@operation
def down(c, dir=DEFAULT_DIR, purge=False):
    """Stop everything the twin started, by PID; leave no process or mount behind."""
    from ..twin import build

    build.down(_dir(dir), purge=purge, say=console.print)


@task(help={"dir": "where the twin lives (default ./.twin)"})
@operation
def status(c, dir=DEFAULT_DIR):
    """Show the twin's parts, ports and PIDs."""
    from ..twin import build

    print_json(build.status(_dir(dir)))


def _twin_settings(c, dir):
    import copy

    import yaml

    from ..config import DEFAULTS, load_settings
    from ..errors import BadInput

    path = _dir(dir) / "invoke.yaml"
    if not path.exists():
        raise BadInput(f"no twin at {_dir(dir)}", "run `inv twin.up` first")
    raw = copy.deepcopy(DEFAULTS)
    raw.update(yaml.safe_load(path.read_text())["twilight"])
    return load_settings(raw), path


@task(help={
    "name": "fault to switch on (repeatable), e.g. close_raw_null, http_500, canonical_unit_violation",
    "clear": "switch every fault off",
    "slow_ms": "extra latency for the 'slow' fault",
    "dir": "where the twin lives (default ./.twin)",
}, iterable=["name"])
@operation
def fault(c, name=None, clear=False, slow_ms=0, dir=DEFAULT_DIR):
    """Switch the twin backend's /price faults on or off (read per request)."""
    from ..errors import BadInput
    from ..remote import SSHExecutor
    from ..twin import control

    names = list(name or [])
    if not clear and not names:
        raise BadInput("name a fault or give --clear", "known: " + ", ".join(control.known_faults()))
    settings, _ = _twin_settings(c, dir)
    with SSHExecutor(settings) as ex:
        if clear:
            control.clear_faults(ex, settings)
            console.print("faults cleared")
        else:
            params = {"slow_ms": int(slow_ms)} if slow_ms else {}
            control.set_faults(ex, settings, names, **params)
            console.print("faults on: " + ", ".join(names))


@task(help={
    "at": "make now read as this ISO time, e.g. 2026-05-11T10:00:00+08:00 (market open)",
    "clear": "back to the wall clock",
    "dir": "where the twin lives (default ./.twin)",
})
@operation
def clock(c, at="", clear=False, dir=DEFAULT_DIR):
    """Shift the twin's clock (backend and the tool's config together) to choose the market state."""
    from ..errors import BadInput
    from ..remote import SSHExecutor
    from ..twin import control

    if bool(at) == bool(clear):
        raise BadInput("give exactly one of --at ISO_TIME or --clear", "e.g. --at 2026-05-11T10:00:00+08:00")
    settings, path = _twin_settings(c, dir)
    offset = 0.0 if clear else control.offset_for(at)
    with SSHExecutor(settings) as ex:
        control.set_clock(ex, settings, offset, path)
    console.print(f"clock offset {offset:+.0f} s" + (f" (now reads {at})" if at else ""))
