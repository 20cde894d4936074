"""The model stand-in that the real Hermes Agent talks to on the twin's operator side
(twilight_ops/twin/model_standin.py, model_server.py) and the HERMES_HOME config it gets
(operator_side.py).  Turns are checked against conversations Hermes 0.19.0 really stored
(tests/data/captured/hermes-0.19.0-chat.json); curl runs for real against the stand-in backend;
the server runs as its own process.  No mocks."""
from __future__ import annotations

import json
import re
import stat
import subprocess
import threading
import time
from datetime import date
from pathlib import Path

import httpx
import pytest

from tests.unit.test_twin_backend import TOKEN, app, at
from twilight_ops import answers
from twilight_ops.errors import BadInput
from twilight_ops.twin import model_server
from twilight_ops.twin import model_standin as ms
from twilight_ops.twin.drive_repos import SKILL_V020, SKILL_W4
from twilight_ops.twin.operator_side import (HERMES_FAULTS, read_config, set_hermes_fault, twin_config, update_check_cache,
                                             with_disabled, write_config)
from twilight_ops.twin.state import TwinState, hermes_config

CAPTURED = json.loads((Path(__file__).parents[1] / "data" / "captured" / "hermes-0.19.0-chat.json").read_text())
TOOLS = {t["name"]: t for t in CAPTURED["tools"]}
PROMPTS = {
    "latest": "What is the current price of 贵州茅台 (600519)?",
    "history": "What was the close of 600519 on 2024-01-02?",
    "unknown": "What is the price of 999999.SH?",
}
SCRIPT = ms.Script("http://127.0.0.1:8000", "/h/.operator-auth-header")


def conversation(what: str) -> list[dict]:
    return next(c["messages"] for c in CAPTURED["conversations"] if c["what"] == what)


def prices_in(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"(?<![\d.-])\d+\.\d{2}(?!\d)", text)]


def skill_result(text: str) -> str:
    return json.dumps({"success": True, "name": "stock-research", "content": text})


def tool_loop(prompt: str, skill: str, terminal: str | None = None) -> list[dict]:
    """The messages Hermes sends after each tool result, shaped as the captured ones."""
    msgs = [{"role": "user", "content": prompt},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "skill_view", "arguments": '{"name": "stock-research"}'}}]},
            {"role": "tool", "content": skill_result(skill), "tool_call_id": "c1"}]
    if terminal is not None:
        msgs += [{"role": "assistant", "content": "", "tool_calls": [
                     {"id": "c2", "type": "function", "function": {"name": "terminal", "arguments": "{}"}}]},
                 {"role": "tool", "content": json.dumps({"output": terminal, "exit_code": 0, "error": None}),
                  "tool_call_id": "c2"}]
    return msgs


# --------------------------------------------------------------------------- turns, against what Hermes really sent


@pytest.mark.parametrize("what", ["historical, W4 SKILL.md, v0.2.0 body", "unknown code, 502",
                                  "historical, v0.2.0 SKILL.md (legacy template)"])
def test_each_turn_of_a_recorded_tool_loop_is_chosen_from_the_user_message_and_tool_results(what):
    msgs = conversation(what)
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    first = ms.next_turn(msgs[:1], SCRIPT)
    assert first == ms.ToolCall("skill_view", {"name": "stock-research"}, "call_1_skill_view")
    recorded = json.loads(msgs[3]["tool_calls"][0]["function"]["arguments"])["command"]
    header, api_base = re.fullmatch(r"curl -sS -H @(\S+) .* '(http://[\d.:]+)/price\?.*'", recorded, re.S).groups()
    second = ms.next_turn(msgs[:3], ms.Script(api_base, header))
    assert second == ms.ToolCall("terminal", {"command": recorded}, "call_2_terminal")
    third = ms.next_turn(msgs[:5], SCRIPT)
    assert third == ms.Answer(msgs[5]["content"])                      # what Hermes printed, from its real tool results


