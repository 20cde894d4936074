"""The operator-side Hermes stand-in (twilight_ops/twin/hermes/hermes.py), installed as twin.up
installs it and run as a real subprocess against the stand-in backend served on a loopback port."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import stat
import subprocess
import sys
import threading
import time
from datetime import date, datetime
from pathlib import Path

import httpx
import pytest

from tests.unit.test_twin_backend import TOKEN, app, at
from twilight_ops.errors import BadInput
from twilight_ops.secret import Secret
from twilight_ops.twin.operator_side import HERMES_FAULTS, SOURCE, install_hermes, set_hermes_fault
from twilight_ops.twin.state import TwinState, hermes_config

PROMPTS = {
    "latest": "What is the current price of 贵州茅台 (600519)?",
    "history": "What was the close of 600519 on 2024-01-02?",
    "unknown": "What is the price of 999999.SH?",
}
SKILL = """---
name: {name}
description: {description}
version: 0.3.0
---
# {name}
Call /price and answer with close_raw and close_qfq.
"""


def _load_script():
    spec = importlib.util.spec_from_file_location("hermes_standin", SOURCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hermes_script = _load_script()


@pytest.fixture
def backend(tmp_path):
    """The stand-in backend's App behind its real HTTP server on 127.0.0.1 (no warehouse)."""
    data = tmp_path / "data"
    data.mkdir()
    config = app.Config(token=TOKEN, version="v0.3.0-w4-cutover", warehouse="unused", cache_ttl=60, data_dir=data)
    server = app.Server(("127.0.0.1", 0), app.Handler)
    server.app = app.App(config, audit=None)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    offset = at(date(2026, 12, 2), 10, 0).timestamp() - time.time()     # the backend's clock reads 10:00, OPEN
    (data / "clock.json").write_text(json.dumps({"offset_seconds": offset}))
    yield f"http://127.0.0.1:{server.server_address[1]}", data
    server.shutdown()
    server.server_close()


@pytest.fixture
def twin_state(tmp_path, backend):
    st = TwinState(dir=str(tmp_path / "twin"), user="op", group="opdk", root_mode=False)
    install_hermes(st, backend[0], Secret(TOKEN), python=sys.executable)
    return st


def add_skill(st: TwinState, rel: str, name: str, description: str = "A-share quotes via twilight-drive /price") -> None:
    d = st.hermes_home / "skills" / rel
    d.mkdir(parents=True)
    (d / "SKILL.md").write_text(SKILL.format(name=name, description=description))


