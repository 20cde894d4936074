"""Issue 21 §10: `inv config` as a table of key, value and source (no Python reprs; a warning on an
unset lifespan_pr), twin tasks aimed at the `-f` file's twin, and the rollout's .env note."""
from __future__ import annotations

import json
from pathlib import Path

from invoke import Config, Context

from tests.conftest import inv
from twilight_ops.config import DEFAULTS, config_rows, load_settings, show, unset_warnings
from twilight_ops.tasks.twin import twin_dir


def test_show_prints_values_not_reprs():
    assert show(None) == "" and show((38, 39, 41)) == "38, 39, 41" and show(("T2.7 lifespan injection",)) == \
        "T2.7 lifespan injection" and show(10.0) == "10" and show(0.6) == "0.6" and show(Path("/a/b")) == "/a/b"


def test_each_key_names_the_layer_that_set_it():
    settings = load_settings(dict(DEFAULTS, host="tvps-2", budgets={**DEFAULTS["budgets"], "cutover": "90"}))
    layers = [("/x/ops.yaml (-f)", {"host": "tvps-2", "budgets": {"cutover": "90"}}),
              ("env INVOKE_TWILIGHT_*", {"host": "ignored: -f is stronger"}), ("/repo/invoke.yaml", {"service": "backend"})]
    rows = {k: (v, src) for k, v, src in config_rows(settings, layers)}
    assert rows["host"] == ("tvps-2", "/x/ops.yaml (-f)")
    assert rows["budgets.cutover"] == ("90", "/x/ops.yaml (-f)")
    assert rows["service"] == ("backend", "/repo/invoke.yaml")
    assert rows["release"] == ("v0.3.0-w4-cutover", "default")
    assert rows["lifespan_pr"] == ("", "default")
    assert not any(v.startswith("(") or v == "None" for v, _ in rows.values())


def test_an_unset_lifespan_pr_is_warned_about():
    assert unset_warnings(load_settings(dict(DEFAULTS)))[0].startswith("lifespan_pr is not set")
    assert unset_warnings(load_settings(dict(DEFAULTS, lifespan_pr="45"))) == []


def test_inv_config_prints_a_table_and_the_warning():
    r = inv("config", env={"COLUMNS": "120"})
    assert r.returncode == 0, r.stderr
    head = r.stdout.splitlines()[:4]
    assert any("key" in x and "value" in x and "source" in x for x in head), head
    assert "dependency_prs" in r.stdout and "38, 39, 41" in r.stdout and "(38, 39" not in r.stdout
    assert "warning: lifespan_pr is not set" in r.stderr
    assert json.loads(inv("config", "--json").stdout)["lifespan_pr"] is None     # --json keeps the values as they are


def test_twin_tasks_follow_the_f_file_to_its_twin(tmp_path):
    twin = tmp_path / "twin"
    twin.mkdir()
    (twin / "state.json").write_text("{}")
    (twin / "invoke.yaml").write_text("twilight: {}\n")
    c = Context(config=Config(runtime_path=str(twin / "invoke.yaml")))
    assert twin_dir(c, ".twin") == twin.resolve()                         # -f names the twin
    assert twin_dir(c, str(tmp_path / "other")) == (tmp_path / "other").resolve()   # --dir wins
    plain = tmp_path / "ops.yaml"
    plain.write_text("twilight: {}\n")
    c = Context(config=Config(runtime_path=str(plain)))
    assert twin_dir(c, ".twin") == Path(".twin").resolve()               # not a twin's file: ./.twin