def test_the_tool_calls_use_names_and_required_arguments_from_hermes_tools_array():
    assert len(TOOLS) == 18 and {"skill_view", "terminal"} <= set(TOOLS)
    msgs = conversation("unknown code, 502")
    for turn in (ms.next_turn(msgs[:1], SCRIPT), ms.next_turn(msgs[:3], SCRIPT)):
        schema = TOOLS[turn.name]
        assert set(schema["required"]) <= set(turn.arguments) <= set(schema["properties"])
        assert all(schema["properties"][k] == "string" for k in turn.arguments)


def test_the_system_prompt_does_not_steer_the_turn():
    msgs = conversation("unknown code, 502")
    system = {"role": "system", "content": "Current working directory: /tmp/600519 on 2024-01-02; skill_view terminal"}
    assert ms.next_turn([system, *msgs[:1]], SCRIPT) == ms.next_turn(msgs[:1], SCRIPT)
    assert ms.next_turn([system, *msgs[:3]], SCRIPT).arguments == ms.next_turn(msgs[:3], SCRIPT).arguments


def test_a_disabled_skill_recorded_from_hermes_ends_the_loop_without_a_price():
    msgs = conversation("skill_disabled")
    assert '"success": false' in msgs[2]["content"]
    assert ms.next_turn(msgs[:3], SCRIPT) == ms.Answer(ms.NO_TOOL) and msgs[3]["content"] == ms.NO_TOOL


def test_the_v020_skill_text_gives_the_legacy_template_and_the_w4_text_does_not():
    assert ms.is_legacy_skill(SKILL_V020) and not ms.is_legacy_skill(SKILL_W4)
    body = {"code": "600519.SH", "close_raw": 1712.3, "close_qfq": 1650.1, "trade_date": "2026-05-11"}
    out = f"{json.dumps(body)}\nHTTP 200\n"
    legacy = ms.next_turn(tool_loop(PROMPTS["latest"], SKILL_V020, out), SCRIPT).text
    assert "no `value` field" in legacy and "close_raw is 1712.30" in legacy
    assert "`value`" not in ms.next_turn(tool_loop(PROMPTS["latest"], SKILL_W4, out), SCRIPT).text
    verbose = ms.next_turn(tool_loop(PROMPTS["latest"], SKILL_V020, out), ms.Script("http://x", "/h", "verbose_wording"))
    assert verbose.text.startswith("Right then:")                     # a fault's style wins over the skill's


def test_no_code_in_the_prompt_is_said_after_the_skill_is_read():
    assert ms.next_turn(tool_loop("How are markets today?", SKILL_W4), SCRIPT) == ms.Answer(ms.NO_CODE)


def test_a_request_without_tools_gets_a_plain_title():
    assert ms.respond({"messages": [{"role": "user", "content": "x"}]}, SCRIPT, "m", "c") == ms.Answer("Stock price lookup")


# --------------------------------------------------------------------------- curl: the token stays in its file


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


def curl(command: str) -> str:
    """Run the model's terminal command as Hermes's terminal tool does (a shell)."""
    r = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30)
    return r.stdout + r.stderr


@pytest.fixture
def header(tmp_path) -> Path:
    path = tmp_path / ".operator-auth-header"
    path.write_text(f"Authorization: Bearer {TOKEN}\n")
    path.chmod(0o600)
    return path


def ask(backend, header: Path, prompt: str, style: str | None = None, skill: str = SKILL_W4) -> str:
    script = ms.Script(backend[0], str(header), style)
    command = ms.next_turn(tool_loop(prompt, skill), script).arguments["command"]
    assert TOKEN not in command and f"@{header}" in command
    return ms.next_turn(tool_loop(prompt, skill, curl(command)), script).text


def api(backend, code: str, day: str | None = None) -> dict:
    params = {"code": code, **({"date": day} if day else {})}
    return httpx.get(backend[0] + "/price", params=params, headers={"Authorization": f"Bearer {TOKEN}"}, trust_env=False).json()


