"""Issue 25 through the twin: the four commands exactly as the operator types them —
`inv preflight`, `inv deploy --version v0.3.0-w4-cutover`, `inv rollback`, `inv monitor --hours 1` —
on a terminal (deploy and rollback ask, and are answered `yes` as an operator would), on a fresh
twin and after a deploy: each reaches its phase (never exit 2).  A `--version` other than the
cutover in progress is refused with exit 2 before anything connects, and nothing is touched."""
from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, error_lines, inv
from tests import journals
from tests.cutover_fixtures import reset_after_module  # noqa: F401  fixture
from twilight_ops import health
from twilight_ops.builders.layout import layout
from twilight_ops.remote import SSHExecutor
from twilight_ops.twin import ci_release, preflight_faults, rehearse
from twilight_ops.twin.state import load_or_new

pytestmark = pytest.mark.twin

W4, PREVIOUS, OTHER = "v0.3.0-w4-cutover", "v0.2.0", "v0.3.1"
PROMPT = b"to go on: "


def typed(cfg: Path, *args: str, answer: str = "yes", timeout: float = 600) -> tuple[int, str]:
    """`inv -f CFG ARGS…` on a pseudo-terminal, as typed at a shell; a confirmation prompt is
    answered with `answer`.  (exit code, everything it printed, stdout and stderr together)."""
    argv = [str(Path(sys.executable).with_name("inv")), "-f", str(cfg), *args]
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 60, 250, 0, 0))   # no wrapped lines
    proc = subprocess.Popen(argv, cwd=REPO, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                            env={**os.environ, "NO_COLOR": "1"})
    os.close(slave)
    out, answered = b"", False
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                raise AssertionError(f"{' '.join(args)} did not finish in {timeout:.0f} s: {out[-2000:]!r}")
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:          # EIO: the child side of the terminal is closed
                chunk = b""
            if not chunk:
                break
            out += chunk
            if not answered and out.rstrip().endswith(PROMPT.rstrip()):
                os.write(master, answer.encode() + b"\n")
                answered = True
    finally:
        os.close(master)
    return proc.wait(timeout=60), out.decode("utf-8", errors="replace").replace("\r\n", "\n")


def running(settings):
    with SSHExecutor(settings) as ex:
        return health.service_of(health.read_services(ex, layout(settings, ex.home), settings.image_repo),
                                 settings.service)


def journal_path(settings, version: str = W4) -> Path:
    return journals.local_path(settings, version)


@pytest.fixture
def fresh(reset_after_module, twin_settings):
    """A reset twin (v0.2.0 running, no journal, no fault) with W4 published by the twin's CI; one
    reset per test, and one after the module (tests/cutover_fixtures.py)."""
    twin = reset_after_module
    rehearse.reset(twin, twin_settings)
    ci_release.ensure_published(twin, W4)
    return twin


def test_the_four_commands_as_typed_on_a_fresh_twin(fresh, twin_settings):
    cfg = fresh.invoke_yaml
    before = running(twin_settings).repo_digest

    code, out = typed(cfg, "rollback")                       # nothing cut over: nothing to roll back
    assert code == 1, out
    assert f"nothing to roll back: tvps runs {PREVIOUS}" in out and "Traceback" not in out
    assert running(twin_settings).repo_digest == before

    code, out = typed(cfg, "monitor", "--hours", "1")        # §3 on the running release
    assert code in (0, 1), out
    assert "Traceback" not in out

    code, out = typed(cfg, "deploy", "--version", W4)        # refuses before it asks: no T+00:00 facts
    assert code == 1, out
    assert f"release: {W4} (--version)" in out and "has no T+00:00 facts" in out
    assert "to go on" not in out                             # no question for a refusal (issue 21 item 4)
    assert running(twin_settings).repo_digest == before

    code, out = typed(cfg, "preflight")                      # §0 and T+00:00 for this cutover
    assert code == 0, out
    assert f"release: {W4} (config default)" in out
    facts = journals.read(journal_path(twin_settings))["facts"]
    assert facts["pre_digest"].endswith(before.rsplit("@", 1)[-1]) and facts["snapshot"]["sha256"]


