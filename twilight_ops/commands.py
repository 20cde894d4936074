"""Pure argv builders for everything run on tvps.  No I/O here.

Paths given to builders are absolute (the executor expands `~/`); every value
is an argv element, rendered later with shlex.join.
"""
from __future__ import annotations

import dataclasses
import posixpath
from typing import Sequence

from .config import Settings


@dataclasses.dataclass(frozen=True)
class Layout:
    """Absolute remote paths for one tvps (from Settings + the remote $HOME)."""

    source_dir: str
    compose_file: str        # absolute path of deploy/compose.yml
    service: str
    warehouse: str
    container_warehouse: str
    env_file: str
    token_file: str
    cutover_dir: str
    image_repo: str

    @property
    def lock_dir(self) -> str:
        return posixpath.join(self.cutover_dir, "lock")

    @property
    def lock_info(self) -> str:
        return posixpath.join(self.lock_dir, "holder.json")

    @property
    def audit_log(self) -> str:
        return posixpath.join(self.cutover_dir, "audit.log")

    def journal_path(self, version: str) -> str:
        from . import validate

        return posixpath.join(self.cutover_dir, f"journal-{validate.journal_version(version)}.json")


def layout(settings: Settings, home: str) -> Layout:
    def ex(p: str) -> str:
        if p == "~":
            return home
        return posixpath.join(home, p[2:]) if p.startswith("~/") else p

    source = ex(settings.source_dir)
    return Layout(
        source_dir=source,
        compose_file=posixpath.join(source, settings.compose_file),
        service=settings.service,
        warehouse=ex(settings.warehouse),
        container_warehouse=settings.container_warehouse,
        env_file=ex(settings.env_file),
        token_file=ex(settings.token_file),
        cutover_dir=ex(settings.cutover_dir),
        image_repo=settings.image_repo,
    )


# -- docker compose -----------------------------------------------------------

def compose(lay: Layout, *args: str, version: str | None = None) -> list[str]:
    """`docker compose -f <compose_file> ARGS`, with TWILIGHT_VERSION set via env(1).

    TWILIGHT_VERSION is not a secret, so passing it through env(1) in argv is fine;
    secrets never travel this way.
    """
    argv = ["docker", "compose", "-f", lay.compose_file, *args]
    if version is not None:
        argv = ["env", f"TWILIGHT_VERSION={version}", *argv]
    return argv


def compose_ps(lay: Layout) -> list[str]:
    return compose(lay, "ps", "--all", "--format", "json")


def compose_logs(lay: Layout, tail: int = 200) -> list[str]:
    return compose(lay, "logs", lay.service, f"--tail={int(tail)}", "--no-color")


def compose_pull(lay: Layout, version: str) -> list[str]:
    return compose(lay, "pull", lay.service, version=version)


def compose_up(lay: Layout, version: str, wait_timeout: int = 120) -> list[str]:
    return compose(lay, "up", "-d", "--wait", f"--wait-timeout={int(wait_timeout)}", lay.service, version=version)


def compose_exec_python(lay: Layout) -> list[str]:
    """Run a Python script fed on stdin inside the backend container (no tty)."""
    return compose(lay, "exec", "-T", lay.service, "python3", "-")


def docker_inspect(ids: Sequence[str]) -> list[str]:
    return ["docker", "inspect", "--type", "container", *ids]


def docker_image_inspect(refs: Sequence[str]) -> list[str]:
    return ["docker", "image", "inspect", *refs]


# -- files and lock -------------------------------------------------------------

def mkdir_p(path: str) -> list[str]:
    return ["mkdir", "-p", "--", path]


def mkdir_atomic(path: str) -> list[str]:
    """Plain mkdir: fails if the directory exists — the atomic lock primitive."""
    return ["mkdir", "--", path]


def remove_lock(lay: Layout) -> list[str]:
    """Release: the lock dir holds only holder.json (and maybe a temp of it)."""
    return ["rm", "-rf", "--", lay.lock_dir]