def test_curl_output_parses_to_status_and_body(backend, header):
    out = curl(ms.curl_command(backend[0], str(header), "600519.SH", "2024-01-02"))
    status, body = ms.parse_curl(out)
    assert status == 200 and body["trade_date"] == "2024-01-02" and TOKEN not in out
    assert ms.parse_curl(curl(ms.curl_command(backend[0], str(header), "999999.SH", None)))[0] == 502
    status, reason = ms.parse_curl(curl(ms.curl_command("http://127.0.0.1:9", str(header), "600519.SH", None)))
    assert status is None and "Failed to connect" in reason or "Couldn't connect" in reason


def test_the_runbook_prompts_are_answered_from_the_api(backend, header):
    latest = ask(backend, header, PROMPTS["latest"])
    body = api(backend, "600519.SH")
    assert body["close_raw"] in prices_in(latest) and body["as_of"] in latest and "market state open" in latest
    history = ask(backend, header, PROMPTS["history"])
    hist = api(backend, "600519.SH", "2024-01-02")
    assert "on 2024-01-02" in history and round(hist["close_qfq"], 2) in prices_in(history)
    unknown = ask(backend, header, PROMPTS["unknown"])
    assert "999999.SH is not a known code" in unknown and prices_in(unknown) == []


def test_legacy_and_unavailable_styles(backend, header):
    assert "parse" in ask(backend, header, PROMPTS["latest"], "legacy_prompt")
    (backend[1] / "faults.json").write_text(json.dumps({"price": ["mixed_envelope"]}))   # value and close_raw both served
    assert re.search(r"value: \d+\.\d{2}, close_raw: \d+\.\d{2}", ask(backend, header, PROMPTS["latest"], "legacy_prompt"))
    gone = ask(backend, header, PROMPTS["latest"], "price_unavailable")
    assert "unavailable" in gone and prices_in(gone) == []


def test_verbose_styles_answer_in_long_form_british_wording(backend, header):
    latest = ask(backend, header, PROMPTS["latest"], "verbose_wording")
    body = api(backend, "600519.SH")
    assert f"¥{body['close_raw']:,.2f} (close_raw)" in latest and "10:00 Shanghai time on Wednesday 2nd December 2026" in latest
    history = ask(backend, header, PROMPTS["history"], "verbose_wording")
    assert history.startswith("On Tuesday 2nd January 2024, 600519.SH closed at ")
    assert answers.matches_price(history, [api(backend, "600519.SH", "2024-01-02")["close_raw"]]) is not None
    unknown = ask(backend, header, PROMPTS["unknown"], "verbose_wording")
    assert "it isn't a recognised code" in unknown and answers.says_unknown(unknown)
    wrong = ask(backend, header, PROMPTS["history"], "verbose_wrong_date")
    assert wrong.startswith("On Wednesday 3rd January 2024, ") and not answers.gives_date(wrong, date(2024, 1, 2))
    assert "I couldn't retrieve a live quote" in ask(backend, header, PROMPTS["latest"], "verbose_unavailable")


def test_backend_errors_become_sentences(backend, header, tmp_path):
    (backend[1] / "faults.json").write_text(json.dumps({"price": ["http_500"]}))
    out = ask(backend, header, PROMPTS["latest"])
    assert "HTTP 500" in out and "unavailable" in out
    header.write_text("Authorization: Bearer wrong\n")
    assert "HTTP 401" in ask(backend, header, PROMPTS["latest"])


@pytest.mark.parametrize("prompt, code", [
    ("What is the current price of 贵州茅台 (600519)?", "600519.SH"),
    ("price of 贵州茅台?", "600519.SH"),
    ("What is the price of 999999.SH?", "999999.SH"),
    ("close of 000001 on 2024-01-02", "000001.SZ"),
    ("430047.bj please", "430047.BJ"),
    ("no code here 2024-01-02", None),
])
def test_find_code(prompt, code):
    assert ms.find_code(prompt) == code


