"""The executor contract shared by both sides of a cutover.

    SSHExecutor   (remote.py)  tvps, over one strict Fabric/paramiko connection
    LocalExecutor (local.py)   the operator's machine (the runbook's Terminal A)

Both take argv only (never shell text), send stdin on the process's stdin, honour a
timeout, and return the same `Result`.  `render(argv)` is the one way a command
line is built: shlex.join of the argv.
"""
from __future__ import annotations

import dataclasses
import shlex
from typing import Protocol, Sequence

from .errors import BadInput
from .secret import Secret


@dataclasses.dataclass(frozen=True)
class Result:
    command: str      # the shlex.join'ed argv, as run
    exited: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exited == 0


class Executor(Protocol):
    """What a phase may ask of either side.  Paths may start with `~/`."""

    where: str       # one line naming the side, for messages

    def expand(self, path: str) -> str: ...

    def run(self, argv: Sequence[str], *, stdin: str | bytes | None = None, check: bool = True,
            timeout: float | None = None) -> Result: ...

    def read_file(self, path: str) -> bytes: ...

    def read_first(self, paths: Sequence[str]) -> tuple[int, bytes]:
        """(index, bytes) of the first of `paths` that exists (one operation); FileNotFoundError if none."""
        ...

    def write_file(self, path: str, data: bytes, mode: int = 0o600, *, parents: bool = False) -> None:
        """Atomic write (temp + rename); parents: its directory is made when missing."""
        ...

    def append_file(self, path: str, data: bytes) -> None: ...

    def append_soon(self, path: str, data: bytes) -> None:
        """An append that may ride on the side's next operation (no round trip of its own); its
        directory is made when missing.  The local side appends at once."""
        ...

    def read_secret(self, path: str) -> Secret: ...


def render(argv: Sequence[str]) -> str:
    """argv → one shell-safe command line.  The only way a command is built."""
    if isinstance(argv, (str, bytes)):
        raise TypeError("commands are argv sequences, never shell text")
    parts = [str(a) for a in argv]
    if not parts:
        raise ValueError("empty argv")
    for a in parts:
        if "\x00" in a:
            raise BadInput("a command argument holds a NUL byte", "remove control characters from the input")
    return shlex.join(parts)


def secret_from_bytes(raw: bytes, path: str, where: str) -> Secret:
    """A token file's content as a Secret: one line, stripped, not empty, fit for an HTTP
    header.  A bad token is named by its file, never by its value."""
    from .secret import header_problem

    value = raw.decode("utf-8", "replace").strip()
    if not value:
        raise BadInput(f"token file {path} on {where} is empty", "put the operator token in it")
    bad = header_problem(value)
    if bad is not None:   # headers would refuse it and echo it
        raise BadInput(f"token file {path} on {where} {bad}",
                       "put the token alone on one line, printable ASCII only (mode 600)")
    return Secret(value)
