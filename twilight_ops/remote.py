"""The one executor: commands on tvps over a strict Fabric connection.

- Host keys are verified against known_hosts (RejectPolicy); Fabric's default
  AutoAddPolicy is replaced before any connect.
- TCP_NODELAY on the transport; one connection per task, reused; only the
  connect is retried (tenacity, bounded); never a pty.
- Every command is an argv rendered with shlex.join; stdin is sent on the
  channel, never pasted into the command line; no env is ever inlined.
- paramiko/socket errors become Unreachable / HostKeyRejected at this edge.
- Every operation has a deadline (`twilight.ssh_op_timeout_seconds`): opening a channel,
  starting a command, the keepalive probe a quiet command gets every few seconds.  A watchdog closes the transport when one passes, which wakes every wait inside
  paramiko; the executor is then lost: "tvps stopped answering during <operation>" (exit 3),
  and every later call fails at once with that same error (cleanup never hangs).
- Ctrl-C: the main thread only ever waits in short polls or interruptible waits, so SIGINT
  lands at once; after it, remote calls (the journal save, the lock release on the way out)
  get a few seconds each, and the first that times out ends the link: Ctrl-C stays 130.
- One request loop per executor (builders/session.py): the first operation opens one session channel
  running a small loop on tvps; every later command, read, write and append is one request on it (one
  round trip instead of channel open + exec + answer).  Results, errors, deadlines, probes and Ctrl-C
  are the same as on a channel of its own; a command past its timeout discards the loop (the next
  operation opens another).  A loop that cannot START (no python3, a garbled hello) makes the executor
  use one channel per operation for its life (said once in the trace); a loop that dies mid-request is
  a lost link (LinkLost), never a silent re-run.  A call made while the loop is busy (another thread)
  takes a channel of its own.
- Files are read, written and appended with one command each (`cat`; data on stdin/stdout), not
  sftp: one channel where sftp took 4–6 requests, each a round trip (issue 22).
- append_soon (the audit log) queues an append that the next operation carries in front of its own
  command (files.with_appends: one request for both); close() sends the rest.  The run's first write
  in a folder goes at once (it sweeps, below).
- Atomic writes go through `.NAME.<8 hex>.tmp` beside the target; the first write into a
  directory removes such temps of NAME-shaped files left by a run that died (older than this
  run, by tvps' own clock), never anything else.
"""
from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import re
import select
import signal
import socket
import threading
import time
import uuid
from pathlib import Path
from types import FrameType
from typing import Callable, Iterator, Sequence

import paramiko
import tenacity
from fabric import Config as FabricConfig
from fabric import Connection

from .config import SshSettings
from .errors import BadInput, HostKeyRejected, LinkLost, RemoteCommandFailed, Unreachable
from .executor import Result, render, secret_from_bytes
from .sanitize import printable
from .secret import Secret
from . import trace
from .builders import files, session


_TRANSIENT = (socket.timeout, ConnectionError, OSError, EOFError, paramiko.ssh_exception.NoValidConnectionsError)
WIND_DOWN_S = 3.0        # after Ctrl-C: each remote call on the way out gets this long
PROBE_EVERY_S = 10.0     # a command quiet this long gets a keepalive probe (at most the op timeout)
_TEMP_RE = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{8}\.tmp")


def temp_name(basename: str) -> str:
    """The temp file write_file writes beside `basename` before the rename."""
    return f".{basename}.{uuid.uuid4().hex[:8]}.tmp"


def is_stale_temp(filename: str, mtime: float, run_started: float) -> bool:
    """A temp of write_file's own shape (`.NAME.<8 hex>.tmp`) last touched before this run began
    (both times on tvps' clock): left by a run that died mid-write.  Anything else is kept."""
    return _TEMP_RE.fullmatch(filename) is not None and mtime < run_started


def stopped_answering(host: str, what: str, seconds: float) -> LinkLost:
    return LinkLost(f"{host} stopped answering during {what} (no reply within {seconds:g} s; the connection was closed)",
                       f"check the network and `ssh {host} true`")


# ---------------------------------------------------------------- Ctrl-C

_interrupted = False      # a Ctrl-C was seen (a plain flag: a signal handler must not take locks)


def note_interrupt() -> None:
    global _interrupted
    _interrupted = True