# --------------------------------------------------------------------------- wire formats


def events(chunks: list[bytes]) -> list:
    assert all(c.startswith(b"data: ") and c.endswith(b"\n\n") for c in chunks)
    return [c[6:-2].decode() if c == b"data: [DONE]\n\n" else json.loads(c[6:-2]) for c in chunks]


def test_a_tool_call_streams_as_deltas_that_reassemble_to_the_arguments():
    turn = ms.ToolCall("terminal", {"command": "curl -sS 'http://x/price?code=600519.SH'"}, "call_3_terminal")
    evs = events(ms.sse_chunks(turn, "m", "cid", include_usage=True))
    assert evs[-1] == "[DONE]" and evs[-2]["choices"] == [] and "usage" in evs[-2]
    deltas = [e["choices"][0] for e in evs[:-2]]
    assert deltas[0]["delta"]["role"] == "assistant" and deltas[-1]["finish_reason"] == "tool_calls"
    calls = [d["delta"]["tool_calls"][0] for d in deltas if "tool_calls" in d["delta"]]
    assert calls[0]["id"] == "call_3_terminal" and calls[0]["function"]["name"] == "terminal"
    assert len(calls) >= 3 and all(c["index"] == 0 for c in calls)
    assert json.loads("".join(c["function"]["arguments"] for c in calls)) == turn.arguments


def test_an_answer_streams_as_content_deltas_and_stops():
    evs = events(ms.sse_chunks(ms.Answer("¥1,712.30 — 贵州茅台"), "m", "cid"))
    assert evs[-1] == "[DONE]" and evs[-2]["choices"][0]["finish_reason"] == "stop"
    assert "".join(e["choices"][0]["delta"].get("content") or "" for e in evs[:-1]) == "¥1,712.30 — 贵州茅台"


def test_a_non_streamed_completion_carries_the_same_turn():
    turn = ms.ToolCall("skill_view", {"name": "stock-research"}, "c1")
    msg = ms.completion(turn, "m", "cid")["choices"][0]
    assert msg["finish_reason"] == "tool_calls"
    assert json.loads(msg["message"]["tool_calls"][0]["function"]["arguments"]) == {"name": "stock-research"}


# --------------------------------------------------------------------------- the server process and HERMES_HOME


@pytest.fixture
def operator(tmp_path):
    st = TwinState(dir=str(tmp_path / "twin"), user="op", group="opdk", root_mode=False)
    st.hermes_home.mkdir(parents=True)
    header = st.hermes_home / ".operator-auth-header"
    header.write_text("Authorization: Bearer x\n")
    info = model_server.start_model(st.operator_dir, "http://127.0.0.1:9", header)
    write_config(st.hermes_home, twin_config({"display": {"skin": "mono"}}, info.base_url, model_server.MODEL))
    yield st, info
    assert model_server.stop_model(st.operator_dir) == info.pid
    assert not model_server.is_running(st.operator_dir)


def test_the_server_answers_models_streams_a_tool_call_and_refuses_on_the_down_port(operator):
    st, info = operator
    with httpx.Client(trust_env=False, timeout=5) as client:
        assert client.get(info.base_url + "/models").json()["data"][0]["id"] == model_server.MODEL
        assert client.get(f"http://127.0.0.1:{info.port}/api/tags").status_code == 404     # not Ollama
        req = {"model": model_server.MODEL, "stream": True, "tools": [{"type": "function"}],
               "messages": [{"role": "user", "content": PROMPTS["latest"]}]}
        r = client.post(info.base_url + "/chat/completions", json=req)
        assert r.headers["content-type"] == "text/event-stream" and r.text.endswith("data: [DONE]\n\n")
        assert '"name": "skill_view"' in r.text
        with pytest.raises(httpx.ConnectError):
            client.get(info.down_url + "/models")
    again = model_server.start_model(st.operator_dir, "http://127.0.0.1:9", st.hermes_home / ".operator-auth-header")
    assert again.reused and (again.pid, again.port, again.down_port) == (info.pid, info.port, info.down_port)


