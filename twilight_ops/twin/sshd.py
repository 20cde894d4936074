"""A private OpenSSH sshd on 127.0.0.1 standing in for tvps's sshd.

Root: a dedicated account whose home holds ~/twilight, so default remote paths
work unchanged.  Not root: a same-user sshd (paths are then absolute in the
twin's invoke.yaml).  Keys, configs, pidfile and log live under <twin>/ssh.
"""
from __future__ import annotations

import grp
import os
import pwd
import re
import socket
import subprocess
from pathlib import Path

from ..errors import TwilightError, Unreachable
from .procs import cmdline, pid_alive, read_pidfile, spawn, terminate, wait_until

SSHD = "/usr/sbin/sshd"


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=True, capture_output=True, text=True)


def ensure_user(name: str, home: Path, group: str) -> tuple[int, int]:
    """Create (or reuse) the dedicated twin account and its docker group (root only)."""
    try:
        grp.getgrnam(group)
    except KeyError:
        _run(["groupadd", "--system", group])
    try:
        pw = pwd.getpwnam(name)
        if Path(pw.pw_dir) != home:
            _run(["usermod", "-d", str(home), name])
    except KeyError:
        home.parent.mkdir(parents=True, exist_ok=True)
        _run(["useradd", "--home-dir", str(home), "--no-create-home", "--shell", "/bin/bash", "-G", group, name])
    _run(["usermod", "-a", "-G", group, name])
    _run(["usermod", "-p", "*", name])  # unlocked for pubkey auth, no password
    pw = pwd.getpwnam(name)
    home.mkdir(parents=True, exist_ok=True)
    os.chown(home, pw.pw_uid, pw.pw_gid)
    home.chmod(0o755)
    return pw.pw_uid, pw.pw_gid


def remove_user(name: str, group: str) -> None:
    try:
        pwd.getpwnam(name)
        subprocess.run(["userdel", name], capture_output=True)
    except KeyError:
        pass
    try:
        grp.getgrnam(group)
        subprocess.run(["groupdel", group], capture_output=True)
    except KeyError:
        pass


def _keygen(path: Path, comment: str) -> None:
    if not path.exists():
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])


def write_keys(ssh_dir: Path, port: int, home: Path, uid: int, gid: int) -> tuple[Path, Path]:
    ssh_dir.mkdir(parents=True, exist_ok=True)
    ssh_dir.chmod(0o755)
    host_key = ssh_dir / "ssh_host_ed25519_key"
    client_key = ssh_dir / "id_ed25519"
    _keygen(host_key, "twin-host")
    _keygen(client_key, "twin-operator")
    pub = host_key.with_suffix(".pub").read_text().split()
    known = ssh_dir / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {pub[0]} {pub[1]}\n")
    dot_ssh = home / ".ssh"
    dot_ssh.mkdir(exist_ok=True)
    auth = dot_ssh / "authorized_keys"
    auth.write_text(client_key.with_suffix(".pub").read_text())
    for p, mode in ((dot_ssh, 0o700), (auth, 0o600)):
        os.chown(p, uid, gid)
        p.chmod(mode)
    return known, client_key


LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
FAKETIME_FILE = ".twin-clock"       # in the twin account's home (control.set_clock writes it)


CLOCK_ENV = "clock-env.sh"           # in the twin's ssh dir: read by every session's bash (faketime_env)


def faketime_env(offset_file: Path, shared: str, clock_env: Path) -> dict[str, str]:
    """tvps's clock for every process of an SSH session: libfaketime (Debian's libfaketime) preloaded,
    its offset read from `offset_file` (`+N.NNN` seconds, written by control.set_clock; absent = the
    wall clock). Monotonic clocks are left alone (timeouts and sleeps stay real). `shared`: the one
    semaphore + shared-memory pair every session uses (faketime_shared).

    Preloaded only while `offset_file` exists: the account's shell (bash) reads `clock_env`
    (write_clock_env) before each command and exports LD_PRELOAD then, so every process it starts
    (the request loop and each command, `date`) reads the offset.  Debian's bash run by sshd
    (SSH_CLIENT set, SHLVL < 2) reads ~/.bashrc and not BASH_ENV, so ~/.bashrc sources the same file.
    Without an offset libfaketime would give the wall clock anyway, at a cost: it wraps every clock
    call of every process (the request loop's CPU per request ×10 here, ≈ 3.5 vs 0.4 ms)."""
    return {"BASH_ENV": str(clock_env), "FAKETIME_TIMESTAMP_FILE": str(offset_file),
            "FAKETIME_DONT_FAKE_MONOTONIC": "1", "FAKETIME_SHARED": shared}


