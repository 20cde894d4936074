"""The phase contract (docs/architecture.md): one result type and reducer, facts as
(command, parser) pairs, the health rule, step resume in the journal, and the rule that
no production module imports the twin."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from twilight_ops import facts, health
from twilight_ops.builders.layout import layout
from twilight_ops.config import DEFAULTS, load_settings
from twilight_ops.executor import render
from twilight_ops.errors import CheckFailed, Unreachable
from twilight_ops.journal import JournalStore, Step, new_journal
from twilight_ops.results import CheckResult, Status, exit_code, failed, passed, skipped, to_json

PKG = Path(__file__).resolve().parents[2] / "twilight_ops"
CAPTURED = Path(__file__).resolve().parents[1] / "data" / "captured"
LAY = layout(load_settings(dict(DEFAULTS)), "/home/ops")


# ---------------------------------------------------------------- results

@pytest.mark.parametrize("statuses,code", [
    ([], 0),
    ([Status.PASS, Status.SKIP], 0),
    ([Status.PASS, Status.FAIL], 1),
    ([Status.UNREACHABLE, Status.PASS], 3),
    ([Status.UNREACHABLE, Status.FAIL], 1),      # a failed check outranks an unanswered one
])
def test_the_one_reducer(statuses, code):
    assert exit_code([CheckResult(f"c{i}", s) for i, s in enumerate(statuses)]) == code


def test_result_json_shape():
    rows = to_json([passed("a", "fine", n=1), failed("b", "broken", "do X"), skipped("c", "not OPEN")])
    assert rows == [
        {"id": "a", "status": "PASS", "reason": "fine", "evidence": {"n": 1}, "next_step": ""},
        {"id": "b", "status": "FAIL", "reason": "broken", "evidence": {}, "next_step": "do X"},
        {"id": "c", "status": "SKIP", "reason": "not OPEN", "evidence": {}, "next_step": ""},
    ]
    json.dumps(rows)


# ---------------------------------------------------------------- facts and health

def test_compose_ps_fact_is_its_builder_and_parser():
    assert render(facts.COMPOSE_PS.command(LAY)) == (
        "docker compose -f /home/ops/twilight/source/deploy/compose.yml ps --all --format json")
    (svc,) = facts.COMPOSE_PS.parse((CAPTURED / "compose-ps-v2.40.3.ndjson").read_text())
    assert (svc.service, svc.state, svc.health) == ("backend", "running", "healthy")


def test_container_and_digest_facts_parse_captured_output():
    details = facts.CONTAINERS.parse((CAPTURED / "docker-inspect-backend.json").read_text())
    assert all(d.restart_count == 0 for d in details.values())
    assert render(facts.CONTAINERS.command(["abc"])) == "docker inspect --type container abc"
    digests = facts.REPO_DIGESTS.parse((CAPTURED / "docker-image-inspect-v0.2.0.json").read_text())
    assert all(d.split("@")[1].startswith("sha256:") for ds in digests.values() for d in ds)


@pytest.mark.parametrize("state,health_,ok", [
    ("running", "healthy", True),
    ("running", "", False),          # no healthcheck proves nothing
    ("running", "-", False),
    ("running", "starting", False),
    ("running", "unhealthy", False),
    ("restarting", "healthy", False),
    ("exited", "", False),
])
def test_an_empty_health_is_never_healthy(state, health_, ok):
    assert health.is_healthy(state, health_) is ok


# ---------------------------------------------------------------- step resume

def _store(tmp_path):
    return JournalStore(tmp_path, "tvps", LAY, None)


def test_once_runs_a_step_then_skips_it(tmp_path):
    store, j, calls = _store(tmp_path), new_journal("v0.3.0-w4-cutover", "tvps", "ops"), []

    def act(step):
        calls.append(1)
        step.evidence["digest"] = "sha256:" + "a" * 64

    step, how = store.once(j, "pull", act)
    assert how == "ran" and step.outcome == "ok"
    again = store.load("v0.3.0-w4-cutover")
    step2, how2 = store.once(again, "pull", act)
    assert how2 == "skipped" and step2.evidence["digest"].endswith("a" * 64) and calls == [1]


def test_once_checks_a_half_done_step_before_redoing_it(tmp_path):
    store, j = _store(tmp_path), new_journal("v0.3.0-w4-cutover", "tvps", "ops")
    # a run that died inside the step (kill -9) leaves it saved as running, never finished
    j.steps.append(Step(name="snapshot", started_at="2026-12-01T02:00:00+00:00"))
    store.save(j)
    j = store.load("v0.3.0-w4-cutover")
    assert j.last("snapshot").outcome == "running"
    ran = []

    step, how = store.once(j, "snapshot", lambda st: ran.append(1), verify=lambda st: True)
    assert how == "verified" and not ran and step.outcome == "ok" and "interrupted" in step.note

    j2 = new_journal("v0.3.0-w4-cutover-b", "tvps", "ops")
    with pytest.raises(RuntimeError):
        with store.step(j2, "snapshot"):
            raise RuntimeError("disk full")
    step, how = store.once(j2, "snapshot", lambda st: ran.append(1), verify=lambda st: False)
    assert how == "ran" and ran == [1] and step.evidence["resumed_from"]


# ---------------------------------------------------------------- layering

def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    rel = path.relative_to(PKG.parent).with_suffix("")
    pkg_parts = list(rel.parts[:-1])
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg_parts[: len(pkg_parts) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
                out.add(mod)
                out.update(f"{mod}.{a.name}" for a in node.names)
            else:
                out.add(node.module or "")
    return out


def test_no_production_module_imports_the_twin():
    offenders = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG)
        if rel.parts[0] == "twin" or rel in (Path("tasks/twin.py"), Path("tasks/rehearse.py")):   # the twin's own tasks
            continue
        if any(m == "twilight_ops.twin" or m.startswith("twilight_ops.twin.") for m in _imports(path)):
            offenders.append(str(rel))
    assert offenders == []


def test_monitor_and_diagnose_do_not_import_each_other():
    monitor_imports = set().union(*(_imports(p) for p in (PKG / "monitor").glob("*.py")))
    assert not any(m.startswith("twilight_ops.diagnose") for m in monitor_imports)
    assert not any(m.startswith("twilight_ops.phases") for m in monitor_imports)


@pytest.mark.parametrize("error, outcome", [
    (Unreachable("the registry did not answer"), "unreachable"),
    (KeyboardInterrupt(), "interrupted"),
    (CheckFailed("backend not healthy within 60 s"), "failed"),
])
def test_a_step_that_could_not_finish_says_why_and_is_retried(tmp_path, error, outcome):
    store, j = _store(tmp_path), new_journal("v0.3.0-w4-cutover", "tvps", "ops")
    with pytest.raises(type(error)):
        with store.step(j, "deploy#1:pull"):
            raise error
    assert store.load("v0.3.0-w4-cutover").last("deploy#1:pull").outcome == outcome
    step, how = store.once(j, "deploy#1:pull", lambda st: None)
    assert how == "ran" and step.outcome == "ok"
