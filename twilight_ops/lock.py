"""The deploy lock on tvps: an atomic `mkdir` plus a holder record (Kamal style)."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from typing import Iterator

from .builders import files
from .clock import iso, now_utc
from .builders.layout import Layout
from .errors import LockHeld, RemoteCommandFailed
from .executor import Executor
from .sanitize import printable


@dataclasses.dataclass(frozen=True)
class Holder:
    operator: str
    version: str
    reason: str
    acquired_at: str
    client_pid: int = 0

    def describe(self) -> str:
        """One line; the fields come from a file on tvps, so controls are neutralised."""
        return printable(f"{self.operator} since {self.acquired_at} for {self.version} ({self.reason})")

    @classmethod
    def parse(cls, text: str) -> "Holder":
        """The holder record; ValueError for anything that is not one (a list, a string, bad types)."""
        try:
            data = json.loads(text)
        except RecursionError:
            raise ValueError("holder record nests too deeply") from None
        if not isinstance(data, dict):
            raise ValueError(f"holder record is a {type(data).__name__}, not an object")
        pid = data.get("client_pid", 0) or 0
        if isinstance(pid, bool) or not isinstance(pid, int) or not 0 <= pid < 2**31:
            raise ValueError("holder record's client_pid is not a process id")
        return cls(
            operator=str(data.get("operator", "?")),
            version=str(data.get("version", "?")),
            reason=str(data.get("reason", "?")),
            acquired_at=str(data.get("acquired_at", "?")),
            client_pid=pid,
        )


def new_holder(operator: str, version: str, reason: str) -> Holder:
    return Holder(operator=operator, version=version, reason=reason, acquired_at=iso(now_utc()), client_pid=os.getpid())


def read_holder(ex: Executor, lay: Layout) -> Holder | None:
    """The current holder, None when unlocked; a lock without a record reads as unknown."""
    if not ex.run(files.is_dir(lay.lock_dir), check=False).ok:
        return None
    try:
        return Holder.parse(ex.read_file(lay.lock_info).decode("utf-8"))
    except (FileNotFoundError, ValueError):  # UnicodeDecodeError is a ValueError
        return Holder(operator="unknown", version="?", reason="holder record missing or unreadable", acquired_at="?")


def acquire(ex: Executor, lay: Layout, holder: Holder, *, reentrant: bool = True, _retry: bool = True) -> bool:
    """Take the lock.  Returns True when newly taken, False when re-entered.

    Re-entry is allowed only for the same operator and version (resuming an
    interrupted run); anyone else gets LockHeld with the holder's details.
    """
    ex.run(files.mkdir_p(lay.cutover_dir))
    made = ex.run(files.mkdir_atomic(lay.lock_dir), check=False)
    if made.ok:
        ex.write_file(lay.lock_info, json.dumps(dataclasses.asdict(holder), indent=2).encode(), mode=0o644)
        return True
    current = read_holder(ex, lay)
    if current is None:
        if _retry:  # released between our mkdir and our read: try once more, only once
            return acquire(ex, lay, holder, reentrant=reentrant, _retry=False)
        # mkdir failed and no lock dir exists: a file in the way, permissions, a full disk
        raise RemoteCommandFailed(made.command, made.exited, made.stderr,
                                  f"check {lay.cutover_dir} on tvps (a file named lock, permissions, disk space)")
    if reentrant and current.operator == holder.operator and current.version == holder.version:
        return False
    raise LockHeld(
        f"deploy lock on tvps is held by {current.describe()}",
        "wait for them, or if the holder is gone run `inv lock --release`",
    )


def release(ex: Executor, lay: Layout) -> None:
    ex.run(files.remove_lock(lay))


def release_if_still(ex: Executor, lay: Layout, seen: Holder) -> None:
    """Release only the lock the operator saw and confirmed, not one taken since."""
    now = read_holder(ex, lay)
    if now is None:
        return
    if (now.operator, now.acquired_at, now.version) != (seen.operator, seen.acquired_at, seen.version):
        raise LockHeld(
            f"the deploy lock changed hands while you confirmed: now held by {now.describe()}",
            "left in place; run `inv lock` to look again",
        )
    release(ex, lay)


@contextlib.contextmanager
def held(ex: Executor, lay: Layout, holder: Holder, *, keep_on_failure: bool = False) -> Iterator[bool]:
    """Hold the lock for a block; released afterwards, on failure too (unless asked).

    Only a lock this call took is released: a re-entered one (same operator and version,
    e.g. a second terminal) stays with whoever took it."""
    fresh = acquire(ex, lay, holder)
    ok = False
    try:
        yield fresh
        ok = True
    finally:
        if fresh and (ok or not keep_on_failure):
            release(ex, lay)


def alive_here(h: Holder, operator: str) -> bool:
    """The holder is another process of this operator (user@host) that still runs on this machine."""
    if h.operator != operator or not h.client_pid or h.client_pid == os.getpid():
        return False
    try:
        os.kill(h.client_pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def held_by_this_process(h: Holder, wanted: Holder) -> bool:
    """The lock is this very process's, for the same operator and version (inv cutover holds it
    across its phases; deploy and rollback inside it neither take it over nor release it)."""
    return h.client_pid == os.getpid() and h.operator == wanted.operator and h.version == wanted.version


@contextlib.contextmanager
def held_for_change(ex: Executor, lay: Layout, holder: Holder) -> Iterator[Holder | None]:
    """The lock for a phase that changes tvps (deploy, rollback); yields the holder it took over, if any.

    Free: taken.  Held by this operator for the same version by a process that is gone (a run
    that died or was killed, a manual `inv lock --acquire`): taken over, and the new holder
    record says from whom.  Held by a live run of this operator, or by anyone else: LockHeld.
    Released when the block ends, on failure too, so the rollback can take it.
    """
    current = read_holder(ex, lay)
    if current is not None and held_by_this_process(current, holder):
        yield None           # an enclosing block of this run (inv cutover) holds it and releases it
        return
    if current is not None and alive_here(current, holder.operator):
        raise LockHeld(f"another run on this machine (PID {current.client_pid}) holds the deploy lock: {current.describe()}",
                       "let it finish, or stop it first")
    fresh = acquire(ex, lay, holder)
    taken_over = None
    if not fresh:
        taken_over = current
        record = dataclasses.replace(holder, reason=f"{holder.reason}; took over from PID {current.client_pid if current else '?'} "
                                                    f"({current.acquired_at if current else '?'})")
        ex.write_file(lay.lock_info, json.dumps(dataclasses.asdict(record), indent=2).encode(), mode=0o644)
    try:
        yield taken_over
    finally:
        release(ex, lay)
