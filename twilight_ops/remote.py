"""The one executor: commands on tvps over a strict Fabric connection.

- Host keys are verified against known_hosts (RejectPolicy); Fabric's default
  AutoAddPolicy is replaced before any connect.
- TCP_NODELAY on the transport; one connection per task, reused; only the
  connect is retried (tenacity, bounded); never a pty.
- Every command is an argv rendered with shlex.join; stdin is sent on the
  channel, never pasted into the command line; no env is ever inlined.
- paramiko/socket errors become Unreachable / HostKeyRejected at this edge.
"""
from __future__ import annotations

import os
import posixpath
import select
import socket
import time
import uuid
from pathlib import Path
from typing import Sequence

import paramiko
import tenacity
from fabric import Config as FabricConfig
from fabric import Connection

from .config import Settings
from .errors import BadInput, HostKeyRejected, RemoteCommandFailed, Unreachable
from .executor import Result, render, secret_from_bytes
from .secret import Secret
from . import trace


_TRANSIENT = (socket.timeout, ConnectionError, OSError, EOFError, paramiko.ssh_exception.NoValidConnectionsError)


def _ssh_config(settings: Settings) -> paramiko.SSHConfig:
    if settings.ssh_config is None:
        return paramiko.SSHConfig()
    path = settings.ssh_config
    if not path.exists():
        if path == Path(os.path.expanduser("~/.ssh/config")):
            return paramiko.SSHConfig()
        raise BadInput(f"config twilight.ssh_config {str(path)!r} does not exist", "fix the path or set it to an empty string")
    try:
        return paramiko.SSHConfig.from_path(str(path))
    except Exception as e:  # paramiko raises plain Exceptions for parse errors
        raise BadInput(f"ssh config {path} cannot be parsed: {e}", "fix the file; `ssh -G tvps` shows what OpenSSH makes of it") from None


