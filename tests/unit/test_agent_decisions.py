"""Pure decisions of hermes-reinstall and agent-smoke: market state, answers, cache verdicts, config."""
from __future__ import annotations

import copy
import datetime as dt

import pytest

from twilight_ops import answers, cache_check, market
from twilight_ops.config import DEFAULTS, load_settings
from twilight_ops.errors import BadInput, CheckFailed
from twilight_ops.results import Status
from twilight_ops.phases import agent_smoke as phase
from twilight_ops.phases import hermes as hermes_phase

CST = dt.timezone(dt.timedelta(hours=8))


def at(hh, mm, day=dt.date(2026, 5, 11)):        # a Monday
    return dt.datetime(day.year, day.month, day.day, hh, mm, tzinfo=CST)


# ---------------------------------------------------------------- market state from clock + calendar

@pytest.mark.parametrize("hh, mm, state", [
    (9, 29, "pre_open"), (9, 30, "open"), (11, 29, "open"), (11, 30, "lunch_break"), (12, 59, "lunch_break"),
    (13, 0, "open"), (14, 59, "open"), (15, 0, "closed_final"), (23, 0, "closed_final"),
])
def test_market_state_follows_the_shanghai_sessions(hh, mm, state):
    assert market.expected_state(at(hh, mm), trading_day=True) == state
    assert market.expected_state(at(hh, mm).astimezone(dt.timezone.utc), trading_day=True) == state


def test_a_non_trading_day_is_closed_and_the_calendar_decides():
    assert market.expected_state(at(10, 0), trading_day=False) == "closed"
    days = {"20260511": 1, "20260501": 0}
    assert market.trading_day(days, dt.date(2026, 5, 11)) is True
    assert market.trading_day(days, dt.date(2026, 5, 1)) is False          # Labour Day: a weekday, closed
    assert market.trading_day(days, dt.date(2026, 5, 12)) is None          # not covered: fall back to weekdays
    assert market.weekday(dt.date(2026, 5, 9)) is False and market.weekday(dt.date(2026, 5, 11)) is True


def test_naive_clock_is_refused():
    with pytest.raises(ValueError):
        market.expected_state(dt.datetime(2026, 5, 11, 10, 0), True)


# ---------------------------------------------------------------- API-level judgements

def w4(**over):
    body = {"close_raw": 1712.3, "close_qfq": 1712.3, "as_of": "2026-05-11T02:00:00Z", "freshness_seconds": 3,
            "market_state": "open", "source": "akshare-spot", "trade_date": "2026-05-11"}
    body.update(over)
    return body


def test_latest_quote_judgement():
    assert phase.judge_latest(200, w4(), [], {"open"})[:2] == ([], [])
    assert phase.judge_latest(200, w4(freshness_seconds=130), [], {"open"})[0] == ["not_fresh_open"]
    assert phase.judge_latest(200, w4(market_state="closing"), [], {"open"})[0] == ["market_state_mismatch"]
    assert phase.judge_latest(200, w4(market_state="lunch_break", freshness_seconds=90000), [], {"lunch_break"})[0] == ["stale_value"]
    assert phase.judge_latest(200, w4(market_state="closed", freshness_seconds=200000), [], {"closed"})[0] == []   # weekend
    assert phase.judge_latest(200, w4(), ["legacy_envelope"], {"open"})[0] == ["not_w4"]


def test_historical_judgement():
    ok = {"trade_date": "2024-01-02", "close_raw": 1685.0, "close_qfq": 1600.2}
    assert phase.judge_historical(200, ok)[:2] == ([], [])
    flags, why, _ = phase.judge_historical(200, {**ok, "close_qfq": None})
    assert flags == ["historical_qfq_missing"] and "close_qfq is null" in why[0]
    assert phase.judge_historical(200, {**ok, "trade_date": "2024-01-03"})[1] == ["trade_date is '2024-01-03', not 2024-01-02"]


def test_unknown_code_judgement():
    line = "HTTP 502 GET /price code=999999.SH state=open error=ChainExhausted"
    assert phase.judge_unknown(502, line)[:2] == ([], [])
    assert phase.judge_unknown(500, None)[0] == ["unknown_code_500"]
    assert "do not show it" in phase.judge_unknown(502, None)[1][0]


# ---------------------------------------------------------------- answers (English and Chinese)

LATEST = ("The latest price of 600519.SH is 1712.30 yuan (close_raw; close_qfq 1712.30), trade date 2026-05-11, "
          "as of 2026-05-11T10:00:01.000+08:00, freshness 1 seconds, market state open, source akshare-spot.")


def test_answer_prices_ignore_codes_dates_and_http_statuses():
    assert answers.prices("999999.SH is not a known code (HTTP 502 ChainExhausted). The price is unavailable.") == []
    assert answers.prices("贵州茅台（600519）现价 1,712.30 元，日期 2024年1月2日") == [1712.3]
    assert answers.matches_price(LATEST, [1710.0, None]) == 1712.3            # within 0.5 %
    assert answers.matches_price(LATEST, [1800.0]) is None


