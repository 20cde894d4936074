"""Start and stop the twin's GitHub and Tushare stand-ins (one process, two loopback ports).

Layout under `base`:

    base/standins/config.json     ports and the files the server reads per request
    base/standins/github.json     the GitHub state (pulls, check runs, workflow runs)
    base/standins/tushare.json    Tushare switch ({"token_rotated": true} = the token is refused)
    base/standins/standins.pid    written by us at spawn; the only PID stop_standins() signals
    base/standins/standins.log    access log (method, path, status; no secrets)
    base/operator/gh-token        the GitHub token the stand-in accepts (mode 600)

Same pattern as registry.py: ports kept across restarts, a pidfile, a flock, wait
until both ports answer, SIGTERM then SIGKILL by PID.  `update_github_state` is the one
writer of github.json (read-modify-write under the lock, atomic rename), for the
preflight switches and for a later CI simulation that appends workflow runs.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets as pysecrets
import sys
from pathlib import Path
from typing import Any, Callable

import httpx

from ..errors import Unreachable
from .dockerd import DAEMON_ENV
from .procs import cmdline, file_lock, free_port, has_option, log_tail, pid_alive, read_pidfile, spawn, terminate, wait_until

log = logging.getLogger(__name__)

START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
PORT_ATTEMPTS = 3
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the directory holding twilight_ops/


@dataclasses.dataclass(frozen=True)
class StandinPaths:
    base: Path
    root: Path
    config: Path
    github_state: Path
    tushare_switch: Path
    pidfile: Path
    log: Path
    lock: Path
    state_lock: Path
    token_file: Path

    @classmethod
    def under(cls, base: Path) -> StandinPaths:
        base = Path(base).absolute()
        root = base / "standins"
        return cls(base=base, root=root, config=root / "config.json", github_state=root / "github.json",
                   tushare_switch=root / "tushare.json", pidfile=root / "standins.pid", log=root / "standins.log",
                   lock=root / ".lock", state_lock=root / ".state-lock", token_file=base / "operator" / "gh-token")


@dataclasses.dataclass(frozen=True)
class StandinInfo:
    paths: StandinPaths
    pid: int
    github_port: int
    tushare_port: int
    reused: bool

    @property
    def github_api(self) -> str:
        return f"http://127.0.0.1:{self.github_port}"

    @property
    def tushare_url(self) -> str:
        return f"http://127.0.0.1:{self.tushare_port}/"


def server_config(paths: StandinPaths, github_port: int, tushare_port: int, env_file: Path, clock_file: Path) -> dict:
    """What the server process reads (pure)."""
    return {
        "github": {"port": github_port, "state": str(paths.github_state), "token_file": str(paths.token_file)},
        "tushare": {"port": tushare_port, "env_file": str(env_file), "switch_file": str(paths.tushare_switch),
                    "clock_file": str(clock_file)},
    }


def server_argv(config: Path) -> list[str]:
    return [sys.executable, "-m", "twilight_ops.twin.standins_server", "--config", str(config)]


def server_env() -> dict[str, str]:
    return {**DAEMON_ENV, "PYTHONPATH": str(PACKAGE_ROOT), "PYTHONDONTWRITEBYTECODE": "1"}


def ensure_token(paths: StandinPaths) -> None:
    """The GitHub token the stand-in accepts: created once, mode 600, in the operator dir."""
    paths.token_file.parent.mkdir(parents=True, exist_ok=True)
    if not paths.token_file.exists():
        fd = os.open(paths.token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("ghp_twin" + pysecrets.token_hex(16) + "\n")
    paths.token_file.chmod(0o600)


def write_json_atomic(path: Path, data: Any, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    tmp.chmod(mode)
    os.replace(tmp, path)


def update_github_state(base: Path, change: Callable[[dict], dict | None]) -> dict:
    """Read github.json, apply `change` (returns a new state or edits in place), write it atomically."""
    paths = StandinPaths.under(base)
    with file_lock(paths.state_lock):
        state = json.loads(paths.github_state.read_text())
        new = change(state)
        state = state if new is None else new
        write_json_atomic(paths.github_state, state)
        return state


def read_github_state(base: Path) -> dict:
    return json.loads(StandinPaths.under(base).github_state.read_text())


def _ports(paths: StandinPaths) -> tuple[int, int] | None:
    try:
        cfg = json.loads(paths.config.read_text())
        return int(cfg["github"]["port"]), int(cfg["tushare"]["port"])
    except (FileNotFoundError, ValueError, KeyError):
        return None


def _answers(github_port: int, tushare_port: int) -> bool:
    try:
        with httpx.Client(trust_env=False, timeout=1.0) as client:
            gh = client.get(f"http://127.0.0.1:{github_port}/")
            ts = client.get(f"http://127.0.0.1:{tushare_port}/")
    except httpx.HTTPError:
        return False
    return gh.status_code == 401 and ts.status_code == 200  # GitHub: no token, Bad credentials


def _running(paths: StandinPaths) -> tuple[int, int, int] | None:
    pid = read_pidfile(paths.pidfile)
    ports = _ports(paths)
    if pid is None or ports is None or not pid_alive(pid) or not has_option(cmdline(pid), "--config", str(paths.config)):
        return None
    return pid, *ports


def _launch(paths: StandinPaths, ports: tuple[int, int], env_file: Path, clock_file: Path, timeout: float) -> int | None:
    write_json_atomic(paths.config, server_config(paths, *ports, env_file, clock_file))
    pid = spawn(server_argv(paths.config), paths.log, server_env())
    paths.pidfile.write_text(f"{pid}\n")
    if wait_until(lambda: not pid_alive(pid) or _answers(*ports), timeout, "stand-ins to answer") is None:
        _stop(paths, STOP_TIMEOUT)
        raise Unreachable(f"stand-ins did not answer on 127.0.0.1:{ports[0]}/{ports[1]} within {timeout:.0f} s",
                          f"see {paths.log}")
    if pid_alive(pid):
        return pid
    paths.pidfile.unlink(missing_ok=True)
    if "Address already in use" in log_tail(paths.log, 8):
        return None
    raise Unreachable(f"stand-ins exited during start-up: {log_tail(paths.log)}", f"see {paths.log}")


def start_standins(base: Path, env_file: Path, clock_file: Path, github_state: Callable[[], dict],
                   timeout: float = START_TIMEOUT) -> StandinInfo:
    """Start (or reuse) the stand-ins.  github.json is written from `github_state()` only
    when missing, so switches and recorded runs survive a second twin.up."""
    paths = StandinPaths.under(base)
    paths.root.mkdir(parents=True, exist_ok=True)
    ensure_token(paths)
    with file_lock(paths.state_lock):
        if not paths.github_state.exists():
            write_json_atomic(paths.github_state, github_state())
    with file_lock(paths.lock):
        running = _running(paths)
        if running is not None:
            pid, gh, ts = running
            if wait_until(lambda: _answers(gh, ts), timeout, "running stand-ins to answer") is None:
                raise Unreachable(f"stand-ins PID {pid} runs but do not answer on 127.0.0.1:{gh}/{ts}",
                                  f"stop it: inv twin.down; see {paths.log}")
            return StandinInfo(paths, pid, gh, ts, True)
        candidates = [p for p in [_ports(paths)] if p] + [(free_port(), free_port()) for _ in range(PORT_ATTEMPTS)]
        for ports in candidates:
            launched = _launch(paths, ports, env_file, clock_file, timeout)
            if launched is not None:
                log.info("stand-ins PID %d: github :%d tushare :%d", launched, *ports)
                return StandinInfo(paths, launched, ports[0], ports[1], False)
    raise Unreachable("stand-ins could not bind free loopback ports", f"see {paths.log}")


def is_running(base: Path) -> bool:
    return _running(StandinPaths.under(base)) is not None


def stop_standins(base: Path, timeout: float = STOP_TIMEOUT) -> int | None:
    """SIGTERM our stand-in process (PID from its pidfile), SIGKILL after `timeout`; the PID or None."""
    paths = StandinPaths.under(base)
    if not paths.root.exists():
        return None
    with file_lock(paths.lock):
        return _stop(paths, timeout)


def _stop(paths: StandinPaths, timeout: float) -> int | None:
    running = _running(paths)
    if running:
        terminate(running[0], timeout)
    paths.pidfile.unlink(missing_ok=True)
    return running[0] if running else None
