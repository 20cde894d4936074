"""The one asking helper (twilight_ops/confirm.py) on a real pseudo-terminal and without one: the
plan is shown first, only the version typed back goes on, anything else is exit 2 with one line;
without a terminal a task either refuses (deploy) or goes on as before (tag-push, cutover)."""
from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO

V = "v0.3.0-w4-cutover"
SCRIPT = f"""
import sys
from twilight_ops import confirm
from twilight_ops.errors import BadInput
try:
    how = confirm.version_back(["plan: deploy {V}", "  commit    abc"], "{V}", "--yes" in sys.argv, print,
                               when_not_a_terminal=confirm.GO_ON if "--go-on" in sys.argv else confirm.REFUSE)
except BadInput as e:
    print("error:", e.message, "|", e.hint)
    sys.exit(e.exit_code)
print("confirmed:", how)
"""


def on_a_terminal(answer: str | None, *args: str) -> tuple[int, str]:
    """Run the script on a pty; answer the prompt (None: close the input, Ctrl-D)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, *args], cwd=REPO, stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True)
    os.close(slave)
    out, answered = b"", False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            out += chunk
            if not answered and out.rstrip().endswith(b"to go on:"):
                os.write(master, b"\x04" if answer is None else answer.encode() + b"\n")
                answered = True
    finally:
        os.close(master)
    return proc.wait(timeout=30), out.decode("utf-8", "replace").replace("\r\n", "\n")


def test_the_plan_comes_first_and_the_version_typed_back_goes_on():
    code, out = on_a_terminal(V)
    assert code == 0, out
    assert out.index(f"plan: deploy {V}") < out.index(f"type the version ({V}) to go on: ")
    assert "confirmed: typed the version" in out


@pytest.mark.parametrize("answer,problem", [("yes", f"typed 'yes', not {V}"),
                                            ("v0.3.0-w4-cutovr", f"typed 'v0.3.0-w4-cutovr', not {V}"),
                                            ("", "nothing typed"), (None, "no answer (end of input)")])
def test_anything_but_the_version_is_exit_2_and_one_line(answer, problem):
    code, out = on_a_terminal(answer)
    assert code == 2, out
    assert f"error: not confirmed: {problem}; nothing changed | re-run and type {V} exactly, or fix --version" in out
    assert "confirmed:" not in out.replace("not confirmed", "") and "Traceback" not in out


def test_yes_shows_the_plan_and_asks_nothing():
    code, out = on_a_terminal("never asked", "--yes")
    assert code == 0 and f"plan: deploy {V}" in out and "to go on" not in out and "confirmed: --yes" in out, out


def test_without_a_terminal_deploy_refuses_and_the_others_go_on_as_before():
    refused = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode == 2 and f"plan: deploy {V}" in refused.stdout
    assert "without confirmation (no terminal to ask on) | re-run with --yes" in refused.stdout
    went = subprocess.run([sys.executable, "-c", SCRIPT, "--go-on"], cwd=REPO, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)
    assert went.returncode == 0 and "confirmed: no terminal" in went.stdout
