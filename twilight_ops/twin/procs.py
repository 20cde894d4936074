"""Process, pidfile and mount helpers shared by the twin's daemons (dockerd, registry, sshd).

Only processes provably ours are signalled: callers check a PID's command line
(`cmdline`, `has_option`) before `terminate`.  A zombie counts as dead: PID 1 on
these machines reaps lazily.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import random
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from ..errors import TwilightError

log = logging.getLogger(__name__)

KILL_TIMEOUT = 10.0
POLL = 0.05


EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LISTEN_SPAN = 12000  # how many ports below the ephemeral range free_port picks from


def ephemeral_low(path: Path = EPHEMERAL_RANGE) -> int:
    """The first port of the kernel's ephemeral range (outgoing connections take their source ports
    from it); 32768, Linux's default, when it cannot be read."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def listen_ports(low: int) -> range:
    """Where free_port looks: the ports just below the ephemeral range, never the privileged ones."""
    return range(max(1024, low - LISTEN_SPAN), low)


def _binds(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A free TCP port on 127.0.0.1, below the ephemeral range: a twin daemon stopped for a fault
    and started again on its port must not find it taken by some client's source port (a bound
    port, e.g. the registry's, is baked into image references and the committed compose.yml).
    It can still be taken before the caller binds it."""
    ports = listen_ports(ephemeral_low())
    rng = random.SystemRandom()
    for _ in range(64 if len(ports) else 0):
        port = rng.choice(ports)
        if _binds(port):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]



_children: dict[int, subprocess.Popen] = {}  # daemons this interpreter spawned, kept for reaping


def spawn(argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> int:
    """Start a daemon in its own session, stdout+stderr appended to log_path; its PID."""
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True, env=env)
    _children[proc.pid] = proc
    return proc.pid


def pid_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie counts as dead (PID 1 here reaps lazily)."""
    proc = _children.get(pid)
    if proc is not None and proc.poll() is not None:
        del _children[pid]
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def parent_pid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def has_option(argv: list[str], option: str, value: str) -> bool:
    """argv holds `option value` or `option=value`."""
    return any(a == f"{option}={value}" or (a == option and argv[i + 1 : i + 2] == [value]) for i, a in enumerate(argv))


def option_value(argv: list[str], option: str) -> str | None:
    """The value of `option value` or `option=value` in argv."""
    for i, a in enumerate(argv):
        if a.startswith(option + "="):
            return a.split("=", 1)[1]
        if a == option and i + 1 < len(argv):
            return argv[i + 1]
    return None


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive flock on `path` (created if missing) for the duration of the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_pidfile(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def log_tail(path: Path, lines: int = 2) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except FileNotFoundError:
        return "(no log)"
    return " | ".join(line.strip() for line in text[-lines:]) or "(empty log)"


def wait_until(check: Callable[[], bool], timeout: float, what: str, poll: float = POLL) -> float | None:
    """Poll `check` until true or the deadline; elapsed seconds, or None on timeout."""
    start = time.monotonic()
    while True:
        if check():
            elapsed = time.monotonic() - start
            log.debug("%s: after %.2f s", what, elapsed)
            return elapsed
        if time.monotonic() - start >= timeout:
            log.debug("%s: gave up after %.1f s", what, timeout)
            return None
        time.sleep(poll)


def terminate(pid: int, timeout: float) -> str:
    """SIGTERM, wait up to `timeout`, then SIGKILL.  The last signal sent."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return "TERM"
    if wait_until(lambda: not pid_alive(pid), timeout, f"PID {pid} to exit") is not None:
        return "TERM"
    log.warning("PID %d ignored SIGTERM for %.0f s; sending SIGKILL", pid, timeout)
    kill_now([pid])
    return "KILL"


def kill_now(pids: list[int]) -> list[int]:
    """SIGKILL `pids` and wait until they are gone; those that were signalled."""
    sent = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
            sent.append(pid)
        except ProcessLookupError:
            pass
    if sent and wait_until(lambda: not any(pid_alive(p) for p in sent), KILL_TIMEOUT, "SIGKILLed processes to die") is None:
        alive = [p for p in sent if pid_alive(p)]
        raise TwilightError(f"PIDs {alive} survive SIGKILL", f"inspect: `ps -o pid,stat,cmd -p {','.join(map(str, alive))}`")
    return sent


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as \\ooo."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mounts_under(roots: Iterable[Path], mountinfo: str | None = None) -> list[str]:
    """Mount points at or below any of `roots`, deepest first."""
    text = Path("/proc/self/mountinfo").read_text() if mountinfo is None else mountinfo
    prefixes = [str(r) for r in roots]
    points = [_unescape(line.split()[4]) for line in text.splitlines() if len(line.split()) > 4]
    inside = [p for p in points if any(p == r or p.startswith(r + "/") for r in prefixes)]
    return sorted(inside, key=lambda p: (p.count("/"), p), reverse=True)


def unmount_all(roots: list[Path]) -> list[str]:
    """Unmount everything at or below roots (stacked mounts too); raise if any remain."""
    done: list[str] = []
    for _ in range(10):  # stacked mounts need more than one pass
        points = mounts_under(roots)
        if not points:
            return done
        for point in points:
            for argv in (["umount", point], ["umount", "-l", point]):  # lazy only if busy
                if subprocess.run(argv, capture_output=True).returncode == 0:
                    done.append(point)
                    break
    left = mounts_under(roots)
    if left:
        raise TwilightError(f"{len(left)} mount(s) remain under {roots[0]}, e.g. {left[0]}", f"try `umount -l {left[0]}`")
    return done