def test_faults_edit_config_yaml_and_keep_other_keys(operator):
    st, info = operator
    home = st.hermes_home
    set_hermes_fault(home, "skill_disabled")
    assert read_config(home)["skills"] == {"disabled": ["stock-research"]}
    set_hermes_fault(home, "model_down")
    cfg = read_config(home)
    assert cfg["model"]["base_url"] == info.down_url and "skills" not in cfg
    set_hermes_fault(home, "skill_missing")
    assert (home / "active_profile").read_text().strip() == "twin-elsewhere"
    assert read_config(home / "profiles" / "twin-elsewhere")["model"]["base_url"] == info.base_url
    assert not any((home / "profiles" / "twin-elsewhere" / "skills").iterdir())
    set_hermes_fault(home, "verbose_wording")
    assert model_server.read_style(str(info.paths.fault)) == "verbose_wording" and not (home / "active_profile").exists()
    set_hermes_fault(home, None)
    cfg = read_config(home)
    assert cfg["display"] == {"skin": "mono"} and cfg["model"]["base_url"] == info.base_url
    assert cfg["security"] == {"tirith_enabled": False, "allow_lazy_installs": False} and cfg["agent"]["api_max_retries"] == 1
    assert cfg["agent"]["environment_probe"] is False
    assert not info.paths.fault.exists() and stat.S_IMODE((home / "config.yaml").stat().st_mode) == 0o600
    with pytest.raises(BadInput, match="unknown"):
        set_hermes_fault(home, "nope")


def test_pure_config_helpers():
    assert with_disabled({"skills": {"disabled": ["a", "stock-research"]}}, "stock-research", False) == {"skills": {"disabled": ["a"]}}
    assert with_disabled({}, "stock-research", False) == {}
    cfg = twin_config({"model": {"default": "old", "api_key": "k"}}, "http://127.0.0.1:1/v1", "twin-model")
    assert cfg["model"] == {"default": "twin-model", "api_key": "k", "provider": "custom",
                            "base_url": "http://127.0.0.1:1/v1", "context_length": 65536}
    cache = json.loads(update_check_cache())
    assert cache["ver"] == "0.19.0" and cache["rev"] is None and cache["ts"] > time.time() + 6 * 3600
    assert set(HERMES_FAULTS) >= set(ms.STYLES) | {"skill_missing", "skill_disabled", "model_down"}


def test_hermes_config_leaves_the_production_defaults_alone(tmp_path):
    st = TwinState(dir=str(tmp_path), user="op", group="opdk", root_mode=False)
    cfg = hermes_config(st)
    assert set(cfg) == {"hermes_home", "hermes_command", "hermes_path", "hermes_skills_dir"}
    assert cfg["hermes_home"] == str(tmp_path / "operator" / "hermes-home")


def test_a_stamped_hermes_venv_in_the_cache_is_reused_without_pip(tmp_path):
    import sys

    from twilight_ops.twin.operator_side import ensure_hermes_venv, hermes_venv_dir, install_argv, stamp_text

    venv = hermes_venv_dir(tmp_path)
    assert venv == tmp_path / "hermes-agent-0.19.0"
    assert install_argv(venv) == [str(venv / "bin/pip"), "install", "--quiet", "--disable-pip-version-check",
                                  "hermes-agent==0.19.0"]
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "hermes").write_text("#!/bin/sh\n")
    assert stamp_text() == f"hermes-agent==0.19.0\npython {sys.base_prefix} {sys.version.split()[0]}\n"
    (venv / ".installed").write_text(stamp_text())
    said: list[str] = []
    assert ensure_hermes_venv(tmp_path, say=said.append) == (venv, False) and said == []