class SSHExecutor:
    """Runs argv on tvps; one paramiko transport for the executor's life."""

    def __init__(self, settings: Settings):
        self.settings = settings
        ssh_config = _ssh_config(settings)
        fcfg = FabricConfig(ssh_config=ssh_config, overrides={"load_ssh_configs": False})
        fcfg.load_ssh_config()
        try:  # Fabric parses the ssh config here: `Port notanumber` is a ValueError
            self.conn = Connection(settings.host, config=fcfg, connect_timeout=settings.connect_timeout, inline_ssh_env=False)
        except (ValueError, TypeError) as e:
            raise BadInput(f"ssh config {settings.ssh_config or ''} for {settings.host} is not usable: {e}",
                           "fix the Host entry (Port must be a number); `ssh -G tvps` shows what OpenSSH makes of it") from None
        # Fabric installs AutoAddPolicy and loads no known_hosts: replace both, on tvps
        # and on every ProxyJump hop Fabric built from the ssh config.
        self.known_hosts = self._known_hosts_path()
        self._hops: list[Connection] = []
        hop: object = self.conn
        while isinstance(hop, Connection):
            hop.client.set_missing_host_key_policy(paramiko.RejectPolicy())
            self._hops.append(hop)
            hop = hop.gateway
        self._home: str | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self.commands_run = 0        # remote commands this executor ran (journalled by deploy)

    # -- connection -------------------------------------------------------
    def _known_hosts_path(self) -> Path:
        files = self.conn.ssh_config.get("userknownhostsfile")
        if files:
            first = files.split()[0] if isinstance(files, str) else files[0]
            return Path(os.path.expanduser(first))
        return self.settings.known_hosts

    @property
    def where(self) -> str:
        port = self.conn.port
        return f"{self.settings.host} ({self.conn.user}@{self.conn.host}:{port})"

    def open(self) -> None:
        if self.conn.is_connected:
            return
        if not self.known_hosts.exists():
            raise HostKeyRejected(
                f"known_hosts file {self.known_hosts} does not exist, so the host key of {self.where} cannot be verified",
                "verify tvps's fingerprint out of band, then connect once with `ssh tvps true` to record it",
            )
        for hop in self._hops:
            hop.client.load_host_keys(str(self.known_hosts))

        def _attempt() -> None:
            try:
                self.conn.open()
            except paramiko.BadHostKeyException as e:
                raise HostKeyRejected(
                    f"host key of {self.where} CHANGED (got {e.key.get_name()} {e.key.fingerprint}): refusing to connect",
                    f"verify the new key out of band; if it is right, remove the old line from {self.known_hosts}",
                ) from None
            except paramiko.AuthenticationException as e:
                raise Unreachable(f"ssh authentication to {self.where} failed: {e}", "check IdentityFile and User for tvps in ~/.ssh/config") from None
            except paramiko.SSHException as e:
                if "known_hosts" in str(e):
                    raise HostKeyRejected(
                        f"host key of {self.where} is not in {self.known_hosts}: refusing to connect",
                        "verify the fingerprint out of band, then record it with `ssh tvps true`",
                    ) from None
                raise

        retry = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_TRANSIENT),
            stop=tenacity.stop_after_attempt(self.settings.connect_attempts),
            wait=tenacity.wait_exponential(multiplier=0.5, max=4),
            reraise=True,
        )
        try:
            retry(_attempt)
        except (HostKeyRejected, Unreachable):
            raise
        except (paramiko.SSHException, *_TRANSIENT) as e:
            raise Unreachable(
                f"cannot reach {self.where} after {self.settings.connect_attempts} attempts: {e or type(e).__name__}",
                "check the network and `ssh tvps true`",
            ) from None
        transport = self.conn.client.get_transport()
        if transport is not None and transport.sock is not None and hasattr(transport.sock, "setsockopt"):
            try:
                transport.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            transport.set_keepalive(15)

    def close(self) -> None:
        if self._sftp is not None:
            try:
                self._sftp.close()
            except Exception:
                pass
            self._sftp = None
        self.conn.close()

    def reconnect(self) -> None:
        self.close()
        self.open()

    def __enter__(self) -> "SSHExecutor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- paths ------------------------------------------------------------
    def sftp(self) -> paramiko.SFTPClient:
        self.open()
        if self._sftp is None:
            try:
                self._sftp = self.conn.client.open_sftp()
            except (paramiko.SSHException, OSError, EOFError) as e:
                raise Unreachable(f"sftp to {self.where} failed: {e}", "check that sshd allows the sftp subsystem") from None
        return self._sftp

    @property
    def home(self) -> str:
        if self._home is None:
            self._home = self.sftp().normalize(".")
        return self._home

    def expand(self, path: str) -> str:
        if path == "~":
            return self.home
        if path.startswith("~/"):
            return posixpath.join(self.home, path[2:])
        return path

    # -- commands ---------------------------------------------------------
    def run(self, argv: Sequence[str], *, stdin: str | bytes | None = None, check: bool = True,
            timeout: float | None = None) -> Result:
        command = render(argv)
        self.open()
        self.commands_run += 1
        trace.record("tvps", "run", argv=[str(a) for a in argv], stdin=stdin)
        transport = self.conn.client.get_transport()
        try:
            chan = transport.open_session()  # type: ignore[union-attr]
            chan.exec_command(command)
            if stdin is not None:
                data = stdin.encode() if isinstance(stdin, str) else stdin
                try:
                    chan.sendall(data)
                except (OSError, EOFError):
                    pass  # the command exited without reading stdin
            chan.shutdown_write()
            out, err = _drain(chan, timeout, command)
            exited = chan.recv_exit_status()
            chan.close()
            if exited == -1 and not transport.is_active():  # type: ignore[union-attr]
                # the channel closed without an exit status because the connection died
                raise EOFError("the connection closed before the command reported its exit status")
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise Unreachable(f"lost the connection to {self.where} while running `{command}`: {e or type(e).__name__}",
                              "re-run the task; it resumes from the journal") from None
        result = Result(command, exited, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))
        if check and not result.ok:
            raise RemoteCommandFailed(command, exited, result.stderr)
        return result

    # -- files ------------------------------------------------------------
    def read_file(self, path: str) -> bytes:
        p = self.expand(path)
        trace.record("tvps", "read", path=p)
        try:
            with self.sftp().open(p, "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            raise
        except (OSError, paramiko.SSHException) as e:
            raise Unreachable(f"cannot read {p} on {self.settings.host}: {e}", "check the path and its permissions") from None

    def write_file(self, path: str, data: bytes, mode: int = 0o600) -> None:
        """Atomic write: temp file in the same directory, then rename over."""
        p = self.expand(path)
        trace.record("tvps", "write", path=p, data=data, mode=mode)
        tmp = posixpath.join(posixpath.dirname(p), f".{posixpath.basename(p)}.{uuid.uuid4().hex[:8]}.tmp")
        sftp = self.sftp()
        try:
            with sftp.open(tmp, "wb") as fh:
                fh.chmod(mode)  # before any byte is written: never briefly world-readable
                fh.write(data)
            sftp.posix_rename(tmp, p)
        except (OSError, paramiko.SSHException) as e:
            try:
                sftp.remove(tmp)
            except Exception:
                pass
            raise Unreachable(f"cannot write {p} on {self.settings.host}: {e}", "check the directory exists and is writable") from None

    def append_file(self, path: str, data: bytes) -> None:
        """Append in O_APPEND mode over sftp (no shell); FileNotFoundError when the dir is missing."""
        p = self.expand(path)
        trace.record("tvps", "append", path=p, data=data)
        try:
            with self.sftp().open(p, "ab") as fh:
                fh.write(data)
        except FileNotFoundError:
            raise
        except (OSError, paramiko.SSHException) as e:
            raise Unreachable(f"cannot append to {p} on {self.settings.host}: {e}", "check the directory and its permissions") from None

    def read_secret(self, path: str) -> Secret:
        """Read a token file into a Secret; its value never reaches argv or output."""
        try:
            raw = self.read_file(path)
        except FileNotFoundError:
            raise BadInput(f"token file {path} does not exist on {self.settings.host}", "create it (mode 600) or set twilight.token_file") from None
        return secret_from_bytes(raw, path, self.settings.host)


def _drain(chan: paramiko.Channel, timeout: float | None, command: str) -> tuple[bytes, bytes]:
    """stdout and stderr until the exit status AND the end of output; every wait, including
    the one for EOF after the exit status (a background child can hold stdout open), is
    bounded by the deadline.  Only non-blocking reads: recv is called only when data is ready."""
    out, err = bytearray(), bytearray()
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        while chan.recv_ready():
            out += chan.recv(65536)
        while chan.recv_stderr_ready():
            err += chan.recv_stderr(65536)
        ended = chan.eof_received or chan.closed
        if chan.exit_status_ready() and ended and not chan.recv_ready() and not chan.recv_stderr_ready():
            return bytes(out), bytes(err)
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            chan.close()
            why = " (it exited, but a child it left in the background still holds its output)" if chan.exit_status_ready() else ""
            raise Unreachable(f"`{command}` did not finish within {timeout:g} s{why}", "check the service on tvps; re-run the task")
        select.select([chan], [], [], 0.2 if left is None else min(0.2, left))