def clock_env_script(lib: Path = LIBFAKETIME) -> str:
    """The BASH_ENV of the twin's sessions (pure): libfaketime preloaded while the offset file exists."""
    return ("# written by inv twin.up: tvps's clock (docs/twin.md); libfaketime only while there is an offset\n"
            f'if [ -e "$FAKETIME_TIMESTAMP_FILE" ]; then export LD_PRELOAD={lib}; else unset LD_PRELOAD; fi\n')


def write_clock_env(ssh_dir: Path, home: Path) -> Path:
    """ssh/clock-env.sh and the account's ~/.bashrc that sources it, both root's, mode 644 (the
    account's sessions read them; only twin.up writes them)."""
    path = ssh_dir / CLOCK_ENV
    path.write_text(clock_env_script())
    bashrc = home / ".bashrc"
    bashrc.write_text(f"# written by inv twin.up\n. {path}\n")
    for p in (path, bashrc):
        p.chmod(0o644)
    return path


SHM_DIR = Path("/dev/shm")
SHARED_RE = re.compile(r"/faketime_sem_\d+ /faketime_shm_\d+")


def _shared_files(pair: str) -> list[Path]:
    sem, shm = pair.split()
    return [SHM_DIR / f"sem.{sem.lstrip('/')}", SHM_DIR / shm.lstrip("/")]


def faketime_shared(ssh_dir: Path, uid: int, gid: int) -> str:
    """libfaketime's FAKETIME_SHARED for the twin's sessions, created once as the twin account.

    Without it libfaketime 0.9.10 creates a semaphore and a shared-memory file in /dev/shm for every
    process and only removes them when that process exits without exec(): each SSH command
    (`bash -c` exec's it) would leave two files behind. A process that exec()s leaves its pair, so
    `sh -c 'exec printenv FAKETIME_SHARED'` makes one that stays; its names are kept in
    ssh/faketime_shared (reused while the files exist) and release_faketime_shared removes them."""
    if not LIBFAKETIME.is_file():
        raise TwilightError(f"{LIBFAKETIME} is missing: the twin's tvps clock needs libfaketime",
                            "run scripts/bootstrap.sh (apt-get install libfaketime) and retry")
    record = ssh_dir / "faketime_shared"
    if record.exists():
        pair = record.read_text().strip()
        if SHARED_RE.fullmatch(pair) and all(p.exists() for p in _shared_files(pair)):
            return pair
    r = subprocess.run(["sh", "-c", "exec printenv FAKETIME_SHARED"], capture_output=True, text=True, timeout=30,
                       env={"PATH": "/usr/bin:/bin", "LD_PRELOAD": str(LIBFAKETIME)}, user=uid, group=gid)
    pair = r.stdout.strip()
    if r.returncode != 0 or not SHARED_RE.fullmatch(pair):
        raise TwilightError(f"libfaketime made no shared pair ({(r.stderr or r.stdout).strip()[:120]!r})",
                            f"check {LIBFAKETIME} and /dev/shm")
    record.write_text(pair + "\n")
    return pair


def release_faketime_shared(ssh_dir: Path) -> None:
    record = ssh_dir / "faketime_shared"
    if not record.exists():
        return
    pair = record.read_text().strip()
    if SHARED_RE.fullmatch(pair):
        for p in _shared_files(pair):
            p.unlink(missing_ok=True)
    record.unlink()


