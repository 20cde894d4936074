"""Token auth in front of the twin registry, as ghcr.io answers: start/stop the token server,
its signing key, the registry's `auth: token:` section, the CI account's docker config.

Layout under `base`:

    base/registry-auth/signing.key     ES256 private key (P-256, PEM, mode 600)
    base/registry-auth/signing.crt     its self-signed certificate = the registry's rootcertbundle
    base/registry-auth/ci-password     the CI account's password (mode 600), read per request
    base/registry-auth/policy.json     {"deny_pull": true} while the pull-refused fault is on
    base/registry-auth/config.json     port, service, issuer, the files above
    base/registry-auth/token.pid       written by us at spawn; the only PID stop_token_server() signals
    base/registry-auth/token.log       access log (method, path, status, who); no password, no token
    base/ci/docker-config/config.json  DOCKER_CONFIG of the twin's CI: `auths` for the registry (mode 600)

tvps' docker (the twin account's DOCKER_CONFIG, `<twin>/docker-config`) holds no credentials:
its pulls go through the anonymous token flow, like a public ghcr.io package.
"""
from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import logging
import os
import secrets as pysecrets
import sys
from pathlib import Path

import httpx

from ..errors import Unreachable
from .dockerd import DAEMON_ENV
from .procs import cmdline, file_lock, free_port, has_option, log_tail, pid_alive, read_pidfile, spawn, terminate, wait_until

log = logging.getLogger(__name__)

SERVICE = "twin-registry"
ISSUER = "twin-token-server"
CI_ACCOUNT = "ci"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
PORT_ATTEMPTS = 3
PACKAGE_ROOT = Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True)
class AuthPaths:
    base: Path
    root: Path
    key: Path
    cert: Path
    password: Path
    policy: Path
    config: Path
    pidfile: Path
    log: Path
    lock: Path
    ci_docker_config: Path

    @classmethod
    def under(cls, base: Path) -> AuthPaths:
        base = Path(base).absolute()
        root = base / "registry-auth"
        return cls(base=base, root=root, key=root / "signing.key", cert=root / "signing.crt",
                   password=root / "ci-password", policy=root / "policy.json", config=root / "config.json",
                   pidfile=root / "token.pid", log=root / "token.log", lock=root / ".lock",
                   ci_docker_config=base / "ci" / "docker-config")