def test_the_four_commands_as_typed_after_a_deploy(fresh, twin_settings):
    cfg = fresh.invoke_yaml
    code, out = typed(cfg, "preflight")
    assert code == 0, out
    pre = journals.read(journal_path(twin_settings))["facts"]["pre_digest"]

    code, out = typed(cfg, "deploy", "--version", W4, answer=W4)   # the plan, then the version typed back
    assert code == 0, out
    assert f"plan: deploy {W4}" in out and f"type the version ({W4}) to go on:" in out
    assert out.index("target: ") < out.index(f"plan: deploy {W4}")     # the target line first, then the question
    assert running(twin_settings).version == W4

    code, out = typed(cfg, "preflight")                      # again, after the deploy: the same release, its phase runs
    assert code in (0, 1), out
    assert f"release: {W4} (config default)" in out and "Traceback" not in out
    assert journals.read(journal_path(twin_settings))["facts"]["pre_digest"] == pre   # T+00:00 never retaken

    code, out = typed(cfg, "monitor", "--hours", "1")
    assert code in (0, 1), out
    assert "Traceback" not in out

    code, out = typed(cfg, "rollback")                       # the running W4 back to the T+00:00 digest; typed yes
    assert code == 0, out
    assert f"tag {W4} stays on origin" in out and f"push origin :refs/tags/{W4} && git -C " in out   # named, not deleted
    assert f"Left behind: tag {W4} stays on origin" in out                                          # in the follow-up text
    now = running(twin_settings)
    assert now.repo_digest == pre and now.health == "healthy"
    assert journals.read(journal_path(twin_settings))["facts"]["rolled_back"]["trigger"] == "operator judgment"
    done = [s for s in journals.read(journal_path(twin_settings))["steps"]
            if s["name"].startswith("rollback#") and ":" not in s["name"]][-1]
    assert done["evidence"]["left_behind"].startswith(f"tag {W4} stays on origin")        # in the journal (the report)


def test_a_version_other_than_the_cutover_in_progress_is_refused(fresh, twin_settings):
    cfg = fresh.invoke_yaml
    preflight_faults.apply(load_or_new(fresh.base), "pr-unmerged")
    r = inv("cutover", cfg=cfg)                              # bare: the config default; NO-GO stops it at preflight
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    assert f"release: {W4} (config default)" in r.stderr
    state = journals.read(journal_path(twin_settings))["facts"]["cutover"]
    assert state["started_at"] and state["outcome"] == "stopped" and not state.get("finished_at")

    kept = journal_path(twin_settings).read_bytes()
    digest = running(twin_settings).repo_digest
    for args in (("preflight", "--version", OTHER), ("deploy", "--version", OTHER, "--yes"),
                 ("smoke", "--version", OTHER), ("agent-smoke", "--version", OTHER), ("decide", "--version", OTHER),
                 ("cutover", "--version", OTHER), ("tag-push", "--version", OTHER)):
        r = inv(*args, cfg=cfg)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        lines = error_lines(r.stderr)
        assert len(lines) == 1 and OTHER in lines[0] and f"cutover in progress ({W4})" in lines[0], (args, r.stderr)
        assert "target:" not in r.stderr, args                       # refused before anything connected
    assert journal_path(twin_settings).read_bytes() == kept
    assert not journal_path(twin_settings, OTHER).exists()
    assert running(twin_settings).repo_digest == digest

    r = inv("preflight", "--version", W4, "--json", cfg=cfg)        # the same release, given: its phase runs
    assert r.returncode == 1 and f"release: {W4} (--version)" in r.stderr, r.stderr
    code, out = typed(cfg, "preflight")                              # bare: the cutover in progress (still NO-GO)
    assert code == 1, out
    assert f"release: {W4} (cutover in progress)" in out
