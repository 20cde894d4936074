"""Issue 8 §1: a mistyped or malformed `-f` file never falls back to tvps; every task
that reaches a host first names the target on stderr.  All through the real `inv` CLI."""
from __future__ import annotations

import json

import pytest

from tests.conftest import inv
from tests.nowhere import CountingListener, write_config
from twilight_ops import runtime_config


@pytest.fixture
def listener():
    lst = CountingListener()
    yield lst
    lst.close()


def one_error_line(r) -> str:
    assert "Traceback" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: "), r.stderr
    return lines[0]


@pytest.mark.parametrize("task", [["status"], ["smoke"], ["monitor"], ["diagnose"], ["lock"], ["config"]])
def test_missing_f_file_exits_2_before_anything(tmp_path, task):
    r = inv(*task, cfg=tmp_path / ".twim" / "invoke.yaml")
    assert r.returncode == 2, (r.stdout, r.stderr)
    line = one_error_line(r)
    assert "does not exist" in line and ".twim/invoke.yaml" in line
    assert r.stdout == ""


def test_missing_file_from_env_var_exits_2(tmp_path):
    r = inv("config", env={"INVOKE_RUNTIME_CONFIG": str(tmp_path / "nope.yaml")})
    assert r.returncode == 2
    assert "INVOKE_RUNTIME_CONFIG" in one_error_line(r)


def test_unreadable_f_file_exits_2(tmp_path):
    d = tmp_path / "dir.yaml"
    d.mkdir()
    r = inv("config", cfg=d)
    assert r.returncode == 2
    assert "is not a file" in one_error_line(r)


@pytest.mark.parametrize("text, says", [
    ("twilight: {host: [\n", "is not valid YAML"),
    ("- host\n- tvps\n", "holds a list"),
    ("twilight:\n  - host\n", "`twilight:` is a list"),
    ("twilight: tvps\n", "`twilight:` is a string"),
])
def test_malformed_f_file_is_one_line_and_exit_2(tmp_path, text, says):
    cfg = tmp_path / "invoke.yaml"
    cfg.write_text(text)
    r = inv("status", cfg=cfg)
    assert r.returncode == 2, r.stderr
    assert says in one_error_line(r)


def test_a_valid_f_file_is_used(tmp_path, listener):
    cfg = write_config(tmp_path, listener.port, operator="ops@test")
    r = inv("config", "--json", cfg=cfg)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["operator"] == "ops@test"


def test_task_flag_f_after_the_task_name_is_not_a_config(tmp_path):
    """`inv smoke -f body.json` is smoke's own --from-file, not Invoke's -f."""
    assert runtime_config.runtime_path(["inv", "smoke", "-f", "body.json"], {}) is None
    assert runtime_config.runtime_path(["inv", "-f", "a.yaml", "smoke"], {}) == ("a.yaml", "-f")
    assert runtime_config.runtime_path(["inv", "--config=b.yml", "status"], {}) == ("b.yml", "-f")
    assert runtime_config.runtime_path(["inv", "status"], {"INVOKE_RUNTIME_CONFIG": "c.yaml"}) == ("c.yaml", "INVOKE_RUNTIME_CONFIG")


@pytest.mark.parametrize("task", [["status", "--json"], ["smoke", "--json"], ["monitor", "--json"],
                                  ["diagnose", "--json"], ["lock"]])
def test_every_connecting_task_names_its_target_on_stderr_first(tmp_path, listener, task):
    cfg = write_config(tmp_path, listener.port)
    r = inv(*task, cfg=cfg)
    assert r.returncode == 3, (r.stdout, r.stderr)     # the listener is not an sshd
    first = r.stderr.splitlines()[0]
    release = " · release: v0.3.0-w4-cutover (config default)" if task[0] == "smoke" else ""   # issue 25
    assert first == (f"target: tvps = nobody@127.0.0.1:{listener.port} · config: defaults + {cfg} (-f)"
                     f" · ssh config: {tmp_path / 'ssh_config'}{release}"), r.stderr
    assert r.stdout == ""                              # --json output stays one object (none here)


def test_offline_tasks_print_no_target(tmp_path, listener):
    cfg = write_config(tmp_path, listener.port)
    body = tmp_path / "body.json"
    body.write_text("{}")
    r = inv("smoke", "--from-file", str(body), cfg=cfg)
    assert "target:" not in r.stderr
    assert listener.attempts == 0


def test_settings_double_check_a_runtime_file_invoke_did_not_load(tmp_path):
    """Without the CLI guard (a Program embedded elsewhere), settings_from_context refuses too."""
    import subprocess
    import sys

    from tests.conftest import REPO

    code = ("from invoke import Program; from twilight_ops.tasks import ns; "
            f"Program(namespace=ns).run(['embedded', '-f', {str(tmp_path / 'nope.yaml')!r}, 'config'])")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "was not loaded" in r.stderr and "Traceback" not in r.stderr
    assert r.stdout == ""