_last_interrupt: KeyboardInterrupt | None = None


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    """Python's own behaviour (raise KeyboardInterrupt), keeping the object: if the link is given
    up on the way out, that same interruption goes on (it carries the step it stopped)."""
    global _last_interrupt
    note_interrupt()
    _last_interrupt = KeyboardInterrupt()
    raise _last_interrupt


def _watch_sigint() -> None:
    """Note every Ctrl-C (then raise KeyboardInterrupt as Python does), so that remote calls made
    on the way out get WIND_DOWN_S, not the full op timeout.  Only where Python's own handler is
    installed (a shell's background job ignores SIGINT: left alone)."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_sigint)


def _ssh_config(settings: SshSettings) -> paramiko.SSHConfig:
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

    def __init__(self, settings: SshSettings):
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
        self.commands_run = 0        # remote commands this executor ran (journalled by deploy)
        self._lost: BaseException | None = None      # why the link was given up (every later call raises it)
        self._interrupt: KeyboardInterrupt | None = None
        self._started = time.monotonic()
        self._swept: set[str] = set()                # directories already cleared of dead runs' temps
        self._loop: paramiko.Channel | None = None     # the request loop's channel (opened on first use)
        self._reader = session.AnswerReader()
        self._loop_lock = threading.Lock()
        self._per_channel = False                    # the loop could not start: one channel per operation
        self._outbox: list[tuple[str, bytes]] = []   # append_soon()'s appends, sent with the next operation
        self._outbox_lock = threading.Lock()
        self._opening: threading.Thread | None = None  # open_soon()'s thread, until an operation waits for it
        self._opening_error: BaseException | None = None

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

    def open_soon(self) -> None:
        """Connect, start the request loop and look up the home directory on a thread of its own, so
        that the link's waits (the handshake, sshd starting the loop) overlap the caller's own work
        (imports, a schema).  The next operation waits for it and raises what it raised.  Call it only
        once the input is checked: it connects."""
        if self._opening is not None or self._lost is not None or self.conn.is_connected:
            return
        _watch_sigint()                       # signal handlers: from the main thread only

        def work() -> None:
            try:
                self.home
            except BaseException as e:        # given to the operation that waits for it
                self._opening_error = e

        self._opening = threading.Thread(target=work, name="twilight-open", daemon=True)
        self._opening.start()

    def _opened(self) -> None:
        """Wait for open_soon()'s thread (not from that thread itself); raise what it raised."""
        thread = self._opening
        if thread is None or thread is threading.current_thread():
            return
        thread.join()
        self._opening = None
        error, self._opening_error = self._opening_error, None
        if error is not None:
            raise error

    def open(self) -> None:
        self._opened()
        if self._lost is not None:
            raise self._lost
        if self.conn.is_connected:
            return
        _watch_sigint()
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

    # -- deadlines ----------------------------------------------------------
    def _limit(self) -> float:
        op = self.settings.ssh_op_timeout_s
        return min(op, WIND_DOWN_S) if _interrupted else op

    def _drop(self) -> None:
        """Close the transport (from the watchdog thread): every paramiko wait wakes up."""
        transport = self.conn.client.get_transport()
        if transport is not None:
            try:
                transport.close()
            except Exception:
                pass

    @contextlib.contextmanager
    def _deadline(self, what: str) -> Iterator[None]:
        """Bound one remote operation; past the limit the link is closed and given up."""
        if self._lost is not None:
            raise self._lost
        limit = self._limit()
        fired = threading.Event()

        def expire() -> None:
            fired.set()
            self._drop()

        timer = threading.Timer(limit, expire)
        timer.daemon = True
        timer.start()
        try:
            yield
        except KeyboardInterrupt as e:
            note_interrupt()
            self._interrupt = e
            raise
        except BaseException:
            if fired.is_set():
                raise self._give_up(what, limit) from None
            raise
        finally:
            timer.cancel()
        if fired.is_set():
            raise self._give_up(what, limit)

    def _give_up(self, what: str, limit: float) -> BaseException:
        """The link is lost: remember why.  After Ctrl-C it stays an interruption (exit 130)."""
        if _interrupted:            # the same Ctrl-C goes on (it knows the step it stopped)
            self._lost = self._interrupt or _last_interrupt or KeyboardInterrupt()
        else:
            self._lost = stopped_answering(self.settings.host, what, limit)
        return self._lost

    def _probe(self, transport: paramiko.Transport, what: str) -> None:
        """A keepalive that wants a reply (OpenSSH's ServerAliveInterval): any answer will do."""
        with self._deadline(what):
            transport.global_request("keepalive@openssh.com", wait=True)

    def close(self, *, quiet: bool = False) -> None:
        """Send the queued appends (append_soon), then close.  quiet: on the way out of an error, a
        failure to send them is not raised (the error on its way is what counts)."""
        try:
            if self._opening is not None:     # opened for an operation that never came: only close
                try:
                    self._opened()
                except Exception:
                    pass
            self.flush_appends()
        except BaseException:
            if not quiet:
                raise
        finally:
            self._discard_loop()
            self.conn.close()

    def reconnect(self) -> None:
        self.close()
        self._lost = None
        self.open()

    def __enter__(self) -> "SSHExecutor":
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(quiet=exc_type is not None)

    # -- paths ------------------------------------------------------------
    @property
    def home(self) -> str:
        """tvps' home directory as a physical path: where sshd starts a command (`pwd -P`, one channel)."""
        self._opened()
        if self._home is None:
            self.open()
            r = self._exec(render(files.physical_cwd()), stdin=None, check=False, timeout=None,
                           what="the lookup of the home directory")
            lines = r.stdout.strip().splitlines()
            if not r.ok or not lines or not lines[-1].startswith("/"):
                raise Unreachable(f"cannot tell the home directory on {self.where}: {_why(r.stderr.encode(), r.exited)}",
                                  f"check `ssh {self.settings.host} pwd`")
            self._home = lines[-1]
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
        return self._exec(command, stdin=stdin, check=check, timeout=timeout)

    def _exec(self, command: str, *, stdin: str | bytes | None, check: bool, timeout: float | None,
              what: str | None = None) -> Result:
        """One command on one session channel (run(), and the executor's own file commands)."""
        exited, out, err = self._exec_raw(command, stdin=stdin, timeout=timeout, what=what)
        result = Result(command, exited, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))
        if check and not result.ok:
            raise RemoteCommandFailed(command, exited, result.stderr)
        return result

    def _exec_raw(self, command: str, *, stdin: str | bytes | None, timeout: float | None,
                  what: str | None = None) -> tuple[int, bytes, bytes]:
        """(exit status, stdout, stderr) as bytes; `what` names the operation in a lost link's line
        (the command itself when None).  On the request loop when it is free, else on a channel of its own."""
        transport = self.conn.client.get_transport()
        label = what or f"`{command}`"
        if transport is None:
            raise LinkLost(f"lost the connection to {self.where} before {label if what else f'running {label}'}",
                           f"check the network and `ssh {self.settings.host} true`")
        data = None if stdin is None else (stdin.encode() if isinstance(stdin, str) else stdin)
        with self._outbox_lock:
            queued, self._outbox = self._outbox, []
        if queued:          # the queued appends ride in front of this command (one round trip for both)
            command = files.with_appends([(p, len(d)) for p, d in queued], command)
            data = b"".join(d for _, d in queued) + (data or b"")
        exited, out, err = self._send(transport, command, data, timeout, label, what)
        if queued and exited == files.APPEND_FAILED and files.APPEND_FAILED_MARK.encode() in err:
            raise self._append_failed(queued, err)
        return exited, out, err

    def _send(self, transport: paramiko.Transport, command: str, data: bytes | None, timeout: float | None,
              label: str, what: str | None) -> tuple[int, bytes, bytes]:
        if not self._per_channel and self._loop_lock.acquire(blocking=False):
            try:
                answer = self._on_loop(transport, command, data, timeout, label, what)
            finally:
                self._loop_lock.release()
            if answer is not None:
                return answer
        return self._on_channel(transport, command, data, timeout, label, what)

    def _on_channel(self, transport: paramiko.Transport, command: str, data: bytes | None, timeout: float | None,
                    label: str, what: str | None) -> tuple[int, bytes, bytes]:
        """One command on one session channel of its own."""
        try:
            with self._deadline(label):
                chan = transport.open_session()
                chan.exec_command(command)
                if data is not None:
                    try:
                        chan.sendall(data)
                    except (OSError, EOFError):
                        pass  # the command exited without reading stdin
                chan.shutdown_write()
            quiet_limit = min(PROBE_EVERY_S, self.settings.ssh_op_timeout_s)
            out, err = _drain(chan, timeout, label, lambda: self._probe(transport, label), quiet_limit)
            exited = chan.recv_exit_status()
            chan.close()
            if exited == -1 and not transport.is_active():  # type: ignore[union-attr]
                # the channel closed without an exit status because the connection died
                raise EOFError("the connection closed before the command reported its exit status")
        except KeyboardInterrupt as e:    # Ctrl-C in the drain's poll: the same one goes on if the link is given up
            note_interrupt()
            self._interrupt = e
            raise
        except (paramiko.SSHException, EOFError, OSError) as e:
            if self._lost is not None:
                raise self._lost from None
            raise self._lost_during(label, what, e) from None
        return exited, out, err

    def _lost_during(self, label: str, what: str | None, e: BaseException) -> LinkLost:
        return LinkLost(f"lost the connection to {self.where} {f'during {label}' if what else f'while running {label}'}: "
                        f"{e or type(e).__name__}", "re-run the task; it resumes from the journal")

    # -- the request loop ---------------------------------------------------
    def _on_loop(self, transport: paramiko.Transport, command: str, data: bytes | None, timeout: float | None,
                 label: str, what: str | None) -> tuple[int, bytes, bytes] | None:
        """One request on the loop (opened on first use); None when the loop could not start (the
        executor then uses one channel per operation).  Any failure once the request is sent discards
        the loop: its command may have run, so it is never sent again."""
        try:
            chan = self._loop
            if chan is None or chan.closed or chan.get_transport() is not transport:
                self._discard_loop()
                chan = self._start_loop(transport, label)
                if chan is None:
                    return None
            trace.record("ssh", "request")
            with self._deadline(label):
                chan.sendall(session.request(command, data or b""))
            quiet_limit = min(PROBE_EVERY_S, self.settings.ssh_op_timeout_s)
            answer = _await_answer(chan, self._reader, timeout, label, lambda: self._probe(transport, label), quiet_limit)
        except KeyboardInterrupt as e:    # the answer would be taken for the next request's: the loop goes
            self._discard_loop()
            note_interrupt()
            self._interrupt = e
            raise
        except Unreachable:               # past its timeout, or the link stopped answering
            self._discard_loop()
            raise
        except (paramiko.SSHException, EOFError, OSError, session.Garbled) as e:
            self._discard_loop()
            if self._lost is not None:
                raise self._lost from None
            raise self._lost_during(label, what, e) from None
        return answer.exited, answer.stdout, answer.stderr

    def _start_loop(self, transport: paramiko.Transport, label: str) -> paramiko.Channel | None:
        """Open the loop's channel and wait for its hello (within the op deadline).  None, and one
        channel per operation from now on, when it cannot start; no request was sent to it."""
        reader = session.AnswerReader()
        chan: paramiko.Channel | None = None
        try:
            with self._deadline(label):
                chan = transport.open_session()
                chan.exec_command(render(session.loop_argv(self.settings.ssh_loop_python)))
                while True:
                    while chan.recv_ready():
                        reader.feed(chan.recv(65536))
                    try:
                        if reader.hello():
                            break
                    except session.Garbled as e:
                        self._fall_back(chan, str(e))
                        return None
                    if (chan.eof_received or chan.closed) and not chan.recv_ready():
                        if not transport.is_active():
                            raise EOFError("the connection closed before the request loop started")
                        status = chan.recv_exit_status()       # sshd sends it right after the EOF
                        err = b""
                        while chan.recv_stderr_ready():
                            err += chan.recv_stderr(65536)
                        self._fall_back(chan, f"it ended before it started: {_why(err, status)} (exit {status})")
                        return None
                    select.select([chan], [], [], 0.2)
        except BaseException:
            if chan is not None:
                chan.close()
            raise
        self._loop, self._reader = chan, reader
        return chan

    def _fall_back(self, chan: paramiko.Channel, why: str) -> None:
        chan.close()
        self._per_channel = True
        trace.record("ssh", "fallback", why=f"the request loop on {self.settings.host} did not start ({why}): "
                                             "one channel per operation from now on")

    def _discard_loop(self) -> None:
        chan, self._loop = self._loop, None
        self._reader = session.AnswerReader()
        if chan is not None:
            try:
                chan.close()
            except Exception:
                pass

    # -- files ------------------------------------------------------------
    # Each file operation is one command on one channel (issue 22: sftp took 4–6 requests for each,
    # every one a round trip): `cat` to read, `cat >` a temp + chmod + rename to write, `cat >>` to
    # append; the data travels on stdin/stdout, never in the command line.

    def read_file(self, path: str) -> bytes:
        p = self.expand(path)
        trace.record("tvps", "read", path=p)
        self.open()
        exited, out, err = self._exec_raw(render(files.read_bytes(p)), stdin=None, timeout=None, what=f"the read of {p}")
        if exited == files.MISSING:
            raise FileNotFoundError(errno.ENOENT, f"no such file on {self.settings.host}", p)
        if exited != 0:
            raise Unreachable(f"cannot read {p} on {self.settings.host}: {_why(err, exited)}",
                              "check the path and its permissions")
        return out

    def read_first(self, paths: Sequence[str]) -> tuple[int, bytes]:
        """(index, bytes) of the first of `paths` that exists, with one command; FileNotFoundError when none does."""
        ps = [self.expand(p) for p in paths]
        trace.record("tvps", "read", path=ps[0], also=ps[1:])
        self.open()
        exited, out, err = self._exec_raw(render(files.read_first(ps)), stdin=None, timeout=None,
                                          what=f"the read of {ps[0]}")
        if exited == files.MISSING:
            raise FileNotFoundError(errno.ENOENT, f"no such file on {self.settings.host}", ps[0])
        index, _, data = out.partition(b"\n")
        if exited != 0 or not index.isdigit() or int(index) >= len(ps):
            raise Unreachable(f"cannot read {ps[0]} on {self.settings.host}: {_why(err, exited)}",
                              "check the path and its permissions")
        return int(index), data

    def write_file(self, path: str, data: bytes, mode: int = 0o600, *, parents: bool = False) -> None:
        """Atomic write: a temp file in the same directory (created 0600, then given `mode`), renamed over;
        parents: the directory is made when missing (in the same command)."""
        p = self.expand(path)
        trace.record("tvps", "write", path=p, data=data, mode=mode)
        folder = posixpath.dirname(p)
        tmp = posixpath.join(folder, temp_name(posixpath.basename(p)))
        first = folder not in self._swept
        self.open()
        exited, out, err = self._exec_raw(render(files.write_atomic(p, tmp, folder, mode, stamp=first, parents=parents)), stdin=data,
                                          timeout=None, what=f"the write of {p}")
        if exited != 0:
            why = f"no such directory {folder}" if exited == files.MISSING else _why(err, exited)
            raise self._no_room(folder, p, len(data)) or Unreachable(
                f"cannot write {p} on {self.settings.host}: {why}", "check the directory exists and is writable")
        if first:
            self._sweep_after(folder, out)

    def _no_room(self, folder: str, path: str, size: int) -> Unreachable | None:
        """After a failed write: a full filesystem is named as such (the write itself says little)."""
        try:
            r = self.run(files.free_space(folder), check=False, timeout=30)
        except Unreachable:
            return None
        free = files.parse_free_kib(r.stdout) if r.ok else None
        if free is None or free * 1024 > size + 64 * 1024:
            return None
        return Unreachable(f"{self.settings.host} has no room to write {path}: {free} KiB free in {folder} "
                           f"({size} bytes needed); this run's journal is kept on this machine",
                           f"free space on {self.settings.host} (`df -h {folder}`; old logs, `docker image prune`), "
                           "then re-run the same command: it resumes from the journal")

    def _sweep_after(self, folder: str, out: bytes) -> None:
        """The run's first write in `folder`: its command printed tvps' clock, then listed the temps there
        (files._stamp_and_list); when that listing did not run, the folder is listed on its own."""
        head, _, listing = out.partition(b"\n")
        now_there = _stamp(head)
        if now_there is not None and listing.endswith(files.LISTED):
            self._swept.add(folder)
            self._remove_stale(folder, now_there, listing[:-len(files.LISTED)].decode("utf-8", "replace"))
        else:
            self._sweep(folder, now_there)

    def _sweep(self, folder: str, now_there: float | None) -> None:
        """Remove the temps a dead run left in `folder` (is_stale_temp), once per run and folder: one
        command lists them, _remove_stale removes the stale ones."""
        self._swept.add(folder)
        if now_there is None:
            return
        r = self._exec(render(files.list_temps(folder)), stdin=None, check=False, timeout=None,
                       what=f"the clean-up of dead runs' temp files in {folder}")
        if not r.ok:
            raise Unreachable(f"cannot clean {folder} on {self.settings.host}: {_why(r.stderr.encode(), r.exited)}",
                              "check the directory and its permissions")
        self._remove_stale(folder, now_there, r.stdout)

    def _remove_stale(self, folder: str, now_there: float, listing: str) -> None:
        """This run began `elapsed` seconds before tvps' clock read `now_there` (just after our own write):
        that is its start on tvps' clock; the listed temps older than that are a dead run's."""
        run_started = now_there - (time.monotonic() - self._started) - 1
        stale = [posixpath.join(folder, name) for mtime, name in files.parse_temps(listing)
                 if is_stale_temp(name, mtime, run_started)]
        if stale:
            self._exec(render(files.remove_files(stale)), stdin=None, check=False, timeout=None,
                       what=f"the clean-up of dead runs' temp files in {folder}")
            for path in stale:
                trace.record("tvps", "remove", path=path)

    def append_file(self, path: str, data: bytes) -> None:
        """Append with one command on tvps (`cat >> PATH`, the data on stdin: O_APPEND, never rewritten).
        The data is on tvps when it returns.  FileNotFoundError when the directory is missing."""
        p = self.expand(path)
        trace.record("tvps", "append", path=p, data=data)
        folder = posixpath.dirname(p)
        first = folder not in self._swept        # the run's first write in this folder: tvps' clock for the sweep
        self.open()
        exited, out, err = self._exec_raw(render(files.append_stdin(p, folder, stamp=first)), stdin=data,
                                          timeout=None, what=f"the append to {p}")
        if exited == files.MISSING:
            raise FileNotFoundError(errno.ENOENT, f"no such directory on {self.settings.host}: {folder}", p)
        if exited != 0:
            raise self._no_room(folder, p, len(data)) or Unreachable(
                f"cannot append to {p} on {self.settings.host}: {_why(err, exited)}", "check the directory and its permissions")
        if first:                             # appends too: the journal, the audit log
            self._sweep_after(folder, out)

    def append_soon(self, path: str, data: bytes) -> None:
        """Append, sent in front of the next operation on tvps (the same request: no round trip of its
        own), or by close() at the latest; the run's first write in a folder goes at once (it sweeps
        dead runs' temps there).  Its directory is made when missing.  For lines that may wait
        for the next operation (the audit log): they reach tvps before anything later does, and the
        journal mirror's append carries them with it."""
        p = self.expand(path)
        if posixpath.dirname(p) not in self._swept:
            # the run's first write in this folder goes at once: its command also sweeps the temps a
            # dead run left there (append_file), which a queued append cannot do
            try:
                self.append_file(p, data)
                return
            except FileNotFoundError:
                pass                # no folder yet: queued, the append makes it (nothing to sweep there)
        trace.record("tvps", "append", path=p, data=data, soon=True)
        if data:
            with self._outbox_lock:
                self._outbox.append((p, data))

    def flush_appends(self) -> None:
        """Send what append_soon queued now (one request), if anything.  After the link was given up
        nothing can be sent: they are dropped (the lost link is the error the run reports)."""
        with self._outbox_lock:
            if not self._outbox:
                return
            if self._lost is not None:
                self._outbox = []
                return
        self.open()
        self._exec_raw(render(files.nothing()), stdin=None, timeout=None, what="the queued appends")

    def _append_failed(self, queued: list[tuple[str, bytes]], err: bytes) -> Unreachable:
        """The error of a queued append that failed (files.with_appends): the command it rode with did not run."""
        lines = err.decode("utf-8", "replace").strip().splitlines()
        mark = lines.pop() if lines else ""
        try:
            index = int(mark[len(files.APPEND_FAILED_MARK):].split()[0])
        except (ValueError, IndexError):
            index = 0
        path, data = queued[min(max(index, 0), len(queued) - 1)]
        why = printable(lines[-1][:200]) if lines else "it failed"
        return self._no_room(posixpath.dirname(path), path, len(data)) or Unreachable(
            f"cannot append to {path} on {self.settings.host}: {why}", "check the directory and its permissions")

    def read_secret(self, path: str) -> Secret:
        """Read a token file into a Secret; its value never reaches argv or output."""
        try:
            raw = self.read_file(path)
        except FileNotFoundError:
            raise BadInput(f"token file {path} does not exist on {self.settings.host}", "create it (mode 600) or set twilight.token_file") from None
        return secret_from_bytes(raw, path, self.settings.host)


