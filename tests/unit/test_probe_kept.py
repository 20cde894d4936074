"""The monitor probe kept on tvps under its content hash (issue 22): a round sends one line.

The shell program (builders/compose.CACHED_RUN) runs here for real with sh, sha256sum, cat and
this Python in place of `docker compose exec … python3 -`; its answer is compared with the
one-shot script's (build_probe_script) on the same DuckDB file."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.unit.test_monitor_probe import NOW, local, make_db, run_script
from twilight_ops.builders import files
from twilight_ops.builders.compose import CACHED_RUN, NOT_CACHED
from twilight_ops.monitor import script


def kept_round(body_path, sha: str, tail: str, command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", CACHED_RUN, "sh", sha, str(body_path), *command], input=tail,
                          capture_output=True, text=True, timeout=120)


def test_the_kept_body_and_one_line_answer_as_the_whole_script_does(tmp_path):
    db = make_db(tmp_path / "w.duckdb")
    params = local(db)
    body = tmp_path / "probe.py"
    body.write_text(script.cached_body())
    r = kept_round(body, script.body_sha256(), script.tail_line(params), [sys.executable, "-"])
    code, out, _ = run_script(params)
    kept, whole = json.loads(r.stdout), json.loads(out)
    assert kept.pop("elapsed_ms") >= 0 and whole.pop("elapsed_ms") >= 0        # its own timing differs, nothing else
    assert (r.returncode, kept) == (code, whole) and code == 0 and whole["total"] == 5, r.stderr
    assert len(script.tail_line(params).encode()) < 1024 < len(script.cached_body().encode())


def test_an_absent_or_changed_body_runs_nothing_and_says_so(tmp_path):
    marker = tmp_path / "ran"
    body = tmp_path / "probe.py"
    for content in (None, script.cached_body() + "print('edited')\n", script.cached_body()[:100]):
        if content is not None:
            body.write_text(content)
        r = kept_round(body, script.body_sha256(), "", ["touch", str(marker)])
        assert r.returncode == NOT_CACHED and "probe body not on tvps" in r.stderr
        assert not marker.exists()


def test_older_bodies_are_removed_and_nothing_else(tmp_path):
    for name in ("probe-0000.py", "probe-1111.py", "journal-v0.2.0.jsonl", "audit.log"):
        (tmp_path / name).write_text("x")
    subprocess.run(files.remove_other_probes(str(tmp_path), "probe-1111.py"), check=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit.log", "journal-v0.2.0.jsonl", "probe-1111.py"]
