"""The local executor: commands on the operator's machine (the runbook's Terminal A).

Same contract as the SSH executor (executor.Executor): argv only, never a shell;
stdin goes to the process's stdin; a timeout kills the process group; a non-zero
exit with check=True raises LocalCommandFailed.  Used by the phases that act on
the local twilight-drive repo (git tag/push, install-skill.sh) and Hermes, and by
`inv monitor --db` for the local probe.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Mapping, Sequence

from .errors import BadInput, CheckFailed, LocalCommandFailed, TwilightError
from .executor import Result, render, secret_from_bytes
from .secret import Secret
from . import trace


_LIVE: set[subprocess.Popen] = set()      # children running now (run_all kills them on Ctrl-C)
_LIVE_LOCK = threading.Lock()


class LocalExecutor:
    """Runs argv on this machine, optionally in a working directory and with extra env."""

    where = "this machine"

    def __init__(self, cwd: str | os.PathLike | None = None, env: Mapping[str, str] | None = None):
        self.cwd = Path(cwd) if cwd is not None else None
        self.env = dict(env) if env else {}

    def child(self, cwd: str | os.PathLike | None = None, env: Mapping[str, str] | None = None) -> "LocalExecutor":
        """The same executor in another directory, or with more env (never secrets: they go on stdin)."""
        return LocalExecutor(cwd if cwd is not None else self.cwd, {**self.env, **(env or {})})

    def expand(self, path: str) -> str:
        return os.path.expanduser(path)

    def run(self, argv: Sequence[str], *, stdin: str | bytes | None = None, check: bool = True,
            timeout: float | None = None) -> Result:
        command = render(argv)
        data = stdin.encode() if isinstance(stdin, str) else stdin
        trace.record("local", "run", argv=[str(a) for a in argv], stdin=data, cwd=str(self.cwd or ""),
                     env={k: v for k, v in self.env.items() if k in ("HERMES_HOME", "PATH")})
        try:
            proc = subprocess.Popen(
                [str(a) for a in argv], cwd=self.cwd, env={**os.environ, **self.env},
                stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
            )
        except FileNotFoundError:
            raise CheckFailed(f"`{argv[0]}` is not installed or not on PATH (running `{command}`)",
                              "install it, or set the command in the twilight config") from None
        except NotADirectoryError:
            raise BadInput(f"{self.cwd} is not a directory (running `{command}`)", "check the configured path") from None
        except PermissionError as e:
            raise CheckFailed(f"cannot run `{command}`: {e.strerror}", "check the file's permissions") from None
        with _LIVE_LOCK:
            _LIVE.add(proc)
        try:
            out, err = proc.communicate(data, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            proc.communicate()
            raise CheckFailed(f"`{command}` did not finish within {timeout:g} s on {self.where}",
                              "see what it waits for (a prompt, the network), then re-run") from None
        except BaseException:
            _kill_group(proc)
            proc.wait()
            raise
        finally:
            with _LIVE_LOCK:
                _LIVE.discard(proc)
        result = Result(command, proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))
        if check and not result.ok:
            raise LocalCommandFailed(command, result.exited, result.stderr or result.stdout)
        return result

    def run_all(self, argvs: Sequence[Sequence[str]], *, timeout: float | None = None) -> list[Result | TwilightError]:
        """Several commands at once, each as run(check=False): its Result, or the TwilightError run()
        raises (a timeout, a missing program). Waits for all; Ctrl-C kills every one's group."""
        out: list[Result | TwilightError | None] = [None] * len(argvs)

        def one(i: int, argv: Sequence[str]) -> None:
            try:
                out[i] = self.run(argv, check=False, timeout=timeout)
            except TwilightError as e:
                out[i] = e

        threads = [threading.Thread(target=one, args=(i, a), daemon=True) for i, a in enumerate(argvs)]
        started = time.monotonic()
        for th in threads:
            th.start()
        try:
            for th in threads:
                th.join()
            # the trace's run records are starts only: how long the parallel group took (bench: the agent's wait)
            trace.record("local", "ran-all", argvs=[[str(a) for a in argv] for argv in argvs],
                         seconds=round(time.monotonic() - started, 3))
        except BaseException:
            with _LIVE_LOCK:
                live = list(_LIVE)
            for proc in live:
                _kill_group(proc)
            for th in threads:
                th.join(timeout=5)
            raise
        return [r if r is not None else CheckFailed(f"`{render(a)}` ended without a result", "re-run")
                for r, a in zip(out, argvs)]

    def read_file(self, path: str) -> bytes:
        return Path(self.expand(path)).read_bytes()

    def read_first(self, paths: Sequence[str]) -> tuple[int, bytes]:
        for index, path in enumerate(paths):
            try:
                return index, self.read_file(path)
            except FileNotFoundError:
                continue
        raise FileNotFoundError(2, "none of these files exists", paths[0])

    def write_file(self, path: str, data: bytes, mode: int = 0o600, *, parents: bool = False) -> None:
        from .journal import atomic_write

        if parents:
            Path(self.expand(path)).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(Path(self.expand(path)), data, mode)

    def append_file(self, path: str, data: bytes) -> None:
        p = Path(self.expand(path))
        p.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def append_soon(self, path: str, data: bytes) -> None:
        """No round trip to save here: appended at once (the directory made when missing)."""
        self.append_file(path, data)

    def read_secret(self, path: str) -> Secret:
        try:
            raw = self.read_file(path)
        except FileNotFoundError:
            raise BadInput(f"token file {path} does not exist on {self.where}", "create it (mode 600)") from None
        return secret_from_bytes(raw, path, self.where)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