def _why(stderr: bytes, exited: int) -> str:
    """The last line a failed file command wrote to stderr (remote text: controls shown inertly)."""
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    return printable(lines[-1][:200]) if lines else f"exit {exited}"


def _stamp(stdout: bytes) -> float | None:
    """tvps' clock as a file command printed it last (`date +%s`); None when it did not."""
    try:
        return float(stdout.split()[-1])
    except (ValueError, IndexError):
        return None


def _drain(chan: paramiko.Channel, timeout: float | None, command: str, probe: Callable[[], None],
           quiet_limit: float) -> tuple[bytes, bytes]:
    """stdout and stderr until the exit status AND the end of output (`command` names the operation in
    a message: a command in backquotes, or "the read of …"); every wait, including
    the one for EOF after the exit status (a background child can hold stdout open), is
    bounded by the deadline, and a command quiet for `quiet_limit` seconds gets `probe()` (a
    keepalive that must be answered) so a frozen tvps is noticed before the deadline.  Only
    non-blocking reads: recv is called only when data is ready."""
    out, err = bytearray(), bytearray()
    deadline = None if timeout is None else time.monotonic() + timeout
    heard = time.monotonic()
    while True:
        while chan.recv_ready():
            out += chan.recv(65536)
            heard = time.monotonic()
        while chan.recv_stderr_ready():
            err += chan.recv_stderr(65536)
            heard = time.monotonic()
        ended = chan.eof_received or chan.closed
        if chan.exit_status_ready() and ended and not chan.recv_ready() and not chan.recv_stderr_ready():
            return bytes(out), bytes(err)
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            exited = chan.exit_status_ready()          # asked before the close (a closed channel counts as exited)
            chan.close()
            why = " (it exited, but a child it left in the background still holds its output)" if exited else ""
            raise Unreachable(f"{command} did not finish within {timeout:g} s{why}", "check the service on tvps; re-run the task")
        if time.monotonic() - heard >= quiet_limit and not chan.closed:
            probe()
            heard = time.monotonic()
        select.select([chan], [], [], 0.2 if left is None else min(0.2, left))