def hermes(st: TwinState, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERMES")} | {"HERMES_HOME": str(st.hermes_home)}
    return subprocess.run([str(st.hermes_bin_dir / "hermes"), *args], env=env, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def api(backend, code: str, day: str | None = None) -> httpx.Response:
    params = {"code": code, **({"date": day} if day else {})}
    return httpx.get(backend[0] + "/price", params=params, headers={"Authorization": f"Bearer {TOKEN}"}, trust_env=False)


def prices_in(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"(?<![\d.-])\d+\.\d{2}(?!\d)", text)]


# --------------------------------------------------------------------------- install


def test_install_places_an_executable_and_keeps_the_token_out_of_the_config(twin_state, backend):
    binary = twin_state.hermes_bin_dir / "hermes"
    assert binary.read_text().startswith(f"#!{sys.executable}\n") and os.access(binary, os.X_OK)
    config = json.loads((twin_state.hermes_home / "standin.json").read_text())
    assert config["api_base"] == backend[0] and TOKEN not in json.dumps(config)
    token_file = Path(config["token_file"])
    assert token_file.read_text().strip() == TOKEN and stat.S_IMODE(token_file.stat().st_mode) == 0o600
    cfg = hermes_config(twin_state)
    assert cfg["hermes_home"] == str(twin_state.hermes_home) == str(twin_state.base / "operator" / "hermes-home")
    assert cfg["hermes_command"] == str(binary) and cfg["hermes_path"] == str(twin_state.hermes_bin_dir)
    assert re.search(cfg["hermes_register_pattern"], "INFO hermes.skills: registered skill stock-research v0.3.0 (x)")


def test_the_fault_names_agree_with_the_script():
    assert tuple(hermes_script.FAULTS) == HERMES_FAULTS


# --------------------------------------------------------------------------- restart and skills list


def test_restart_registers_each_skill_one_category_deep_and_skips_broken_ones(twin_state):
    r = hermes(twin_state, "restart")
    log = (twin_state.hermes_home / "logs" / "startup.log").read_text()
    assert r.returncode == 0 and "0 skill(s) registered" in log and "registered skill" not in log

    add_skill(twin_state, "research/stock-research", "stock-research")
    add_skill(twin_state, "notes", "notes", "Take notes")
    (twin_state.hermes_home / "skills" / "broken").mkdir()
    (twin_state.hermes_home / "skills" / "broken" / "SKILL.md").write_text("---\nname: broken\ndescription: x\n---\n")
    (twin_state.hermes_home / "skills" / ".hub" / "hidden").mkdir(parents=True)
    (twin_state.hermes_home / "skills" / ".hub" / "hidden" / "SKILL.md").write_text(SKILL.format(name="hidden", description="x"))
    r = hermes(twin_state, "restart")
    log = (twin_state.hermes_home / "logs" / "startup.log").read_text()
    assert r.returncode == 0 and "2 skill(s) registered (notes, stock-research)" in r.stdout
    assert re.search(r"INFO hermes\.skills: registered skill stock-research v0\.3\.0 \(research/stock-research\)", log)
    assert "registered skill notes v0.3.0 (notes)" in log and "hidden" not in log
    assert "WARNING hermes.skills: skipped broken: SKILL.md front matter lacks version" in log
    assert log.count("starting Hermes Agent") == 1                       # rewritten, not appended

    r = hermes(twin_state, "skills", "list")
    assert r.returncode == 0 and r.stdout.splitlines() == ["notes  Take notes", "stock-research  A-share quotes via twilight-drive /price"]


def test_skill_missing_fault_hides_stock_research_everywhere(twin_state):
    add_skill(twin_state, "research/stock-research", "stock-research")
    set_hermes_fault(twin_state.hermes_home, "skill_missing")
    hermes(twin_state, "restart")
    assert "registered skill stock-research" not in (twin_state.hermes_home / "logs" / "startup.log").read_text()
    assert hermes(twin_state, "skills", "list").stdout == ""
    r = hermes(twin_state, "chat", "-q", PROMPTS["latest"])
    assert r.returncode == 0 and "don't have a tool for stock prices" in r.stdout
    assert hermes(twin_state, "chat", "-s", "stock-research", "-q", PROMPTS["latest"]).returncode == 1
    set_hermes_fault(twin_state.hermes_home, None)
    assert hermes(twin_state, "skills", "list").stdout.startswith("stock-research  ")


# --------------------------------------------------------------------------- chat -q, the four runbook prompts


def test_chat_answers_the_runbook_prompts_from_the_api(twin_state, backend):
    add_skill(twin_state, "research/stock-research", "stock-research")
    latest = hermes(twin_state, "chat", "-s", "stock-research", "-q", PROMPTS["latest"])
    body = api(backend, "600519.SH").json()          # a cache hit: the same quote the agent was given
    assert latest.returncode == 0 and latest.stderr == ""
    assert body["close_raw"] in prices_in(latest.stdout)
    assert "600519.SH" in latest.stdout and body["trade_date"] in latest.stdout and body["as_of"] in latest.stdout
    assert re.search(r"freshness \d+ seconds", latest.stdout) and "market state open" in latest.stdout
    assert "unavailable" not in latest.stdout

    again = hermes(twin_state, "chat", "-q", PROMPTS["latest"])           # the same query again: the cached quote
    assert body["as_of"] in again.stdout and body["close_raw"] in prices_in(again.stdout)

    history = hermes(twin_state, "chat", "-q", PROMPTS["history"])
    hist = api(backend, "600519.SH", "2024-01-02").json()
    assert "on 2024-01-02" in history.stdout
    assert hist["close_raw"] in prices_in(history.stdout) and round(hist["close_qfq"], 2) in prices_in(history.stdout)

    unknown = hermes(twin_state, "chat", "-q", PROMPTS["unknown"])
    assert unknown.returncode == 0
    assert "999999.SH is not a known code" in unknown.stdout and "unavailable" in unknown.stdout
    assert prices_in(unknown.stdout) == []
    for r in (latest, again, history, unknown):
        assert TOKEN not in r.stdout + r.stderr


def test_history_without_close_qfq_says_so(twin_state, backend):
    add_skill(twin_state, "stock-research", "stock-research")
    (backend[1] / "faults.json").write_text(json.dumps({"price": ["close_qfq_null_history"]}))
    r = hermes(twin_state, "chat", "-q", PROMPTS["history"])
    assert "close_qfq) is not available" in r.stdout


def test_legacy_prompt_quotes_value_or_fails_to_parse_it(twin_state, backend):
    add_skill(twin_state, "stock-research", "stock-research")
    set_hermes_fault(twin_state.hermes_home, "legacy_prompt")
    r = hermes(twin_state, "chat", "-q", PROMPTS["latest"])
    assert "`value`" in r.stdout and "close_raw" in r.stdout and "parse" in r.stdout
    (backend[1] / "faults.json").write_text(json.dumps({"price": ["mixed_envelope"]}))   # value and close_raw both served
    r = hermes(twin_state, "chat", "-q", PROMPTS["latest"])
    assert re.search(r"value: \d+\.\d{2}, close_raw: \d+\.\d{2}", r.stdout)


def test_price_unavailable_fault_gives_no_price(twin_state):
    add_skill(twin_state, "stock-research", "stock-research")
    set_hermes_fault(twin_state.hermes_home, "price_unavailable")
    r = hermes(twin_state, "chat", "-q", PROMPTS["latest"])
    assert r.returncode == 0 and "unavailable" in r.stdout and prices_in(r.stdout) == []


def test_verbose_faults_answer_in_long_form_british_wording(twin_state, backend):
    from twilight_ops import answers

    add_skill(twin_state, "stock-research", "stock-research")
    set_hermes_fault(twin_state.hermes_home, "verbose_wording")
    latest = hermes(twin_state, "chat", "-q", PROMPTS["latest"]).stdout
    body = api(backend, "600519.SH").json()
    assert f"¥{body['close_raw']:,.2f} (close_raw)" in latest and "the latest quote I've got" in latest
    assert "10:00 Shanghai time on Wednesday 2nd December 2026" in latest and body["as_of"] not in latest   # long form, no ISO
    history = hermes(twin_state, "chat", "-q", PROMPTS["history"]).stdout
    hist = api(backend, "600519.SH", "2024-01-02").json()
    assert history.startswith("On Tuesday 2nd January 2024, 600519.SH closed at ") and "2024-01-02" not in history
    assert answers.matches_price(history, [hist["close_raw"]]) is not None
    unknown = hermes(twin_state, "chat", "-q", PROMPTS["unknown"]).stdout
    assert "I couldn't find 999999.SH: it isn't a recognised code" in unknown and answers.says_unknown(unknown)

    set_hermes_fault(twin_state.hermes_home, "verbose_wrong_date")
    wrong = hermes(twin_state, "chat", "-q", PROMPTS["history"]).stdout
    assert wrong.startswith("On Wednesday 3rd January 2024, ") and not answers.gives_date(wrong, date(2024, 1, 2))

    set_hermes_fault(twin_state.hermes_home, "verbose_unavailable")
    gone = hermes(twin_state, "chat", "-q", PROMPTS["latest"]).stdout
    assert "I couldn't retrieve a live quote for 600519.SH" in gone and prices_in(gone) == []


def test_backend_errors_become_sentences(twin_state, backend):
    add_skill(twin_state, "stock-research", "stock-research")
    (backend[1] / "faults.json").write_text(json.dumps({"price": ["http_500"]}))
    r = hermes(twin_state, "chat", "-q", PROMPTS["latest"])
    assert "HTTP 500" in r.stdout and "unavailable" in r.stdout
    (twin_state.hermes_home / ".operator-token").write_text("wrong\n")
    assert "HTTP 401" in hermes(twin_state, "chat", "-q", PROMPTS["latest"]).stdout


# --------------------------------------------------------------------------- bad input


def test_missing_config_is_one_line_and_exit_2(twin_state):
    add_skill(twin_state, "stock-research", "stock-research")
    (twin_state.hermes_home / "standin.json").unlink()
    r = hermes(twin_state, "chat", "-q", PROMPTS["latest"])
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "standin.json" in r.stderr and "Traceback" not in r.stderr


def test_unknown_hermes_fault_is_bad_input(twin_state):
    with pytest.raises(BadInput, match="unknown"):
        set_hermes_fault(twin_state.hermes_home, "nope")
    assert not (twin_state.hermes_home / "standin-faults.json").exists()


@pytest.mark.parametrize("prompt, code", [
    ("What is the current price of 贵州茅台 (600519)?", "600519.SH"),
    ("price of 贵州茅台?", "600519.SH"),
    ("What is the price of 999999.SH?", "999999.SH"),
    ("close of 000001 on 2024-01-02", "000001.SZ"),
    ("430047.bj please", "430047.BJ"),
    ("no code here 2024-01-02", None),
])
def test_find_code(prompt, code):
    assert hermes_script.find_code(prompt) == code


def test_front_matter_reads_flat_yaml_only_when_closed():
    assert hermes_script.front_matter('---\nname: "x"\ndescription: d: e\nversion: 1\n  nested: y\n---\nbody') == {
        "name": "x", "description": "d: e", "version": "1"}
    assert hermes_script.front_matter("---\nname: x\n") == {} and hermes_script.front_matter("name: x") == {}


def test_started_as_of_is_iso(twin_state, backend):
    # the answer quotes as_of exactly as the API gave it (an RFC 3339 instant)
    add_skill(twin_state, "stock-research", "stock-research")
    out = hermes(twin_state, "chat", "-q", PROMPTS["latest"]).stdout
    stamp = re.search(r"as of (\S+),", out).group(1)
    assert datetime.fromisoformat(stamp).tzinfo is not None
