"""`inv --dry` on every task that changes something: the plan is printed, nothing connects.

Invoke's --dry makes every command "succeed" with empty output, so a task that ran its phase
under it could branch the wrong way; these tasks print their plan instead.  The config's
tvps is a counting loopback listener: the count of connection attempts must stay 0."""
from __future__ import annotations

import pytest

from tests.conftest import inv
from tests.nowhere import CountingListener, write_config

V = "v0.3.0-w4-cutover"


@pytest.fixture
def nowhere(tmp_path):
    lst = CountingListener()
    cfg = write_config(tmp_path, lst.port, local_repo=str(tmp_path / "repo"))
    yield lst, cfg
    lst.close()


@pytest.mark.parametrize("argv,says", [
    (["deploy", "--version", V], "pull"),
    (["tag-push", "--version", V], "git push --quiet origin refs/tags/" + V),
    (["rollback", "--version", V], "TWILIGHT_VERSION=<tag>@sha256"),
    (["hermes-reinstall"], "bash scripts/install-skill.sh"),
    (["lock", "--acquire", "--version", V, "--reason", "maintenance"], "take the deploy lock"),
    (["lock", "--release", "--yes"], "release the deploy lock"),
    (["closeout", "--version", V], "git commit --quiet --only -m 'docs(status): W4 /price cutover complete'"),
    (["closeout"], "git push --quiet origin 'refs/heads/<branch>:refs/heads/<branch>'"),
    (["cutover", "--version", V, "--auto-rollback"], "--auto-rollback: a ROLLBACK runs without asking"),
    (["decide", "--version", V], "read the journal"),
    (["report", V], f"read the journal of {V}"),
])
def test_dry_prints_the_plan_and_connects_nowhere(nowhere, argv, says):
    lst, cfg = nowhere
    r = inv("--dry", *argv, cfg=cfg)
    assert r.returncode == 0, r.stdout + r.stderr
    assert says in r.stdout and "Traceback" not in r.stderr
    assert lst.attempts == 0
