"""The twin's image registry: Debian's `docker-registry` (distribution v2) on a loopback port.

Layout under `base`:

    base/registry/config.yml   its config (JSON, which is YAML): storage, 127.0.0.1:PORT
    base/registry/data/        blob and manifest storage
    base/registry/registry.pid written by us at spawn; the only PID stop_registry() signals
    base/registry/registry.log its output

Docker treats registries on 127.0.0.0/8 as insecure by default, so plain HTTP needs no
daemon flag.  With `auth` (twin.up passes registry_auth.registry_auth(...)) it answers as
ghcr.io does: 401 + `WWW-Authenticate: Bearer realm=…,service=…,scope=…`, tokens from the
twin's token server; without it (tests of the bare engine) it is open, on loopback only.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from pathlib import Path

import httpx

from ..errors import BadInput, Unreachable
from .dockerd import DAEMON_ENV
from .procs import (
    cmdline,
    file_lock,
    free_port,
    has_option,
    log_tail,
    pid_alive,
    read_pidfile,
    spawn,
    terminate,
    wait_until,
)

log = logging.getLogger(__name__)

START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
PORT_ATTEMPTS = 3  # a free port can be taken between probing and binding
PREVIOUS_PORT_WAIT = 20.0  # how long a restart waits for its old port (a client or a dying listener holds it)
PREVIOUS_PORT_RETRY = 0.5


@dataclasses.dataclass(frozen=True)
class RegistryPaths:
    base: Path
    config: Path
    storage: Path
    pidfile: Path
    log: Path
    lock: Path

    @classmethod
    def under(cls, base: Path) -> RegistryPaths:
        base = Path(base).absolute()
        root = base / "registry"
        return cls(base=base, config=root / "config.yml", storage=root / "data",
                   pidfile=root / "registry.pid", log=root / "registry.log", lock=root / ".lock")


@dataclasses.dataclass(frozen=True)
class RegistryInfo:
    paths: RegistryPaths
    pid: int
    port: int
    reused: bool
    ready_seconds: float

    @property
    def host_port(self) -> str:
        """What goes in front of an image name: 127.0.0.1:PORT."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host_port}"


@dataclasses.dataclass(frozen=True)
class RegistryStopReport:
    pid: int | None
    signal: str | None  # "TERM", "KILL", or None when it was not running
    seconds: float


def registry_config(storage: Path, port: int, auth: dict | None = None) -> dict:
    """The registry's config (pure); `auth` is distribution's `auth:` section, e.g. token."""
    config = {
        "version": 0.1,
        "log": {"level": "info", "fields": {"service": "twin-registry"}},
        "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}", "headers": {"X-Content-Type-Options": ["nosniff"]}},
    }
    if auth:
        config["auth"] = auth
    return config


def _auth_of(config: Path) -> dict | None:
    return json.loads(config.read_text()).get("auth")


def registry_argv(config: Path) -> list[str]:
    binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    return [binary, "serve", str(config)]


def _port_of(config: Path) -> int:
    return int(json.loads(config.read_text())["http"]["addr"].rsplit(":", 1)[1])


def _answers(port: int) -> bool:
    try:
        with httpx.Client(trust_env=False, timeout=1.0) as client:
            return client.get(f"http://127.0.0.1:{port}/v2/").status_code in (200, 401)  # 401: token auth
    except httpx.HTTPError:
        return False


def _running(paths: RegistryPaths) -> tuple[int, int] | None:
    """(pid, port) of our registry if its pidfile PID is alive and serves our config."""
    pid = read_pidfile(paths.pidfile)
    if pid is None or not pid_alive(pid) or not has_option(cmdline(pid), "serve", str(paths.config)):
        return None
    return pid, _port_of(paths.config)


def _launch(paths: RegistryPaths, port: int, timeout: float, auth: dict | None = None) -> int | None:
    """Spawn the registry on `port` and wait for /v2/; its PID, or None if the port was taken."""
    tmp = paths.config.with_suffix(".tmp")
    tmp.write_text(json.dumps(registry_config(paths.storage, port, auth), indent=2) + "\n")
    tmp.replace(paths.config)
    pid = spawn(registry_argv(paths.config), paths.log, DAEMON_ENV)
    paths.pidfile.write_text(f"{pid}\n")
    if wait_until(lambda: not pid_alive(pid) or _answers(port), timeout, "registry to answer") is None:
        _stop(paths, STOP_TIMEOUT)
        raise Unreachable(f"registry did not answer on 127.0.0.1:{port} within {timeout:.0f} s", f"see {paths.log}")
    if pid_alive(pid):
        return pid
    paths.pidfile.unlink(missing_ok=True)
    if "address already in use" in log_tail(paths.log, 5):
        return None
    raise Unreachable(f"registry exited during start-up: {log_tail(paths.log)}", f"see {paths.log}")