def test_unavailable_wording_in_english_and_chinese():
    assert answers.says_unknown("999999.SH is not a known code. The price is unavailable.")
    assert answers.says_unknown("代码 999999.SH 不存在，无法查询价格。")
    assert not answers.says_unknown(LATEST)
    assert answers.says_price_unavailable("Sorry, the price of 600519.SH is unavailable right now.")
    assert not answers.says_price_unavailable(LATEST)


def test_answer_judgement_per_check():
    assert phase.judge_answer("latest_quote", LATEST, [1712.3, 1712.3])[:2] == ([], [])
    flags, why, _ = phase.judge_answer("latest_quote", "Sorry, the price of 600519.SH is unavailable right now.", [1712.3])
    assert flags == ["price_unavailable"]
    hist = "The close of 600519.SH on 2024-01-02 was 1685.00 yuan (close_raw); close_qfq is 1600.20 yuan."
    assert phase.judge_answer("historical", hist, [1685.0, 1600.2])[:2] == ([], [])
    assert "does not give the date" in phase.judge_answer("historical", "It closed at 1685.00.", [1685.0])[1][-1]
    unknown = "999999.SH is not a known code: the price service could not find it (HTTP 502 ChainExhausted)."
    assert phase.judge_answer("unknown_code", unknown, [])[:2] == ([], [])
    assert phase.judge_answer("unknown_code", "999999.SH trades at 12.50 yuan.", [])[1]
    legacy = "The price of 600519.SH is 1712.30 yuan (value: 1712.30, close_raw: 1712.30), trade date 2026-05-11."
    assert phase.judge_answer("latest_quote", legacy, [1712.3])[0] == ["hermes_legacy_prompt"]


# ---------------------------------------------------------------- cache verdicts

T0 = dt.datetime(2026, 5, 11, 2, 0, tzinfo=dt.timezone.utc)


def s(at_s, as_of_s, fresh, status=200):
    return cache_check.Sample(at_s, status, T0 + dt.timedelta(seconds=as_of_s), fresh, "open", 0.01)


def test_cache_hit_then_refetch_is_green():
    v = cache_check.verdict([s(0, 0, 0), s(2.0, 0, 2), s(8.0, 8, 0)], ttl=6, slack=2)
    assert v.ok and v.red_flags == ()


@pytest.mark.parametrize("samples, flag", [
    ([s(0, 0, 0), s(2.0, 0, 0), s(8, 8, 0)], "cache_never_hit"),           # stale_freshness_zero: body says 0 on a hit
    ([s(0, 0, 0), s(2.0, 2, 0), s(8, 8, 0)], "cache_never_hit"),           # a refetch inside the TTL (TTL 0, always closing)
    ([s(0, -60, 60), s(2.0, -64, 66), s(8, -60, 60)], "clock_backwards"),  # as_of going back
    ([s(0, 0, 0), s(2.0, 0, 2), s(8.0, 0, 8)], "cache_never_expires"),
    ([s(0, 0, 0), s(2.0, 0, 9), s(8.0, 8, 0)], "freshness_gap_mismatch"),
])
def test_cache_red_flags(samples, flag):
    v = cache_check.verdict(samples, ttl=6, slack=2)
    assert not v.ok and flag in v.red_flags, v


def test_cache_sampling_starts_on_a_fresh_quote_and_waits_past_ttl_plus_slack():
    now = [0.0]
    slept = []
    fresh = iter([5, 0, 2, 0])         # first call: nearly expired (ttl 6) -> wait and re-call

    def get():
        return cache_check.Sample(now[0], 200, T0, next(fresh), "open")

    def sleep(x):
        slept.append(round(x, 3))
        now[0] += x

    out = cache_check.sample(get, ttl=6, slack=2, sleep=sleep, clock=lambda: now[0])
    assert len(out) == 3 and slept[0] == 3.0                   # 6 - 5 + 2
    assert slept[1] == cache_check.plan_gap(6) == 2.0
    assert out[2].at - out[1].at + 0 >= 0 and now[0] - 3.0 >= 6 + 2   # third call at >= TTL + slack after the fetch


# ---------------------------------------------------------------- hermes-reinstall: files and skills list

def test_skill_files_compare_by_sha256(tmp_path):
    repo, inst = tmp_path / "repo", tmp_path / "skills" / "research" / "stock-research"
    for d in (repo, inst):
        d.mkdir(parents=True)
        (d / "SKILL.md").write_text("---\nname: stock-research\n---\n")
    assert hermes_phase.find_installed(tmp_path / "skills", "stock-research") == inst      # one category deep
    assert not any(hermes_phase.compare(hermes_phase.digests(repo), hermes_phase.digests(inst)).values())
    (inst / "SKILL.md").write_text("old")
    (inst / "extra.md").write_text("x")
    (repo / "ref.md").write_text("y")
    assert hermes_phase.compare(hermes_phase.digests(repo), hermes_phase.digests(inst)) == {
        "missing": ["ref.md"], "extra": ["extra.md"], "differ": ["SKILL.md"]}


