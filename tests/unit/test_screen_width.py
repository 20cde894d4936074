"""Issue 21 §7: text folds at spaces, at 80 and at 120 columns.  Rendered through the tool's own
Console (output.make_console) as a terminal of that width; a word is split across lines only when
it is longer than its column."""
from __future__ import annotations

import io
import re

import pytest

from twilight_ops.output import make_console
from twilight_ops.phases.agent_smoke import AgentSmokeReport, Row
from twilight_ops.render import agent_smoke, checks
from twilight_ops.results import CheckResult, Status
from twilight_ops.runbook import PREFLIGHT_TITLES

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

LONG_LINE = ("deploy failed: pull of v0.3.0-w4-cutover failed: Error response from daemon: Head "
             "\"https://registry/v2/twilight/manifests/v0.3.0-w4-cutover\": denied: the Composer token was "
             "refused; nothing was restarted; check the registry and run inv deploy again when it answers")
EVIDENCE = ("provider chain: ChainExhausted after tushare (HTTPError 503) and akshare (ConnectTimeout 5 s); "
            "the backend answered 502 with a body of 161 bytes; see `docker compose logs backend --tail=200` on tvps")


def rendered(width: int, *things) -> list[str]:
    buf = io.StringIO()
    con = make_console(file=buf, width=width, terminal=True)
    for thing in things:
        con.print(thing, markup=False, highlight=False) if isinstance(thing, str) else con.print(thing)
    return [ANSI.sub("", line) for line in buf.getvalue().splitlines()]


def unsplit(words: str, lines: list[str], longest: int) -> list[str]:
    """The words (no longer than `longest`) that are not whole on any one rendered line."""
    return [w for w in set(words.split()) if len(w) <= longest and not any(w in line for line in lines)]


@pytest.mark.parametrize("width", [80, 120])
def test_a_plain_line_folds_at_spaces(width):
    lines = rendered(width, LONG_LINE)
    assert len(lines) > 1 and all(len(x) <= width for x in lines)
    assert unsplit(LONG_LINE, lines, width) == []


def test_only_a_token_longer_than_the_width_is_folded():
    token = "sha256:" + "ab" * 50                      # 107 characters
    lines = rendered(80, f"digest {token} kept")
    assert "".join(x.strip() for x in lines).replace("digest", "", 1).replace("kept", "").strip() == token
    assert all(len(x) <= 80 for x in lines)


def test_a_log_gets_whole_lines():
    buf = io.StringIO()
    con = make_console(file=buf, width=80, terminal=False)
    con.print(LONG_LINE, markup=False)
    assert buf.getvalue() == LONG_LINE + "\n"


@pytest.mark.parametrize("width", [80, 120])
def test_a_check_table_gives_evidence_the_width_and_drops_an_empty_fix_column(width):
    rows = [CheckResult("commit_pinned", Status.PASS, EVIDENCE),
            CheckResult("prs_merged", Status.PASS, "#41 merged at 2026-12-01T09:00:00Z, #42 merged at 2026-12-02T10:00:00Z")]
    lines = rendered(width, checks.table("§0 prerequisites for v0.3.0-w4-cutover", rows, PREFLIGHT_TITLES))
    assert all(len(x) <= width for x in lines)
    assert not any(" fix " in x for x in lines)                 # every row PASS: no fix column
    assert unsplit(EVIDENCE + " " + PREFLIGHT_TITLES["commit_pinned"], lines, 20) == [], lines


@pytest.mark.parametrize("width", [80, 120])
def test_the_agent_table_leaves_out_an_empty_red_flag_column(width):
    report = AgentSmokeReport(rows=(
        Row("api", CheckResult("latest_quote", Status.PASS, EVIDENCE)),
        Row("agent", CheckResult("unknown_code", Status.PASS, "the agent says 999999.SH is unknown; no price")),
    ), calendar="trade_cal: 2026-12-07 is a trading day", expected_state="open")
    buf = io.StringIO()
    con = make_console(file=buf, width=width, terminal=True)
    agent_smoke.render(report, con)
    lines = [ANSI.sub("", x) for x in buf.getvalue().splitlines()]
    assert not any("red flag" in x for x in lines)
    assert all(len(x) <= width for x in lines)
    assert unsplit(EVIDENCE, lines, 20) == [], lines


def test_the_red_flag_column_is_there_when_a_row_has_one():
    report = AgentSmokeReport(rows=(Row("api", CheckResult("latest_quote", Status.FAIL, "freshness 230908 s"),
                                        red_flags=("stale_value",)),), calendar="c", expected_state="open")
    buf = io.StringIO()
    agent_smoke.render(report, make_console(file=buf, width=120, terminal=True))
    assert "red flag" in ANSI.sub("", buf.getvalue())


def test_a_line_with_a_command_to_paste_is_not_broken_by_rich():
    from twilight_ops.output import _LazyConsole, pasteable

    line = ("error: backend not healthy within 180 s (running, health starting) — roll back — run: inv -f /home/ops/"
            "tvps.yaml rollback --version v0.3.0-w4-cutover --reason 'backend not healthy within 180 s'")
    assert pasteable(line) and pasteable("resume with: inv cutover --version v --resume")
    prose = LONG_LINE.replace("run inv deploy again", "deploy again")
    assert not pasteable("the inventory is fine") and not pasteable(prose)
    assert pasteable("tag v0.3.0-w4-cutover stays on origin (at abc); delete it: git -C /home/op/twilight-drive push "
                     "origin :refs/tags/v0.3.0-w4-cutover && git -C /home/op/twilight-drive tag -d v0.3.0-w4-cutover")
    assert not pasteable("the git repository is clean") and not pasteable("legit Hermes output")
    lazy = _LazyConsole(stderr=False)
    buf = io.StringIO()
    lazy._console = make_console(file=buf, width=80, terminal=True)
    lazy.print(line, markup=False)
    lazy.print(prose, markup=False)
    out = ANSI.sub("", buf.getvalue()).splitlines()
    assert out[0] == line                       # one line: the terminal wraps it, a copy is one command
    assert len(out) > 2 and all(len(x) <= 80 for x in out[1:])
