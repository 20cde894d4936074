"""Issue 25: which release a run is for — --version > the cutover in progress > twilight.release —
as plain values, the in-progress rule over real journal files, the config key, the target line."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from twilight_ops import release
from twilight_ops.config import DEFAULTS, load_settings
from twilight_ops.errors import BadInput
from twilight_ops.journal import new_journal
from twilight_ops.target import Target

W4, OTHER = "v0.3.0-w4-cutover", "v0.3.1"
REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- the rule (pure)

def test_explicit_wins_over_the_config():
    assert release.choose(OTHER, None, W4) == release.Release(OTHER, "--version")


def test_the_cutover_in_progress_wins_over_the_config():
    assert release.choose(None, "v0.3.0-rc2", W4) == release.Release("v0.3.0-rc2", "cutover in progress")


def test_the_config_default_last():
    assert release.choose(None, None, W4) == release.Release(W4, "config default")
    assert release.choose("", None, W4).why == "config default"


def test_a_configured_release_says_so():
    assert release.choose(None, None, "v0.3.2") == release.Release("v0.3.2", "config twilight.release")


def test_explicit_equal_to_the_cutover_in_progress_is_fine():
    assert release.choose(W4, W4, "v0.3.2") == release.Release(W4, "--version")


def test_explicit_other_than_the_cutover_in_progress_is_refused_naming_both():
    with pytest.raises(BadInput) as e:
        release.choose(OTHER, W4, W4)
    line = e.value.line()
    assert OTHER in line and f"cutover in progress ({W4})" in line and "\n" not in line
    assert e.value.exit_code == 2


def test_describe():
    assert release.Release(W4, "config default").describe() == f"release: {W4} (config default)"


# ---------------------------------------------------------------- what counts as in progress

@pytest.mark.parametrize("facts,expected", [
    ({}, False),                                                                   # phases run by hand
    ({"pre_digest": "x@sha256:" + "a" * 64}, False),
    ({"cutover": {"started_at": "2026-12-01T00:00:00+00:00"}}, True),
    ({"cutover": {"started_at": "2026-12-01T00:00:00+00:00", "outcome": "stopped"}}, True),
    ({"cutover": {"started_at": "2026-12-01T00:00:00+00:00", "outcome": "awaiting-confirmation"}}, True),
    ({"cutover": {"started_at": "2026-12-01T00:00:00+00:00", "finished_at": "2026-12-01T01:00:00+00:00"}}, False),
    ({"cutover": {"started_at": "2026-12-01T00:00:00+00:00"}, "rolled_back": {"at": "x"}}, False),   # inv rollback by hand
    ({"cutover": {"started_at": "2026-12-01T00:00:00+00:00"}, "closeout": {"commit": "c"}}, False),  # inv closeout by hand
    ({"cutover": "garbage"}, False),
])
def test_is_in_progress(facts, expected):
    assert release.is_in_progress(facts) is expected


def write(d: Path, version: str, facts: dict, name: str | None = None) -> None:
    j = new_journal(version, "tvps", "ops")
    j.facts.update(facts)
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name or version}.json").write_text(j.to_json())


def test_in_progress_reads_the_local_journal_copies(tmp_path):
    d = tmp_path / "journals" / "tvps"
    assert release.in_progress(d) is None                                          # no directory yet
    write(d, "v0.2.0", {})
    write(d, "v0.3.0-old", {"cutover": {"started_at": "2026-11-01T00:00:00+00:00", "finished_at": "x"}})
    assert release.in_progress(d) is None
    write(d, W4, {"cutover": {"started_at": "2026-12-01T00:00:00+00:00", "outcome": "stopped"}})
    assert release.in_progress(d) == W4
    write(d, "v0.3.0-rc1", {"cutover": {"started_at": "2026-11-30T00:00:00+00:00"}})   # older, abandoned
    assert release.in_progress(d) == W4


def test_in_progress_passes_over_files_that_are_not_journals(tmp_path):
    d = tmp_path / "j"
    d.mkdir()
    (d / "junk.json").write_text("{not json")
    (d / "list.json").write_text("[]")
    write(d, W4, {"cutover": {"started_at": "2026-12-01T00:00:00+00:00"}}, name="v9.9.9")   # name and content disagree
    assert release.in_progress(d) is None


# ---------------------------------------------------------------- the config key

def test_the_config_key_defaults_to_the_runbooks_release():
    assert DEFAULTS["release"] == W4 == release.DEFAULT_RELEASE
    assert load_settings(copy.deepcopy(DEFAULTS)).release == W4
    assert load_settings(dict(copy.deepcopy(DEFAULTS), release="v0.3.2")).release == "v0.3.2"


@pytest.mark.parametrize("value", ["", "latest", "v0.3.0;id", 3, None, "v0.3.0-w4\n"])
def test_a_bad_config_release_is_one_line_naming_the_key(value):
    with pytest.raises(BadInput) as e:
        load_settings(dict(copy.deepcopy(DEFAULTS), release=value))
    line = e.value.line()
    assert line.startswith("config twilight.release ") and "is not a release tag" in line and "\n" not in line


def run_inv(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([str(Path(sys.executable).with_name("inv")), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})


def test_inv_config_shows_the_release():
    r = run_inv("config", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["release"] == W4


def test_a_bad_release_env_var_is_exit_2_before_anything(tmp_path):
    r = run_inv("preflight", env={"INVOKE_TWILIGHT_RELEASE": "latest", "XDG_STATE_HOME": str(tmp_path)})
    assert r.returncode == 2, r.stderr
    assert "config twilight.release 'latest' is not a release tag" in r.stderr and "Traceback" not in r.stderr
    assert "target:" not in r.stderr


# ---------------------------------------------------------------- the target line

def test_the_target_line_names_the_release_and_why():
    s = load_settings(dict(copy.deepcopy(DEFAULTS), ssh_config=""))
    t = Target(s, version=W4, why="config default", announce=None)
    assert t.target_line().endswith(f" · ssh config: none · release: {W4} (config default)")
    assert "release:" not in Target(s, announce=None).target_line()      # status, rollback, monitor: read from tvps
    assert t.connected is False
