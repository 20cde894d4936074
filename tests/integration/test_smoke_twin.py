"""Issue 3 live: `inv smoke` through the staging twin (real sshd, dockerd, registry, backend).

Every smoke here is the real CLI (`inv -f <twin invoke.yaml> smoke ...`): the token
is read over SSH by SSHExecutor, /price is called over HTTP, the verdict is journalled
locally and mirrored on the twin.  Faults are switched on the twin's backend through
the same executor (`twin.control`), and switched off after each test.

A W4-contract `schema_violation` cannot be produced live: every fault of the stand-in
backend either keeps a schema-valid W4 body or is reported under a more specific code
(close_raw_missing, legacy_envelope, mixed_envelope, http_5xx).  The legacy contract's
schema_violation is live (`legacy_body` + `close_raw_null` → `value: null`); the W4 ones
are covered from saved bodies in test_smoke_files.py.
"""
from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import inv
from tests import journals
from twilight_ops.builders.layout import layout
from twilight_ops.remote import SSHExecutor
from twilight_ops.twin import ci_release, control

pytestmark = pytest.mark.twin

W4 = "v0.3.0-w4-cutover"
PREVIOUS = "v0.2.0"
VERDICT_KEYS = {"verdict", "envelope", "status", "red_flags", "warnings"}

# Every smoke run of this module and every token it used, for the final scan.
RUNS: list[subprocess.CompletedProcess] = []
WRONG_TOKENS: list[str] = []


# ---------------------------------------------------------------- helpers


