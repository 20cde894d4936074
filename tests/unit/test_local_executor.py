"""The local executor on real processes and a real git repo (the runbook's Terminal A)."""
from __future__ import annotations

import os
import time

import pytest

from twilight_ops.builders import git
from twilight_ops.errors import BadInput, CheckFailed, LocalCommandFailed
from twilight_ops.local import LocalExecutor

GIT_ENV = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_SYSTEM": os.devnull,
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}


@pytest.fixture
def repo(tmp_path):
    ex = LocalExecutor(tmp_path, GIT_ENV)
    ex.run(git.git("init", "-q", "-b", "main"))
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "install-skill.sh").write_text("echo skill installed\n")
    ex.run(git.git("add", "-A"))
    ex.run(git.git("commit", "-q", "-m", "first"))
    ex.run(git.git("tag", "v0.2.0"))
    return ex


def test_git_through_the_local_executor(repo):
    head = repo.run(git.rev_parse("HEAD")).stdout.strip()
    assert len(head) == 40 and repo.run(git.rev_parse("v0.2.0")).stdout.strip() == head
    assert repo.run(git.show_file("v0.2.0", "scripts/install-skill.sh")).stdout == "echo skill installed\n"
    assert repo.run(git.status_porcelain()).stdout == ""
    (repo.cwd / "scripts" / "install-skill.sh").write_text("changed\n")
    assert repo.run(git.status_porcelain("scripts")).stdout.strip() == "M scripts/install-skill.sh"
    missing = repo.run(git.rev_parse("v9.9.9"), check=False)
    assert missing.exited != 0 and missing.stdout == ""


def test_argv_is_never_a_shell(tmp_path):
    ex = LocalExecutor(tmp_path)
    r = ex.run(["echo", "a; touch pwned", "$(id)", "`id`"])
    assert r.stdout == "a; touch pwned $(id) `id`\n" and not (tmp_path / "pwned").exists()
    with pytest.raises(TypeError):
        ex.run("echo hi")   # type: ignore[arg-type]


def test_stdin_goes_to_the_process(tmp_path):
    assert LocalExecutor(tmp_path).run(["cat"], stdin="token-on-stdin\n").stdout == "token-on-stdin\n"


def test_a_failure_names_the_command(tmp_path):
    with pytest.raises(LocalCommandFailed) as e:
        LocalExecutor(tmp_path).run(["sh", "-c", "echo nope >&2; exit 3"])
    assert e.value.exited == 3 and "nope" in e.value.line() and e.value.exit_code == 1
    assert LocalExecutor(tmp_path).run(["false"], check=False).exited == 1


def test_a_timeout_kills_the_process_group(tmp_path):
    pidfile = tmp_path / "child.pid"
    with pytest.raises(CheckFailed) as e:
        LocalExecutor(tmp_path).run(["sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait"], timeout=2)
    assert "did not finish within 2 s" in e.value.line()
    child = int(pidfile.read_text())

    def state() -> str:
        try:
            return open(f"/proc/{child}/stat").read().split()[2]
        except FileNotFoundError:
            return "gone"

    # the backgrounded grandchild went with the group: gone (or a zombie for init to reap).
    # SIGKILL lands asynchronously, so poll for it against a generous deadline.
    deadline = time.monotonic() + 30
    while state() not in ("gone", "Z") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state() in ("gone", "Z")


def test_a_missing_program_or_directory_is_one_line(tmp_path):
    with pytest.raises(CheckFailed) as e:
        LocalExecutor(tmp_path).run(["no-such-program-xyz"])
    assert "not installed or not on PATH" in e.value.line()
    (tmp_path / "f").write_text("")
    with pytest.raises(BadInput):
        LocalExecutor(tmp_path / "f").run(["true"])


def test_files_and_secrets(tmp_path):
    ex = LocalExecutor(tmp_path)
    ex.write_file(str(tmp_path / "a" / "tok"), b"  s3cret \n")
    assert oct((tmp_path / "a" / "tok").stat().st_mode & 0o777) == "0o600"
    assert ex.read_secret(str(tmp_path / "a" / "tok")).reveal() == "s3cret"
    ex.append_file(str(tmp_path / "log"), b"one\n")
    ex.append_file(str(tmp_path / "log"), b"two\n")
    assert (tmp_path / "log").read_text() == "one\ntwo\n"
    with pytest.raises(BadInput):
        ex.read_secret(str(tmp_path / "missing"))


def test_run_all_runs_the_commands_at_once(tmp_path):
    """A barrier: each command marks its start, then waits for every other mark. Run one after
    another they could never finish (each would hit its timeout); at once they all do."""
    names = ["a", "b", "c"]
    wait_all = " && ".join(f"while [ ! -e {tmp_path}/{n} ]; do sleep 0.05; done" for n in names)
    argvs = [["sh", "-c", f"touch {tmp_path}/{n} && {wait_all} && echo {n}"] for n in names]
    results = LocalExecutor().run_all(argvs, timeout=60)
    assert [r.stdout.strip() for r in results] == names and all(r.ok for r in results)


def test_run_all_gives_each_command_its_own_result_or_error(tmp_path):
    results = LocalExecutor().run_all([["sh", "-c", "echo out; exit 3"], ["no-such-program-here"],
                                       ["sh", "-c", "sleep 30"]], timeout=1)
    first, missing, slow = results
    assert first.exited == 3 and first.stdout == "out\n" and not first.ok
    assert isinstance(missing, CheckFailed) and "no-such-program-here" in missing.message
    assert isinstance(slow, CheckFailed) and "did not finish within 1 s" in slow.message