def write_sshd_config(ssh_dir: Path, port: int, user: str, env: dict[str, str]) -> Path:
    lines = [
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {ssh_dir / 'ssh_host_ed25519_key'}",
        f"PidFile {ssh_dir / 'sshd.pid'}",
        "AuthorizedKeysFile .ssh/authorized_keys",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "PermitRootLogin no",
        f"AllowUsers {user}",
        "PermitTTY no",
        "X11Forwarding no",
        "AllowTcpForwarding no",
        "PrintMotd no",
        "MaxSessions 50",
        "MaxStartups 50:30:100",
        "Subsystem sftp internal-sftp",
    ]
    if env:
        lines.append("SetEnv " + " ".join(f'"{k}={v}"' if " " in v else f"{k}={v}" for k, v in env.items()))
    path = ssh_dir / "sshd_config"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_client_config(ssh_dir: Path, alias: str, port: int, user: str, key: Path, known: Path) -> Path:
    path = ssh_dir / "ssh_config"
    path.write_text(
        f"Host {alias}\n"
        f"  HostName 127.0.0.1\n"
        f"  Port {port}\n"
        f"  User {user}\n"
        f"  IdentityFile {key}\n"
        f"  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {known}\n"
        f"  StrictHostKeyChecking yes\n"
    )
    return path


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            return s.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def is_our_sshd(pid: int, ssh_dir: Path) -> bool:
    """The PID runs sshd with our own config (a recycled PID after a reboot is not ours)."""
    args = cmdline(pid)
    if not args or not pid_alive(pid):
        return False
    # sshd rewrites its title: "sshd: /usr/sbin/sshd -D -f <config> -E <log> [listener] …"
    line = " ".join(args)
    first = args[0].split()[0].rstrip(":")
    return Path(first).name == "sshd" and f" -f {ssh_dir / 'sshd_config'} " in f" {line} "


def start_sshd(ssh_dir: Path, port: int, log: Path, deadline_s: float = 10.0) -> int:
    """Start sshd in the foreground (-D) in its own session; return its PID (reused if ours runs)."""
    pidfile = ssh_dir / "sshd.pid"
    pid = read_pidfile(pidfile)
    if pid and is_our_sshd(pid, ssh_dir) and _port_open(port):
        return pid
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    test = subprocess.run([SSHD, "-t", "-f", str(ssh_dir / "sshd_config")], capture_output=True, text=True)
    if test.returncode != 0:
        raise TwilightError(f"twin sshd config is invalid: {test.stderr.strip()}", f"see {ssh_dir / 'sshd_config'}")
    pid = spawn([SSHD, "-D", "-f", str(ssh_dir / "sshd_config"), "-E", str(log)], log)
    pidfile.write_text(f"{pid}\n")

    def answers() -> bool:
        if not pid_alive(pid):
            raise Unreachable("twin sshd exited at start", f"see {log}")
        return _port_open(port)

    if wait_until(answers, deadline_s, "twin sshd to answer") is None:
        terminate(pid, 10.0)
        raise Unreachable(f"twin sshd did not answer on 127.0.0.1:{port} within {deadline_s:g} s", f"see {log}")
    return pid


def stop_sshd(ssh_dir: Path) -> None:
    """SIGTERM (then SIGKILL) the sshd in our pidfile — only if that PID is still our sshd."""
    pidfile = ssh_dir / "sshd.pid"
    pid = read_pidfile(pidfile)
    if pid and is_our_sshd(pid, ssh_dir):
        terminate(pid, 10.0)
    pidfile.unlink(missing_ok=True)


def session_pids(ssh_dir: Path) -> list[int]:
    """The per-connection sshd processes under this twin's sshd (its pidfile): the open SSH sessions
    of the tool, never another twin's."""
    master = read_pidfile(ssh_dir / "sshd.pid")
    if master is None:
        return []
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    found: list[int] = []
    todo = [master]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)

    def comm(pid: int) -> str:
        try:
            return Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            return ""

    return [pid for pid in found if comm(pid).startswith("sshd")]


def freeze_sessions(ssh_dir: Path) -> list[int]:
    """SIGSTOP the open SSH sessions (a frozen link: nothing answers, nothing closes); the pids stopped."""
    import signal

    stopped = []
    for pid in session_pids(ssh_dir):
        try:
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
        except ProcessLookupError:
            pass
    return stopped


def thaw_sessions(pids: list[int]) -> None:
    import signal

    for pid in pids:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