def smoke(twin, *args: str, cfg: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    r = inv("smoke", *args, cfg=cfg or twin.invoke_yaml, env=env)
    RUNS.append(r)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def verdict_of(r: subprocess.CompletedProcess) -> dict:
    """--json output: exactly one object with exactly the verdict keys, nothing around it."""
    obj, end = json.JSONDecoder().raw_decode(r.stdout.lstrip())
    assert r.stdout.lstrip()[end:].strip() == "", f"more than one JSON value on stdout: {r.stdout!r}"
    assert isinstance(obj, dict) and set(obj) == VERDICT_KEYS, obj
    return obj


def codes(v: dict) -> list[str]:
    return [f["code"] for f in v["red_flags"]]


def local_journal(twin, settings, version: str) -> dict:
    return journals.local(settings, version)


def mirror_journal(twin, version: str) -> dict:
    return journals.mirror(twin, version)


def last_step(journal: dict, name: str) -> dict:
    steps = [s for s in journal["steps"] if s["name"] == name]
    assert steps, f"no {name} step in the {journal['version']} journal"
    return steps[-1]


def journal_files(twin, settings) -> list[Path]:
    local = settings.state_dir / "journals"
    found = sorted(local.rglob("*.json*")) if local.exists() else []
    return found + sorted((twin.remote_root / "cutover").glob("journal-*.json*"))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepted(twin) -> int:
    return (twin.ssh_dir / "sshd.log").read_text().count("Accepted publickey")


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def w4_running(twin, twin_settings):
    """v0.3.0-w4-cutover running, no faults; afterwards v0.2.0 again, no faults, and the
    journals (local and mirror) exactly as they were before this module ran."""
    before = {p: p.read_bytes() for p in journal_files(twin, twin_settings)}
    ci_release.ensure_published(twin, W4)  # W4 reaches the registry only through the twin's CI
    with SSHExecutor(twin_settings) as ex:
        control.clear_faults(ex, twin_settings)
        control.run_version(ex, twin_settings, W4)
    yield twin
    with SSHExecutor(twin_settings) as ex:
        control.clear_faults(ex, twin_settings)
        control.run_version(ex, twin_settings, PREVIOUS)
        mirror_dir = twin.remote_root / "cutover"
        for path in journal_files(twin, twin_settings):
            if path in before:
                continue
            if path.parent == mirror_dir:
                ex.run(["rm", "-f", "--", str(path)])
            else:
                path.unlink()
        for path, data in before.items():
            if path.parent == mirror_dir:
                ex.write_file(str(path), data, mode=0o600)
            else:
                path.write_bytes(data)


@pytest.fixture
def fault(w4_running, twin_settings):
    """fault("http_500", ...) switches backend faults on until the end of the test."""
    with SSHExecutor(twin_settings) as ex:
        yield lambda *names: control.set_faults(ex, twin_settings, list(names))
        control.clear_faults(ex, twin_settings)


@pytest.fixture
def previous_running(w4_running, twin_settings):
    """v0.2.0 running for one test (the pull didn't take / after a rollback), then W4 again."""
    with SSHExecutor(twin_settings) as ex:
        control.run_version(ex, twin_settings, PREVIOUS)
    yield w4_running
    with SSHExecutor(twin_settings) as ex:
        control.clear_faults(ex, twin_settings)
        control.run_version(ex, twin_settings, W4)


# ---------------------------------------------------------------- bad input: refused before any connection


@pytest.mark.parametrize("args, says", [
    (["--expect", "foo"], "--expect 'foo' is not w4 or legacy"),
    (["--code", "x;id"], "--code 'x;id' is not a ts_code"),
    (["--version", "$(id)"], "--version '$(id)' is not a release tag"),
    (["--status", "abc"], "--status 'abc' is not a number"),
])
def test_bad_input_is_exit_2_before_any_connection(twin, args, says):
    before = accepted(twin)
    r = smoke(twin, *args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.count("\n") == 1 and says in r.stderr, r.stderr
    assert r.stdout == ""
    assert accepted(twin) == before, "an ssh connection was opened"


# ---------------------------------------------------------------- green


def test_green_w4_json_is_exactly_one_verdict_object(w4_running, twin_settings):
    r = smoke(w4_running, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stderr.startswith("target: tvps = ") and r.stderr.count("\n") == 1   # only the target line
    assert verdict_of(r) == {"verdict": "green", "envelope": "w4", "status": 200, "red_flags": [], "warnings": []}
    step = last_step(local_journal(w4_running, twin_settings, W4), "smoke-w4")   # journalled under the running tag
    assert step["outcome"] == "ok" and step["note"] == "continue"
    assert step["evidence"]["verdict"] == "green" and step["evidence"]["code"] == "600519.SH"


def test_green_w4_human_output_shows_fields_and_next_step(w4_running):
    r = smoke(w4_running, "--code", "000001.SZ")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "GREEN · envelope w4 (expected w4) · HTTP 200" in r.stdout
    assert "000001.SZ" in r.stdout and "close_raw" in r.stdout and "kyuan" in r.stdout
    assert "NEXT STEP: CONTINUE — continue to T+00:25: reinstall the Hermes profile" in r.stdout


# ---------------------------------------------------------------- each red flag, live


@pytest.mark.parametrize("faults, code, envelope, pointer, meaning, step", [
    (["close_raw_null"], "close_raw_missing", "w4", "/close_raw", "Composer didn't return a Quote", "ROLLBACK"),
    (["legacy_body"], "legacy_envelope", "legacy", "/value", "the pull didn't take", "ROLLBACK"),
    (["mixed_envelope"], "mixed_envelope", "mixed", "/value", "neither contract", "ROLLBACK"),
    (["qfq_without_raw"], "close_raw_missing", "w4", "/close_raw", "(runbook §4 row 1)", "INVESTIGATE"),
])
def test_red_flag_from_a_200_body(w4_running, fault, twin_settings, faults, code, envelope, pointer, meaning, step):
    fault(*faults)
    r = smoke(w4_running, "--json")
    assert r.returncode == 1, r.stdout + r.stderr
    v = verdict_of(r)
    assert (v["verdict"], v["envelope"], v["status"]) == ("red", envelope, 200)
    assert codes(v) == [code]
    assert v["red_flags"][0]["pointer"] == pointer and meaning in v["red_flags"][0]["message"]

    r = smoke(w4_running)
    assert r.returncode == 1
    assert f"RED · envelope {envelope} (expected w4)" in r.stdout and code in r.stdout
    assert f"NEXT STEP: {step} —" in r.stdout
    journal_step = last_step(local_journal(w4_running, twin_settings, W4), "smoke-w4")
    assert journal_step["outcome"] == "red" and journal_step["note"] == step.lower()
    assert [f["code"] for f in journal_step["evidence"]["red_flags"]] == [code]


def test_http_500_shows_the_backend_log_tail_and_journals_it(w4_running, fault, twin_settings):
    fault("http_500")
    r = smoke(w4_running)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "http_5xx" in r.stdout and "HTTP 500" in r.stdout
    assert "NEXT STEP: ROLLBACK —" in r.stdout
    shown = r.stdout[r.stdout.index("backend logs (last"):]
    assert "backend-1  |" in shown and "HTTP 500 GET /price code=600519.SH" in shown

    journal = local_journal(w4_running, twin_settings, W4)
    step = last_step(journal, "smoke-w4")
    assert step["outcome"] == "red" and step["note"] == "rollback"
    assert step["evidence"]["status"] == 500 and codes(step["evidence"]) == ["http_5xx"]
    tail = step["evidence"]["backend_logs_tail200"]
    assert "backend-1  |" in tail and "HTTP 500 GET /price code=600519.SH" in tail and "error=InternalServerError" in tail
    assert mirror_journal(w4_running, W4) == journal   # the tail is in the mirror on the twin too

    v = verdict_of(smoke(w4_running, "--json"))   # --json: the verdict alone, the logs only in the journal
    assert (v["status"], codes(v)) == (500, ["http_5xx"])


def test_http_500_canonical_unit_violation_is_fix_forward(w4_running, fault, twin_settings):
    fault("canonical_unit_violation")
    r = smoke(w4_running)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "NEXT STEP: FIX-FORWARD — do NOT roll back" in r.stdout
    assert "ERROR CanonicalUnitViolation" in r.stdout   # the backend's own log line, in the tail shown
    assert last_step(local_journal(w4_running, twin_settings, W4), "smoke-w4")["note"] == "fix-forward"

    v = verdict_of(smoke(w4_running, "--json"))
    assert (v["status"], codes(v)) == (500, ["http_5xx"])
    assert "HTTP 500 with CanonicalUnitViolation" in v["red_flags"][0]["message"]
    assert "fix forward" in v["red_flags"][0]["message"]


def test_http_502_chain_exhausted_is_investigate(w4_running, fault):
    fault("chain_exhausted")
    r = smoke(w4_running)
    assert r.returncode == 1
    assert "NEXT STEP: INVESTIGATE —" in r.stdout and "rollback won't help" in r.stdout
    assert "error=ChainExhausted" in r.stdout
    v = verdict_of(smoke(w4_running, "--json"))
    assert (v["status"], codes(v)) == (502, ["http_5xx"])


def test_wrong_token_is_unauthorized_not_a_rollback(w4_running, twin_settings):
    import secrets

    wrong = secrets.token_urlsafe(24)
    WRONG_TOKENS.append(wrong)
    with SSHExecutor(twin_settings) as ex:
        path = ex.run(["mktemp"]).stdout.strip()   # a temp path on the twin
        try:
            ex.write_file(path, (wrong + "\n").encode(), mode=0o600)
            env = {"INVOKE_TWILIGHT_TOKEN_FILE": path}
            r = smoke(w4_running, "--json", env=env)
            assert r.returncode == 1, r.stdout + r.stderr
            v = verdict_of(r)
            assert (v["verdict"], v["status"], codes(v)) == ("red", 401, ["unauthorized"])
            assert "not a rollback trigger" in v["red_flags"][0]["message"]
            r = smoke(w4_running, env=env)
            assert r.returncode == 1 and "NEXT STEP: INVESTIGATE —" in r.stdout
        finally:
            ex.run(["rm", "-f", "--", path])


def test_closed_api_port_is_transport_error_exit_3(w4_running, twin_settings, tmp_path):
    # INVOKE_TWILIGHT_API_BASE would not do: Invoke ranks the -f file above env vars.
    cfg = yaml.safe_load(w4_running.invoke_yaml.read_text())
    cfg["twilight"]["api_base"] = f"http://127.0.0.1:{closed_port()}"
    path = tmp_path / "invoke.yaml"
    path.write_text(yaml.safe_dump(cfg))
    r = smoke(w4_running, "--json", cfg=path)
    assert r.returncode == 3, r.stdout + r.stderr
    v = verdict_of(r)
    assert (v["verdict"], v["envelope"], v["status"], codes(v)) == ("red", "unknown", None, ["transport_error"])
    assert "ConnectError" in v["red_flags"][0]["message"]
    r = smoke(w4_running, cfg=path)
    assert r.returncode == 3 and "no response" in r.stdout and "NEXT STEP: INVESTIGATE —" in r.stdout
    step = last_step(local_journal(w4_running, twin_settings, W4), "smoke-w4")
    assert codes(step["evidence"]) == ["transport_error"] and step["evidence"]["status"] is None


def test_schema_violation_live_on_the_legacy_contract(w4_running, fault):
    # The only live schema_violation: a legacy body whose value is null, judged after a rollback.
    fault("legacy_body", "close_raw_null")
    r = smoke(w4_running, "--expect", "legacy", "--json")
    assert r.returncode == 1, r.stdout + r.stderr
    v = verdict_of(r)
    assert (v["envelope"], codes(v)) == ("legacy", ["schema_violation"])
    assert v["red_flags"][0]["pointer"] == "/value"
    assert "None is not of type 'number'" in v["red_flags"][0]["message"]
    assert "$defs/legacy" in v["red_flags"][0]["message"]


# ---------------------------------------------------------------- --expect legacy (runbook §2.4)


def test_expect_legacy_while_w4_still_runs_is_red_w4_envelope(w4_running, twin_settings):
    r = smoke(w4_running, "--expect", "legacy", "--json")
    assert r.returncode == 1, r.stdout + r.stderr
    v = verdict_of(r)
    assert (v["envelope"], codes(v), v["red_flags"][0]["pointer"]) == ("w4", ["w4_envelope"], "")
    r = smoke(w4_running, "--expect", "legacy")
    assert r.returncode == 1
    assert "NEXT STEP: ROLLBACK — re-run the server revert (runbook §2.1)" in r.stdout
    assert last_step(local_journal(w4_running, twin_settings, W4), "smoke-legacy")["outcome"] == "red"


def test_previous_release_running(previous_running, twin_settings):
    # expecting W4 while v0.2.0 serves: the pull didn't take
    r = smoke(previous_running, "--json")
    assert r.returncode == 1, r.stdout + r.stderr
    v = verdict_of(r)
    assert (v["envelope"], codes(v)) == ("legacy", ["legacy_envelope"])
    assert "the pull didn't take" in v["red_flags"][0]["message"]
    r = smoke(previous_running)
    assert r.returncode == 1 and "NEXT STEP: ROLLBACK —" in r.stdout

    # after a rollback (runbook §2.4): the old envelope is green
    r = smoke(previous_running, "--expect", "legacy", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert verdict_of(r) == {"verdict": "green", "envelope": "legacy", "status": 200, "red_flags": [], "warnings": []}
    r = smoke(previous_running, "--expect", "legacy")
    assert r.returncode == 0
    assert "NEXT STEP: CONTINUE — rollback verified" in r.stdout
    # a bare smoke journals under this cutover's release (issue 25: twilight.release, the rolled-back
    # cutover's journal), no longer under the running v0.2.0
    step = last_step(local_journal(previous_running, twin_settings, W4), "smoke-legacy")
    assert step["outcome"] == "ok"


# ---------------------------------------------------------------- the token never leaks (keep last)


def test_token_never_in_output_or_journals(w4_running, fault, twin_settings):
    # runs of its own, so the scan means something when this test runs alone
    smoke(w4_running)
    smoke(w4_running, "--json", "--version", "v0.3.0-smoke-scan")
    fault("http_500")
    smoke(w4_running)
    token = (w4_running.remote_root / ".tokens" / "operator-test").read_text().strip()
    assert len(token) >= 16
    with SSHExecutor(twin_settings) as ex:   # the tool reads the same file over SSH
        assert ex.read_secret(layout(twin_settings, ex.home).token_file).reveal() == token

    secrets_ = [token, *WRONG_TOKENS]
    assert RUNS
    for r in RUNS:
        for s in secrets_:
            assert s not in r.stdout and s not in r.stderr, f"token in the output of {r.args}"
    files = journal_files(w4_running, twin_settings)
    local = [p for p in files if p.is_relative_to(twin_settings.state_dir)]
    mirror = [p for p in files if p.parent == w4_running.remote_root / "cutover"]
    assert any(p.name == f"{W4}.jsonl" for p in local) and any(p.name == f"journal-{W4}.jsonl" for p in mirror)
    assert any("v0.3.0-smoke-scan" in p.name for p in local) and any("v0.3.0-smoke-scan" in p.name for p in mirror)
    for p in files:
        text = p.read_text()
        for s in secrets_:
            assert s not in text, f"token in {p}"
