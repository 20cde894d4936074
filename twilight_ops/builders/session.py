"""The request loop on tvps (issue 22): one long-lived command carries the executor's operations.

A session channel runs `exec PYTHON -c LOOP_SCRIPT` once; the loop says HELLO, then reads requests
on its stdin and answers each on its stdout, so an operation costs one round trip instead of a
channel open, an exec request and the answer.  Frames are length-prefixed (binary safe, any size):

    request   b"Q" + u64 len + command + u64 len + stdin bytes
    exited    b"X"                                the command exited (its output may still be open)
    answer    b"A" + i32 exit status + u64 len + stdout + u64 len + stderr

The loop runs each command as sshd does: the session's SHELL (/bin/sh if unset) as `NAME -c COMMAND`
(argv[0] the shell's basename), cwd = the directory sshd started it in (the home directory), the
session's environment, stdin = exactly the request's bytes then EOF.  A command killed by a signal
answers -1 (what paramiko reports for sshd's exit-signal).  stdin is never written to disk.  The loop
ends at EOF on its stdin or when its stdout is gone (the local side died): no stray loop on tvps.

Everything here is pure: the script's text, the command that starts it, and the codec.
"""
from __future__ import annotations

import dataclasses
import struct
from typing import Sequence

HELLO = b"TWILIGHT-LOOP 1\n"
_U64 = struct.Struct(">Q")
_I32 = struct.Struct(">i")

LOOP_SCRIPT = r'''
import os, struct, subprocess, sys, threading
U64, I32 = struct.Struct(">Q"), struct.Struct(">i")
out_lock = threading.Lock()

def read_exact(n):
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(0, min(n - len(buf), 1 << 20))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)

def send(*parts):
    with out_lock:
        for part in parts:
            view = memoryview(part)
            while view:
                view = view[os.write(1, view):]

def run(shell, home, env, command, data):
    try:
        proc = subprocess.Popen([os.path.basename(shell), "-c", command], executable=shell, cwd=home, env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as e:
        return 127, b"", ("%s: %s\n" % (shell, e.strerror)).encode()
    watcher = threading.Thread(target=lambda: (proc.wait(), send(b"X")), daemon=True)
    watcher.start()
    out, err = proc.communicate(data)
    watcher.join()
    return (proc.returncode if proc.returncode >= 0 else -1), out, err

def main():
    shell = os.environ.get("SHELL") or "/bin/sh"
    try:
        home = os.getcwd()
    except OSError:
        home = "/"
    env = {k: v for k, v in os.environ.items() if k not in ("SHLVL", "_")}
    send(HELLO)
    while True:
        head = read_exact(9)
        if head is None:
            return 0
        if head[:1] != b"Q":
            return 3
        command = read_exact(U64.unpack(head[1:])[0])
        size = read_exact(8)
        data = read_exact(U64.unpack(size)[0]) if size is not None else None
        if command is None or data is None:
            return 3
        code, out, err = run(shell, home, env, command.decode("utf-8", "surrogateescape"), data)
        send(b"A", I32.pack(code), U64.pack(len(out)), out, U64.pack(len(err)), err)

try:
    sys.exit(main())
except (BrokenPipeError, ConnectionResetError):
    sys.exit(0)
'''.replace("HELLO", repr(HELLO))


def loop_argv(python: Sequence[str]) -> list[str]:
    """The loop's command: `exec` so the session's shell does not stay between sshd and the loop."""
    return ["exec", *python, "-c", LOOP_SCRIPT]


def request(command: str, stdin: bytes) -> bytes:
    """One request frame: the command line and exactly the bytes its stdin gets."""
    raw = command.encode("utf-8", "surrogateescape")
    return b"Q" + _U64.pack(len(raw)) + raw + _U64.pack(len(stdin)) + stdin


@dataclasses.dataclass(frozen=True)
class Answer:
    exited: int
    stdout: bytes
    stderr: bytes


class Garbled(ValueError):
    """A frame that is not one the loop sends."""


class AnswerReader:
    """Reassembles the loop's frames from the chunks the channel delivers (any split)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.exited = False      # the current command has exited (an `X` frame came)

    def feed(self, chunk: bytes) -> None:
        self._buf += chunk

    def hello(self) -> bool | None:
        """True once HELLO has arrived (and is consumed), None while it may still come; Garbled if not it."""
        if not HELLO.startswith(bytes(self._buf[:len(HELLO)])):
            raise Garbled(f"the loop did not start (it said {bytes(self._buf[:40])!r})")
        if len(self._buf) < len(HELLO):
            return None
        del self._buf[:len(HELLO)]
        return True

    def answer(self) -> Answer | None:
        """The next whole answer (consumed), None while it is incomplete; Garbled on a foreign frame."""
        while self._buf[:1] == b"X":
            del self._buf[:1]
            self.exited = True
        if not self._buf:
            return None
        if self._buf[:1] != b"A":
            raise Garbled(f"unexpected frame {bytes(self._buf[:16])!r}")
        at = 1 + _I32.size
        if len(self._buf) < at + _U64.size:
            return None
        (code,) = _I32.unpack_from(self._buf, 1)
        (n_out,) = _U64.unpack_from(self._buf, at)
        at += _U64.size
        if len(self._buf) < at + n_out + _U64.size:
            return None
        out = bytes(self._buf[at:at + n_out])
        at += n_out
        (n_err,) = _U64.unpack_from(self._buf, at)
        at += _U64.size
        if len(self._buf) < at + n_err:
            return None
        err = bytes(self._buf[at:at + n_err])
        del self._buf[:at + n_err]
        self.exited = False
        return Answer(code, out, err)

    @property
    def pending(self) -> int:
        return len(self._buf)