@dataclasses.dataclass(frozen=True)
class TokenServerInfo:
    paths: AuthPaths
    pid: int
    port: int
    reused: bool

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def ensure_keys(paths: AuthPaths) -> None:
    """The signing key and its self-signed certificate, created once (P-256, 10 years)."""
    paths.root.mkdir(parents=True, exist_ok=True)
    if paths.key.exists() and paths.cert.exists():
        return
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "twin registry token signer")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    _write_private(paths.key, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def ensure_password(paths: AuthPaths) -> None:
    if not paths.password.exists():
        _write_private(paths.password, (pysecrets.token_urlsafe(24) + "\n").encode())


def server_config(paths: AuthPaths, port: int) -> dict:
    return {"port": port, "service": SERVICE, "issuer": ISSUER, "account": CI_ACCOUNT,
            "key_file": str(paths.key), "cert_file": str(paths.cert), "password_file": str(paths.password),
            "policy_file": str(paths.policy)}


def registry_auth(realm: str, cert: Path) -> dict:
    """The registry config's `auth` section (distribution: realm, service, issuer, rootcertbundle)."""
    return {"token": {"realm": realm, "service": SERVICE, "issuer": ISSUER, "rootcertbundle": str(cert)}}


def server_argv(config: Path) -> list[str]:
    return [sys.executable, "-m", "twilight_ops.twin.registry_auth_server", "--config", str(config)]


def _port(paths: AuthPaths) -> int | None:
    try:
        return int(json.loads(paths.config.read_text())["port"])
    except (FileNotFoundError, ValueError, KeyError):
        return None


def _answers(port: int) -> bool:
    try:
        with httpx.Client(trust_env=False, timeout=1.0) as client:
            return client.get(f"http://127.0.0.1:{port}/token", params={"service": SERVICE}).status_code == 200
    except httpx.HTTPError:
        return False


def _running(paths: AuthPaths) -> tuple[int, int] | None:
    pid, port = read_pidfile(paths.pidfile), _port(paths)
    if pid is None or port is None or not pid_alive(pid) or not has_option(cmdline(pid), "--config", str(paths.config)):
        return None
    return pid, port


def _launch(paths: AuthPaths, port: int, timeout: float) -> int | None:
    tmp = paths.config.with_suffix(".tmp")
    tmp.write_text(json.dumps(server_config(paths, port), indent=2) + "\n")
    tmp.replace(paths.config)
    env = {**DAEMON_ENV, "PYTHONPATH": str(PACKAGE_ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    pid = spawn(server_argv(paths.config), paths.log, env)
    paths.pidfile.write_text(f"{pid}\n")
    if wait_until(lambda: not pid_alive(pid) or _answers(port), timeout, "token server to answer") is None:
        _stop(paths, STOP_TIMEOUT)
        raise Unreachable(f"token server did not answer on 127.0.0.1:{port} within {timeout:.0f} s", f"see {paths.log}")
    if pid_alive(pid):
        return pid
    paths.pidfile.unlink(missing_ok=True)
    if "Address already in use" in log_tail(paths.log, 8):
        return None
    raise Unreachable(f"token server exited during start-up: {log_tail(paths.log)}", f"see {paths.log}")


def start_token_server(base: Path, timeout: float = START_TIMEOUT) -> TokenServerInfo:
    """Start (or reuse) the token server on 127.0.0.1:<port kept across restarts>."""
    paths = AuthPaths.under(base)
    ensure_keys(paths)
    ensure_password(paths)
    with file_lock(paths.lock):
        running = _running(paths)
        if running is not None:
            pid, port = running
            if wait_until(lambda: _answers(port), timeout, "running token server to answer") is None:
                raise Unreachable(f"token server PID {pid} runs but does not answer on 127.0.0.1:{port}",
                                  f"stop it: inv twin.down; see {paths.log}")
            return TokenServerInfo(paths, pid, port, True)
        for port in [p for p in [_port(paths)] if p] + [free_port() for _ in range(PORT_ATTEMPTS)]:
            launched = _launch(paths, port, timeout)
            if launched is not None:
                log.info("token server PID %d on 127.0.0.1:%d", launched, port)
                return TokenServerInfo(paths, launched, port, False)
    raise Unreachable("token server could not bind a free loopback port", f"see {paths.log}")


def is_running(base: Path) -> bool:
    return _running(AuthPaths.under(base)) is not None


def token_url(base: Path) -> str | None:
    port = _port(AuthPaths.under(base))
    return f"http://127.0.0.1:{port}/token" if port else None


def stop_token_server(base: Path, timeout: float = STOP_TIMEOUT) -> int | None:
    """SIGTERM our token server (PID from its pidfile), SIGKILL after `timeout`; the PID or None."""
    paths = AuthPaths.under(base)
    if not paths.root.exists():
        return None
    with file_lock(paths.lock):
        return _stop(paths, timeout)


def _stop(paths: AuthPaths, timeout: float) -> int | None:
    running = _running(paths)
    if running:
        terminate(running[0], timeout)
    paths.pidfile.unlink(missing_ok=True)
    return running[0] if running else None


def write_ci_docker_config(base: Path, registry_host_port: str) -> Path:
    """DOCKER_CONFIG for the CI's pushes: `auths` for the registry (docker's config.json format,
    base64 user:password, mode 600).  Written directly, so the password never goes through argv."""
    paths = AuthPaths.under(base)
    paths.ci_docker_config.mkdir(parents=True, exist_ok=True)
    paths.ci_docker_config.chmod(0o700)
    password = paths.password.read_text().strip()
    auth = base64.b64encode(f"{CI_ACCOUNT}:{password}".encode()).decode()
    _write_private(paths.ci_docker_config / "config.json",
                   (json.dumps({"auths": {registry_host_port: {"auth": auth}}}, indent=2) + "\n").encode())
    return paths.ci_docker_config


def set_deny_pull(base: Path, deny: bool) -> None:
    """The pull-refused fault: the token server grants nobody "pull" while it is on."""
    paths = AuthPaths.under(base)
    if deny:
        paths.policy.write_text(json.dumps({"deny_pull": True}) + "\n")
    else:
        paths.policy.unlink(missing_ok=True)