def start_registry(base: Path, timeout: float = START_TIMEOUT, auth: dict | None = None) -> RegistryInfo:
    """Start (or reuse) the twin registry on 127.0.0.1:<free port>; wait until GET /v2/ answers.
    A running registry whose config has another `auth` is restarted on the same port."""
    paths = RegistryPaths.under(base)
    if not shutil.which("docker-registry") and not Path("/usr/bin/docker-registry").exists():
        raise BadInput("docker-registry is not installed", "apt-get install -y docker-registry")
    paths.storage.mkdir(parents=True, exist_ok=True)
    with file_lock(paths.lock):
        return _start(paths, timeout, auth)


def _start(paths: RegistryPaths, timeout: float, auth: dict | None = None) -> RegistryInfo:
    started = time.monotonic()
    running = _running(paths)
    if running is not None and _auth_of(paths.config) != auth:
        log.info("registry PID %d runs with another auth config; restarting it", running[0])
        _stop(paths, STOP_TIMEOUT)
        running = None
    if running is not None:
        pid, port = running
        if wait_until(lambda: _answers(port), timeout, "running registry to answer") is None:
            raise Unreachable(f"registry PID {pid} runs but 127.0.0.1:{port}/v2/ does not answer",
                              f"stop it: stop_registry({str(paths.base)!r}); see {paths.log}")
        log.info("reusing registry PID %d on 127.0.0.1:%d", pid, port)
        return RegistryInfo(paths, pid, port, True, time.monotonic() - started)

    previous = _port_of(paths.config) if paths.config.exists() else None
    deadline = started + PREVIOUS_PORT_WAIT
    while previous is not None:      # image references, the .env and the committed compose.yml name this port
        launched = _launch(paths, previous, timeout, auth)
        if launched is not None:
            return _ready(paths, launched, previous, started)
        if time.monotonic() >= deadline:
            log.warning("registry port %d stayed taken for %.0f s; moving to a new port", previous, PREVIOUS_PORT_WAIT)
            break
        time.sleep(PREVIOUS_PORT_RETRY)
    for port in [free_port() for _ in range(PORT_ATTEMPTS)]:
        launched = _launch(paths, port, timeout, auth)
        if launched is not None:
            return _ready(paths, launched, port, started)
    raise Unreachable("registry could not bind a free loopback port", f"see {paths.log}")


def _ready(paths: RegistryPaths, pid: int, port: int, started: float) -> RegistryInfo:
    seconds = time.monotonic() - started
    log.info("registry PID %d ready on 127.0.0.1:%d in %.2f s", pid, port, seconds)
    return RegistryInfo(paths, pid, port, False, seconds)


def is_running(info_or_base: RegistryInfo | Path) -> bool:
    """Our registry's PID (from its pidfile) is alive and serves our config."""
    paths = info_or_base.paths if isinstance(info_or_base, RegistryInfo) else RegistryPaths.under(info_or_base)
    return _running(paths) is not None


def stop_registry(info_or_base: RegistryInfo | Path, timeout: float = STOP_TIMEOUT) -> RegistryStopReport:
    """SIGTERM our registry (PID from its pidfile), SIGKILL after `timeout`."""
    paths = info_or_base.paths if isinstance(info_or_base, RegistryInfo) else RegistryPaths.under(info_or_base)
    if not paths.config.parent.exists():
        return RegistryStopReport(None, None, 0.0)
    with file_lock(paths.lock):
        return _stop(paths, timeout)


def _stop(paths: RegistryPaths, timeout: float) -> RegistryStopReport:
    started = time.monotonic()
    running = _running(paths)
    sent = terminate(running[0], timeout) if running else None
    paths.pidfile.unlink(missing_ok=True)
    if running:
        log.info("registry PID %d stopped (SIG%s)", running[0], sent)
    return RegistryStopReport(running[0] if running else None, sent, time.monotonic() - started)