def _await_answer(chan: paramiko.Channel, reader: session.AnswerReader, timeout: float | None, command: str,
                  probe: Callable[[], None], quiet_limit: float) -> session.Answer:
    """The loop's answer to the request just sent, waited for as _drain waits for a command: bounded by
    `timeout` (then the same Unreachable), a keepalive probe when quiet for `quiet_limit` seconds, short
    polls only.  EOFError when the loop ends without answering."""
    deadline = None if timeout is None else time.monotonic() + timeout
    heard = time.monotonic()
    while True:
        while chan.recv_ready():
            reader.feed(chan.recv(65536))
            heard = time.monotonic()
        while chan.recv_stderr_ready():      # the loop's own stderr (a traceback): heard, not kept
            chan.recv_stderr(65536)
            heard = time.monotonic()
        answer = reader.answer()
        if answer is not None:
            return answer
        if (chan.eof_received or chan.closed) and not chan.recv_ready():
            status = chan.recv_exit_status() if chan.exit_status_ready() else -1
            raise EOFError(f"the request loop on tvps ended before it answered (exit {status})")
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            chan.close()
            why = " (it exited, but a child it left in the background still holds its output)" if reader.exited else ""
            raise Unreachable(f"{command} did not finish within {timeout:g} s{why}", "check the service on tvps; re-run the task")
        if time.monotonic() - heard >= quiet_limit and not chan.closed:
            probe()
            heard = time.monotonic()
        select.select([chan], [], [], 0.2 if left is None else min(0.2, left))