def test_skills_list_lines():
    from twilight_ops.hermes_output import skill_state

    def listed(text: str, skill: str) -> bool:
        return skill_state(text, skill) is not None

    assert listed("notes  Take notes\nstock-research  Research an A-share stock\n", "stock-research")
    assert listed("│ stock-research │ Research │\n", "stock-research")
    assert not listed("stock-research-old  x\nnotes  stock-research helper\n", "stock-research")


# ---------------------------------------------------------------- config

def settings(**over):
    raw = copy.deepcopy(DEFAULTS)
    raw.update(over)
    return load_settings(raw)


def test_agent_config_defaults():
    st = settings()
    assert st.hermes_command == ("hermes",) and st.hermes_home is None and st.hermes_restart == ("auto",)
    # Hermes 0.19: `chat -Q -q` prints the answer alone; no register line exists, so none is looked for
    assert st.agent_chat_command == ("hermes", "chat", "-Q", "-q", "{prompt}") and st.agent_retries == 1
    assert st.hermes_register_pattern == ""
    assert st.hermes_skill == "stock-research" and st.cache_ttl_seconds == 60.0 and st.cache_slack_seconds == 5.0
    assert hermes_phase.startup_log(st).as_posix().endswith(".hermes/logs/agent.log")


@pytest.mark.parametrize("key, value, says", [
    ("agent_chat_command", "hermes chat -q", "has 0 arguments holding {prompt}"),
    ("agent_chat_command", "hermes chat -q {prompt} -x {prompt}", "has 2 arguments holding {prompt}"),
    ("agent_chat_command", "hermes 'chat", "No closing quotation"),
    ("hermes_restart", "", "is empty"),
    ("hermes_register_pattern", "registered (", "not a regular expression"),
    ("hermes_skill", "../x", "not a skill directory name"),
    ("hermes_path", "bin", "not a list of absolute directories"),
    ("agent_timeout", "abc", "not a number"),
    ("agent_retries", "1.5", "not a number"),
    ("cache_ttl_seconds", "0", "below 1"),
])
def test_bad_agent_config_is_one_line(key, value, says):
    with pytest.raises(BadInput) as e:
        settings(**{key: value})
    assert f"config twilight.{key}" in e.value.message and says in e.value.message and "\n" not in e.value.line()


# ---------------------------------------------------------------- an agent that could not answer

def test_an_unanswered_prompt_is_incomplete_never_a_pass_or_a_red_flag():
    from twilight_ops.phases.agent_smoke import Transcript, agent_row

    tr = Transcript("unknown_code", "What is the price of 999999.SH?", "", 2,
                    "the agent reported: API call failed after 3 retries: Connection error.")
    r = agent_row("unknown_code", tr, [])
    assert r.result.status is Status.UNREACHABLE and r.red_flags == ()
    assert r.result.reason.startswith("incomplete: no answer after 2 attempt(s)")
    assert r.result.evidence["agent_error"].endswith("API call failed after 3 retries: Connection error.")
    assert "model endpoint" in r.result.next_step


def test_what_counts_as_an_answer_from_the_agent_command():
    from twilight_ops.executor import Result
    from twilight_ops.phases.agent_smoke import judge_run

    def res(exited: int, out: str, err: str = "") -> Result:
        return Result("hermes chat -Q -q …", exited, out, err)

    assert judge_run(res(0, "The latest price of 600519.SH is 1712.30 yuan.\n")) == (
        "The latest price of 600519.SH is 1712.30 yuan.", None)
    # hermes -z: exit 0, its own failure line in place of the answer
    assert judge_run(res(0, "API call failed after 3 retries: Connection error.\n")) == (
        "", "the agent reported: API call failed after 3 retries: Connection error.")
    # hermes chat -Q -q with the model down: the same line on stdout, exit 1
    assert judge_run(res(1, "API call failed after 1 retries: Connection error.\n", "session_id: 2026…\n")) == (
        "", "the agent reported: API call failed after 1 retries: Connection error. (exit 1)")
    assert judge_run(res(2, "", "hermes: error: invalid choice\n")) == ("", "exit 2: hermes: error: invalid choice")
    assert judge_run(res(0, "  \n")) == ("", "no answer")
    assert judge_run(res(0, "(empty)\n")) == ("", "the agent reported: (empty)")
    assert judge_run(res(1, "The price is 1712.30 yuan.\n", "Traceback …\n")) == ("", "exit 1: Traceback …")
    assert judge_run(CheckFailed("`hermes` did not finish within 180 s on this machine", "x")) == (
        "", "`hermes` did not finish within 180 s on this machine")
