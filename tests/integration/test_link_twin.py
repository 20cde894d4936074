"""A frozen SSH link mid-cutover (issue 23 items 5 and 6), through the twin.

The twin's per-connection sshd processes (children of the sshd in ITS pidfile, never another
twin's) are stopped with SIGSTOP while `inv cutover` is inside deploy:
  - the run ends with exit 3 and one line naming the operation, the step in flight and the exact
    resume line (op timeout lowered through INVOKE_TWILIGHT_SSH_OP_TIMEOUT_SECONDS);
  - on a frozen link Ctrl-C ends the resumed run with 130 and the resume line (the op timeout left
    high, so only Ctrl-C can end it); its first journal write removed the temp a dead run left in
    the mirror's directory, and nothing else;
  - after both, --resume finishes the cutover.
Always SIGCONT in a finally; assertions are on exit codes, lines and files, never on durations.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import REPO, inv
from tests import journals
from tests.cutover_fixtures import fresh, reset_after_module, short_cache_ttl  # noqa: F401  fixtures
from twilight_ops.builders.layout import layout
from twilight_ops.remote import SSHExecutor
from twilight_ops.twin import rehearse, sshd

# the resumed cutover runs agent-smoke: with the quote cache TTL at 6 s (as test_cutover_twin), its
# cache check waits seconds, not 2 min, when the Shanghai market is open
pytestmark = [pytest.mark.twin, pytest.mark.usefixtures("short_cache_ttl")]

V = rehearse.V
HANG_GUARD_S = 240      # a generous bound on a run that must end by itself: the bug was a hang


def restore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)     # a background shell's job ignores SIGINT: undo it


def start_cutover(twin, *args: str, op_timeout: str) -> subprocess.Popen:
    argv = [str(Path(sys.executable).with_name("inv")), "-f", str(twin.invoke_yaml), "cutover", "--version", V,
            "--yes", *args]
    env = {**os.environ, "INVOKE_TWILIGHT_SSH_OP_TIMEOUT_SECONDS": op_timeout}
    return subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, env=env, preexec_fn=restore_sigint)


def wait_in_deploy(settings, proc: subprocess.Popen) -> str:
    """The deploy step the run is inside (the local journal shows it running)."""
    path = journals.local_path(settings, V)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        running = rehearse.running_step(rehearse.read_journal(path), "deploy#")
        if running:
            return running
        time.sleep(0.02)
    out, err = proc.communicate(timeout=60) if proc.poll() is None else proc.communicate()
    raise AssertionError(f"the cutover never reached deploy (exit {proc.returncode}):\n{err[-3000:]}")


def session_sshds(twin) -> list[int]:
    """The per-connection sshd processes of this twin's sshd (its pidfile under the twin dir)."""
    return sshd.session_pids(twin.ssh_dir)


@contextlib.contextmanager
def frozen(twin) -> Iterator[list[int]]:
    """SIGSTOP the twin's open SSH sessions; SIGCONT them whatever happens."""
    stopped: list[int] = []
    try:
        for pid in session_sshds(twin):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
        assert stopped, "no SSH session of the run to freeze"
        yield stopped
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def finish(proc: subprocess.Popen, timeout: float = HANG_GUARD_S) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"the run hung on the frozen link; its stderr:\n{err[-3000:]}") from None


def test_a_frozen_link_in_deploy_ends_the_run_with_the_step_and_the_resume_line(fresh, twin_settings):
    resume = f"inv -f {fresh.invoke_yaml} cutover --version {V} --resume"

    # 1. frozen inside deploy: exit 3, the operation, the step in flight, the resume line
    proc = start_cutover(fresh, op_timeout="3")
    try:
        step = wait_in_deploy(twin_settings, proc)
        with frozen(fresh):
            out, err = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert proc.returncode == 3, err[-3000:]
    assert "Traceback" not in err
    assert len(lines) == 1, err[-3000:]
    assert f"{twin_settings.host} stopped answering during " in lines[0]
    assert f"step in flight: {step.split(':')[0]}:" in lines[0]
    # the resume line repeats the run's own env settings, as every next-step line does
    assert lines[0].endswith(f"then resume with: INVOKE_TWILIGHT_SSH_OP_TIMEOUT_SECONDS=3 {resume}")

    # a temp a dead run left in the mirror's directory (old), and files the sweep must keep
    with SSHExecutor(twin_settings) as ex:
        d = layout(twin_settings, ex.home).cutover_dir
        stale = f"{d}/.journal-{V}.json.0badc0de.tmp"
        keep = [f"{d}/.journal-{V}.json.notes.tmp", f"{d}/journal-{V}.json.0badc0de.tmp",
                f"{d}/.journal-{V}.json.1234abcd.tmp"]       # the last one is stamped after the run began
        ex.run(["touch", "-d", "1 hour ago", "--", stale, *keep[:2]])
        ex.run(["touch", "-d", "1 hour", "--", keep[2]])

    # 2. Ctrl-C on a frozen link in the resumed run: 130 and the resume line (the op timeout is high)
    proc = start_cutover(fresh, "--resume", op_timeout="600")
    try:
        step = wait_in_deploy(twin_settings, proc)
        with frozen(fresh):
            time.sleep(1)        # the freeze being simulated: the run is now waiting on tvps
            proc.send_signal(signal.SIGINT)
            out, err = finish(proc, timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err
    assert f"resume with: INVOKE_TWILIGHT_SSH_OP_TIMEOUT_SECONDS=600 {resume}" in err.splitlines()[-1]
    assert err.splitlines()[-1].startswith("interrupted during deploy#")

    with SSHExecutor(twin_settings) as ex:
        left = set(ex.run(["ls", "-A1", "--", d]).stdout.split())
    assert stale.rsplit("/", 1)[1] not in left
    assert {k.rsplit("/", 1)[1] for k in keep} <= left

    # 3. nothing was lost: --resume finishes the cutover
    r = inv("cutover", "--version", V, "--resume", "--yes", "--json", cfg=fresh.invoke_yaml, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    assert json.loads(r.stdout)["outcome"] == "closed-out"
