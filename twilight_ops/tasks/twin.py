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
