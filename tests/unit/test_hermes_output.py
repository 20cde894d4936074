"""The real Hermes Agent 0.19 CLI's output, read by hermes_output (captured in tests/data/captured/hermes-0.19-*)."""
from __future__ import annotations

from pathlib import Path

import pytest

from twilight_ops import hermes_output as ho

CAPTURED = Path(__file__).resolve().parents[1] / "data" / "captured"


def captured(name: str) -> str:
    return (CAPTURED / name).read_text(encoding="utf-8")


def test_skills_list_table_rows_and_status():
    text = captured("hermes-0.19-skills-list-80cols.txt")
    rows = ho.skill_rows(text)
    assert [r["Name"] for r in rows] == ["broken", "stock-research"]
    assert rows[1] == {"Name": "stock-research", "Category": "", "Source": "local", "Trust": "local", "Status": "enabled"}
    assert ho.skill_state(text, "stock-research") == "enabled"
    assert ho.skill_state(text, "stock") is None and ho.skill_state(text, "Name") is None


def test_a_disabled_skill_is_listed_but_not_enabled():
    text = captured("hermes-0.19-skills-list-disabled.txt")
    assert ho.skill_state(text, "stock-research") == "disabled"
    assert ho.skill_state(text, "broken") == "enabled"


def test_lists_without_a_status_column():
    assert ho.skill_state("notes  Take notes\nstock-research  Research\n", "stock-research") == "listed"
    assert ho.skill_state("│ stock-research │ Research │\n", "stock-research") == "listed"
    assert ho.skill_state("notes  stock-research helper\n", "stock-research") is None


def test_gateway_status():
    assert ho.gateway_state(captured("hermes-0.19-gateway-status-none.txt")) == "none"
    # hermes_cli/gateway.py 0.19, a gateway started with `hermes gateway run`
    manual = "✓ Gateway is running (PID: 4242, 4250)\n  (Running manually, not as a system service)\n"
    assert ho.gateway_state(manual) == "manual" and ho.gateway_pids(manual) == [4242, 4250]
    service = "● hermes-gateway.service - Hermes Agent Gateway\n     Active: active (running) since …\n"
    assert ho.gateway_state(service) == "service" and ho.gateway_pids(service) == []


@pytest.mark.parametrize("text, problem", [
    ("---\nname: stock-research\ndescription: Research a stock\nversion: 0.3.0\n---\nbody\n", None),
    ("\ufeff---\nname: stock-research\ndescription: x\n---\n", None),
    ("no front matter\n", "has no front matter"),
    ("---\nname: stock-research\ndescription: x\n", "has no front matter"),           # no closing fence
    ("---\nname: other\ndescription: x\n---\n", "its name is 'other'"),
    ("---\ndescription: x\n---\n", "it has no name"),
    ("---\nname: stock-research\n---\n", "it has no description"),
    ("---\nname: stock-research\ndescription: [unclosed\n---\n", None),            # Hermes' key: value fallback
])
def test_front_matter_problem(text, problem):
    got = ho.front_matter_problem(text, "stock-research")
    assert (got is None) if problem is None else (got is not None and problem in got)


@pytest.mark.parametrize("answer", [
    "API call failed after 3 retries: Connection error.",
    "API call failed after 1 retries: Error code: 401 - {'error': 'invalid api key'}",
    "Billing or credits exhausted: insufficient_quota",
    "Invalid API response after 3 retries: empty choices",
    "Model generated invalid tool call: terminal(",
    "I reached the iteration limit and couldn't generate a summary.",
    "(empty)",
    "",
    "   \n",
])
def test_agent_failures_are_recognised(answer):
    assert ho.agent_failure(answer) is not None


@pytest.mark.parametrize("answer", [
    "The latest price of 600519.SH is 1712.30 yuan (close_raw).",
    "Sorry, I couldn't find 999999.SH: it isn't a recognised code (HTTP 502).",
    "The price service failed (HTTP 500), so the price of 999999.SH is unavailable right now.",
    "I could not reach the price service, so I cannot give a price.",
])
def test_answers_are_not_agent_failures(answer):
    assert ho.agent_failure(answer) is None
