"""The deploy lock on tvps: one directory whose holder record arrives with it.

Taking it: a temp dir `cutover/.lock-new-…` holding holder.json is renamed onto `cutover/lock`
(rename of a directory onto a missing or non-empty one is atomic and fails for all but one
racer), so nobody ever sees a lock without its holder.  The holder names one process: the
operator, the host, the PID and that PID's start time (a recycled PID is not the holder).

Re-entry only by that very process (inv cutover holds it across its phases); a holder verified
dead on this host, for the same operator and version, is taken over (one racer wins the
`takeover-…` marker) and the new record says from whom.  Everyone else gets LockHeld naming
the holder.  A run releases only a lock whose record is its own.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import posixpath
import secrets
import socket
from typing import Iterator

from .builders import files
from .clock import iso, now_utc
from .builders.layout import Layout
from .errors import CheckFailed, LockHeld, RemoteCommandFailed
from .executor import Executor, Result
from .sanitize import printable

FRESH, REENTERED, TAKEN_OVER = "fresh", "re-entered", "taken-over"


@dataclasses.dataclass(frozen=True)
class Holder:
    operator: str
    version: str
    reason: str
    acquired_at: str
    client_pid: int = 0
    host: str = ""               # the operator machine's hostname
    client_start: str = ""       # the PID's start time (clock ticks since boot); "" where unknown

    def describe(self) -> str:
        """One line; the fields come from a file on tvps, so controls are neutralised."""
        where = f" on {self.host}" if self.host else ""
        pid = f" (PID {self.client_pid})" if self.client_pid else ""
        return printable(f"{self.operator}{where}{pid} since {self.acquired_at} for {self.version} ({self.reason})")

    def same_process(self, other: "Holder") -> bool:
        return (bool(self.client_pid) and bool(self.host) and self.host == other.host
                and self.client_pid == other.client_pid and self.client_start == other.client_start)

    def to_bytes(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), indent=2).encode()

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
        start = str(data.get("client_start", "") or "")
        if not (start == "" or (start.isdigit() and start.isascii() and len(start) <= 20)):
            raise ValueError("holder record's client_start is not a start time")
        return cls(
            operator=str(data.get("operator", "?")),
            version=str(data.get("version", "?")),
            reason=str(data.get("reason", "?")),
            acquired_at=str(data.get("acquired_at", "?")),
            client_pid=pid,
            host=str(data.get("host", "") or "")[:255],
            client_start=start,
        )


# ---------------------------------------------------------------- this process, and whether a holder lives (pure parts first)

def start_from_stat(text: str) -> str | None:
    """Field 22 (starttime) of /proc/<pid>/stat; None for a zombie (it has exited, only not yet
    reaped).  The command name may hold spaces and ')'."""
    rest = text[text.rindex(")") + 1:].split()
    if rest[0] in ("Z", "X"):
        return None
    return rest[19]          # fields 3.. follow the name: starttime is field 22


def liveness(current: Holder, me: Holder, start_now: str | None) -> str:
    """'mine' | 'alive' | 'dead' | 'elsewhere' | 'unknown' for the recorded holder, seen by `me`.

    start_now: the start time of the recorded PID on this machine now (None: no such process;
    '' where it cannot be told).  A holder on another host is never judged dead."""
    if not current.client_pid or not current.host:
        return "unknown"                        # hand-made, or written by an older tool
    if current.host != me.host:
        return "elsewhere"
    if current.same_process(me):
        return "mine"
    if start_now is None:
        return "dead"
    if current.client_start and start_now and start_now != current.client_start:
        return "dead"                           # the PID was recycled: another process has it now
    return "alive"


def next_step(current: Holder, me: Holder, state: str) -> str:
    """'re-enter' | 'take-over' | 'refuse' (pure): only for the same operator and version."""
    if (current.operator, current.version) != (me.operator, me.version):
        return "refuse"
    return {"mine": "re-enter", "dead": "take-over"}.get(state, "refuse")


def refusal(current: Holder, state: str) -> LockHeld:
    held = current.describe()
    if state == "alive":
        return LockHeld(f"deploy lock on tvps is held by {held}: another run on this machine "
                        f"(PID {current.client_pid}), still running", "let it finish, or stop it first")
    if state == "elsewhere":
        return LockHeld(f"deploy lock on tvps is held by {held}",
                        f"it is held from {printable(current.host)}: ask them; if that run is gone for sure, "
                        "`inv lock --release`")
    if state == "dead":
        return LockHeld(f"deploy lock on tvps is held by {held} (that process is gone)",
                        "if its work is done or abandoned, `inv lock --release`")
    return LockHeld(f"deploy lock on tvps is held by {held}",
                    "wait for them, or if the holder is gone run `inv lock --release`")


def busy(current: Holder, state: str, doing: str, then: str) -> LockHeld | None:
    """Before pointing at `--resume`: the run that holds the lock now, named first (pure).  None when
    the holder is this process or verified dead (a resume takes a dead run's lock over)."""
    if state in ("mine", "dead"):
        return None
    who = printable(f"PID {current.client_pid or '?'} on {current.host or 'an unknown host'}, "
                    f"operator {current.operator}, since {current.acquired_at}")
    message = f"{doing}; the deploy lock is held now by {who} ({printable(current.reason)})"
    if state == "alive":
        hint = (f"wait for it to finish (`inv status` shows the lock), or stop it (Ctrl-C in its terminal, or "
                f"kill -INT {current.client_pid}) and then: {then}")
    elif state == "elsewhere":
        hint = (f"wait for it to finish, or ask {printable(current.operator)}; only if that run is gone for sure: "
                f"`inv lock --release`, then: {then}")
    else:
        hint = f"wait for it, or if the holder is gone: `inv lock --release`, then: {then}"
    return LockHeld(message, hint)


def proc_start(pid: int) -> str | None:
    """The start time of process `pid` here; None when there is none; '' when it cannot be told."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as fh:
            return start_from_stat(fh.read())
    except FileNotFoundError:
        if os.path.isdir("/proc/self"):
            return None
    except (OSError, ValueError, IndexError):
        return ""
    try:                                   # no /proc (macOS): whether the PID exists at all
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return ""


def new_holder(operator: str, version: str, reason: str) -> Holder:
    pid = os.getpid()
    return Holder(operator=operator, version=version, reason=reason, acquired_at=iso(now_utc()), client_pid=pid,
                  host=socket.gethostname(), client_start=proc_start(pid) or "")


# ---------------------------------------------------------------- on tvps

_placed: dict[str, bytes] = {}    # lock dirs this process placed (fresh or taken over) and has not released: the record written


def read_holder(ex: Executor, lay: Layout) -> Holder | None:
    """The current holder, None when unlocked; a lock without a record reads as unknown.  One command."""
    r = ex.run(files.read_lock(lay.lock_dir, lay.lock_info), check=False)
    if r.exited == files.NO_LOCK:
        return None
    if r.exited not in (0, files.MISSING):
        raise RemoteCommandFailed(r.command, r.exited, r.stderr, f"check {lay.lock_dir} on tvps and its permissions")
    try:
        if r.exited == files.MISSING or "\ufffd" in r.stdout:     # no record, or not UTF-8
            raise ValueError("no readable record")
        return Holder.parse(r.stdout)
    except ValueError:
        return Holder(operator="unknown", version="?", reason="holder record missing or unreadable", acquired_at="?")


def _place(ex: Executor, lay: Layout, holder: Holder) -> Result | None:
    """Rename a temp dir holding our record onto the lock path: None when ours is now the lock,
    else the command that did not place it."""
    tmp = posixpath.join(lay.cutover_dir, f".lock-new-{os.getpid()}-{secrets.token_hex(4)}")
    ex.run(files.mkdir_under(lay.cutover_dir, tmp))
    placed = False
    try:
        ex.write_file(posixpath.join(tmp, "holder.json"), holder.to_bytes(), mode=0o644)
        moved = ex.run(files.rename_dir_away(tmp, lay.lock_dir), check=False)
        placed = moved.ok
        return None if placed else moved
    finally:
        if not placed:
            ex.run(files.remove_dir(tmp), check=False)


def acquire(ex: Executor, lay: Layout, holder: Holder, *, _retry: bool = True) -> tuple[str, Holder | None]:
    """Take the lock: (FRESH, None), (REENTERED, None) by the very process that holds it, or
    (TAKEN_OVER, the dead holder); LockHeld naming the holder for anyone else."""
    if lay.lock_dir in _placed:
        # this process placed the lock (inv cutover, then its deploy or rollback): the record on tvps
        # must still name this very process, for this operator and version (one read, not a new try)
        current = read_holder(ex, lay)
        if current is not None and next_step(current, holder, liveness(current, holder, "")) == "re-enter":
            return REENTERED, None
        _placed.pop(lay.lock_dir, None)    # released or replaced since: taken as anyone would take it
    moved = _place(ex, lay, holder)
    if moved is None:
        _placed[lay.lock_dir] = holder.to_bytes()
        return FRESH, None
    current = read_holder(ex, lay)
    if current is None:
        if _retry:  # released between our rename and our read: try once more, only once
            return acquire(ex, lay, holder, _retry=False)
        if ex.run(files.exists(lay.lock_dir), check=False).ok:
            raise CheckFailed(f"{lay.lock_dir} on tvps is not a directory: the deploy lock cannot be taken",
                              f"look at it and move it aside (ssh tvps ls -l {lay.lock_dir})")
        # no lock dir, yet ours did not land: permissions, a full disk
        raise RemoteCommandFailed(moved.command, moved.exited, moved.stderr,
                                  f"check {lay.cutover_dir} on tvps (a file named lock, permissions, disk space)")
    state = liveness(current, holder, proc_start(current.client_pid) if current.client_pid else None)
    step = next_step(current, holder, state)
    if step == "re-enter":
        return REENTERED, None
    if step == "refuse":
        raise refusal(current, state)
    # the holder is dead: one racer wins the marker named after it, and rewrites the record
    marker = posixpath.join(lay.lock_dir, f"takeover-{current.client_pid}-{current.client_start or 'x'}")
    if not ex.run(files.mkdir_atomic(marker), check=False).ok:
        raise LockHeld(f"another run is taking the deploy lock over from the dead run {current.describe()}",
                       "let it finish; `inv lock` shows who holds it now")
    record = dataclasses.replace(holder, reason=f"{holder.reason}; took over from PID {current.client_pid} "
                                                f"({current.acquired_at})")
    ex.write_file(lay.lock_info, record.to_bytes(), mode=0o644)
    _placed[lay.lock_dir] = record.to_bytes()
    return TAKEN_OVER, current


def release(ex: Executor, lay: Layout) -> None:
    """Remove the lock whoever holds it (`inv lock --release` after confirmation, tests)."""
    _placed.pop(lay.lock_dir, None)
    ex.run(files.remove_lock(lay))


def release_own(ex: Executor, lay: Layout, holder: Holder) -> bool:
    """Release the lock only if its record names this process; False when it was not ours.  A lock this
    process placed goes with one command: removed only while its record is still the very bytes written."""
    mine = _placed.get(lay.lock_dir)
    if mine is not None:
        r = ex.run(files.remove_lock_if(lay.lock_dir, lay.lock_info), stdin=mine, check=False)
        if r.exited not in (0, files.NOT_OURS):
            raise RemoteCommandFailed(r.command, r.exited, r.stderr, f"check {lay.lock_dir} on tvps and its permissions")
        if r.ok:
            _placed.pop(lay.lock_dir, None)
            return True
        return False
    current = read_holder(ex, lay)
    if current is None or not current.same_process(holder):
        return False
    release(ex, lay)
    return True


def release_if_still(ex: Executor, lay: Layout, seen: Holder) -> None:
    """Release only the lock the operator saw and confirmed, not one taken since."""
    now = read_holder(ex, lay)
    if now is None:
        return
    if now != seen:
        raise LockHeld(
            f"the deploy lock changed hands while you confirmed: now held by {now.describe()}",
            "left in place; run `inv lock` to look again",
        )
    release(ex, lay)


@contextlib.contextmanager
def held(ex: Executor, lay: Layout, holder: Holder, *, keep_on_failure: bool = False) -> Iterator[bool]:
    """Hold the lock for a block (True when taken here); released afterwards, on failure too
    (unless asked), and only if its record is still this process's.  A re-entered lock (this
    process took it in an enclosing block) stays with that block."""
    how, _ = acquire(ex, lay, holder)
    ok = False
    try:
        yield how != REENTERED
        ok = True
    finally:
        if how != REENTERED and (ok or not keep_on_failure):
            release_own(ex, lay, holder)


@contextlib.contextmanager
def held_for_change(ex: Executor, lay: Layout, holder: Holder) -> Iterator[Holder | None]:
    """The lock for a phase that changes tvps (cutover, deploy, rollback); yields the dead holder
    it took over, if any.  Taken when free; re-entered by this very process (inv cutover holds
    it across deploy and rollback, which then neither take it over nor release it); taken over
    from a run of this operator and version verified dead on this machine; else LockHeld.
    Released when the block ends, on failure too (so a rollback can take it), if still ours."""
    how, dead = acquire(ex, lay, holder)
    try:
        yield dead
    finally:
        if how != REENTERED:
            release_own(ex, lay, holder)
