"""T+00:35: `inv agent-smoke` — the runbook's four live checks, at API level and agent level.

    run(t, sleep=time.sleep) -> AgentSmokeReport

API level (httpx with the operator token, deterministic):
  latest_quote  W4 envelope; during OPEN freshness < 120; market_state == the state of the
                Asia/Shanghai clock + trading calendar (Tushare trade_cal from tvps, else weekdays)
  historical    600519.SH on 2024-01-02: trade_date 2024-01-02, close_qfq a number
  cache         cache_check.sample/verdict during OPEN; SKIP at other times
  unknown_code  999999.SH answers 502 (not 500), and the backend log (over SSH) shows the 502
Agent level (the configured chat command, the three prompts at once, timeout + retries, while the
API-level checks run; answers judged against the API's numbers fetched just before and just after):
  latest_quote  a price within 0.5 % of close_raw or close_qfq, not "price unavailable"
  historical    the 2024-01-02 close (within 0.5 %) and the date, in any form (answers.gives_date)
  cache         SKIP: no agent form
  unknown_code  no price at all, and negative wording (English or Chinese: not, n't, unknown, 无, 不存在 …)
Every answer is also checked for the §4 legacy-prompt symptom (hermes_legacy_prompt).
The transcripts and checks go into the journal (step agent-smoke); `inv diagnose` reads them.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import threading
import time
from typing import Any, Callable, TypeVar

from .. import answers, cache_check, hermes_output, market
from ..clock import now_utc
from ..errors import TwilightError
from ..results import CheckResult, Status, exit_code
from ..runbook import AGENT_CHECKS as CHECK_IDS
from ..runbook import AGENT_MEANINGS, Steps
from ..target import Target

CODE = "600519.SH"
HISTORY_DATE = dt.date(2024, 1, 2)
UNKNOWN_CODE = "999999.SH"
PROMPTS = {   # runbook T+00:35, word for word
    "latest_quote": "What is the current price of 贵州茅台 (600519)?",
    "historical": "What was the close of 600519 on 2024-01-02?",
    "unknown_code": "What is the price of 999999.SH?",
}
PROMPT_CODES = {"latest_quote": (CODE,), "historical": (CODE,), "unknown_code": (UNKNOWN_CODE,)}   # what each prompt asks for
WAITING = "agent-smoke: the API checks, then three prompts to the agent at once (Hermes) …"   # the wait's one line
FRESH_OPEN_S = 120
STALE_S = 86_400
LOG_TAIL = 200
ROLLBACK = "T+00:50: any red flag and no <5-min forward fix: execute the rollback (runbook §2)"


@dataclasses.dataclass(frozen=True)
class Row:
    level: str                      # "api" | "agent"
    result: CheckResult
    red_flags: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        r = self.result
        return {"id": r.id, "level": self.level, "status": r.status.value,
                "red_flags": [{"code": c, "meaning": AGENT_MEANINGS.get(c, "")} for c in self.red_flags],
                "evidence": {"reason": r.reason, **dict(r.evidence), **({"next_step": r.next_step} if r.next_step else {})}}


@dataclasses.dataclass(frozen=True)
class AgentSmokeReport:
    rows: tuple[Row, ...]
    calendar: str
    expected_state: str

    @property
    def results(self) -> tuple[CheckResult, ...]:
        return tuple(r.result for r in self.rows)

    @property
    def green(self) -> bool:
        return exit_code(self.results) == 0

    def to_json(self) -> dict[str, Any]:
        return {"checks": [r.to_json() for r in self.rows], "verdict": "green" if self.green else "red"}


def row(level: str, id: str, flags: list[str], reasons: list[str], ok_reason: str, evidence: dict[str, Any]) -> Row:
    """FAIL when any flag or reason, else PASS."""
    flags = list(dict.fromkeys(flags))
    if flags or reasons:
        why = "; ".join(reasons) or ", ".join(flags)
        return Row(level, CheckResult(id, Status.FAIL, why, evidence, ROLLBACK if flags else "see the evidence"), tuple(flags))
    return Row(level, CheckResult(id, Status.PASS, ok_reason, evidence))


# ---------------------------------------------------------------- pure judgements

def parse_json(text: str) -> dict[str, Any] | None:
    try:
        body = json.loads(text)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def parse_instant(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        out = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return out if out.tzinfo else None


def judge_latest(status: int | None, body: dict | None, envelope_flags: list[str], expected: set[str]) -> tuple[list[str], list[str], dict]:
    """(flags, reasons, evidence) for API check 1; `expected` = the states the clock allowed during the call."""
    flags, why = [], []
    ev: dict[str, Any] = {"http_status": status, "expected_market_state": sorted(expected)}
    if status != 200 or body is None or envelope_flags:
        flags.append("not_w4")
        why.append(f"HTTP {status}: not a W4 body ({', '.join(envelope_flags) or 'no JSON object'})")
        return flags, why, ev
    fresh, state = body.get("freshness_seconds"), body.get("market_state")
    ev.update({k: body.get(k) for k in ("close_raw", "close_qfq", "as_of", "freshness_seconds", "market_state", "source")})
    if state not in expected:
        flags.append("market_state_mismatch")
        why.append(f"market_state {state!r}, but the clock and calendar say {' or '.join(sorted(expected))}")
    if isinstance(fresh, (int, float)):
        if "open" in expected and state == "open" and fresh >= FRESH_OPEN_S:
            flags.append("not_fresh_open")
            why.append(f"freshness_seconds {fresh} during OPEN (must be < {FRESH_OPEN_S})")
        if fresh > STALE_S and not expected & {"closed_final", "closed", "pre_open"}:
            flags.append("stale_value")
            why.append(f"freshness_seconds {fresh} > {STALE_S} outside CLOSED_FINAL")
    return flags, why, ev


def literal_rule_note(fresh: Any, state: Any) -> str:
    """Why a PASS that the runbook's literal rule (freshness > 86400 s outside CLOSED_FINAL) would flag
    is still a PASS: outside a session the quote is the last session's close ('' when the rule does not
    bite; pure)."""
    if not isinstance(fresh, (int, float)) or fresh <= STALE_S or state == "closed_final":
        return ""
    return (f"freshness {fresh:g} s: {state} serves the last session's close "
            f"(the runbook's literal rule flags > {STALE_S} s outside CLOSED_FINAL)")


def judge_historical(status: int | None, body: dict | None) -> tuple[list[str], list[str], dict]:
    ev: dict[str, Any] = {"http_status": status}
    if status != 200 or body is None:
        return [], [f"HTTP {status}: no history body for {CODE} on {HISTORY_DATE}"], ev
    ev.update({k: body.get(k) for k in ("trade_date", "close_raw", "close_qfq", "adj_factor", "source")})
    flags, why = [], []
    if body.get("trade_date") != HISTORY_DATE.isoformat():
        why.append(f"trade_date is {body.get('trade_date')!r}, not {HISTORY_DATE}")
    qfq, raw = body.get("close_qfq"), body.get("close_raw")
    if not _number(qfq):
        if qfq is None and _number(raw):
            flags.append("historical_qfq_missing")
            why.append("close_qfq is null while close_raw is present")
        else:
            why.append(f"close_qfq is {qfq!r}, not a number")
    return flags, why, ev


def judge_unknown(status: int | None, log_line: str | None) -> tuple[list[str], list[str], dict]:
    ev: dict[str, Any] = {"http_status": status, "backend_log": log_line}
    if status == 500:
        return ["unknown_code_500"], [f"{UNKNOWN_CODE} answered HTTP 500, not 502"], ev
    if status != 502:
        return [], [f"{UNKNOWN_CODE} answered HTTP {status}, not 502"], ev
    if log_line is None:
        return [], ["HTTP 502, but the backend log's last 200 lines do not show it"], ev
    return [], [], ev


def judge_answer(check: str, answer: str, refs: list[float | None]) -> tuple[list[str], list[str], dict]:
    """Agent level: one answer against the API's numbers."""
    from ..diagnose import legacy_value_mention

    flags, why = [], []
    ev: dict[str, Any] = {"answer": answer[:600], "api_closes": [r for r in refs if _number(r)]}
    legacy = legacy_value_mention(answer)
    if legacy:
        flags.append("hermes_legacy_prompt")
        why.append(f"the answer {legacy}")
    if check == "unknown_code":
        why += answers.unknown_code_problems(answer)
        return flags, why, ev
    if check == "latest_quote" and answers.says_price_unavailable(answer, refs):
        flags.append("price_unavailable")
        why.append("the agent says the price is unavailable")
    hit = answers.matches_price(answer, refs)
    ev["price_in_answer"] = hit
    if hit is None and "price_unavailable" not in flags:
        why.append(f"no price within 0.5 % of close_raw/close_qfq ({', '.join(f'{r:g}' for r in ev['api_closes']) or 'none'})")
    if check == "historical" and not answers.gives_date(answer, HISTORY_DATE):
        why.append(f"the answer does not give the date {HISTORY_DATE}")
    return flags, why, ev


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


# ---------------------------------------------------------------- impure: what the phase asks

def trading_calendar(t: Target, today: dt.date) -> tuple[bool, str]:
    """Is `today` a trading day: Tushare's trade_cal (run from tvps with its token), else weekdays."""
    from ..builders import tushare

    script = tushare.check_script(t.layout.env_file, t.settings.tushare_url,
                                  (today - dt.timedelta(days=7)).strftime("%Y%m%d"), today.strftime("%Y%m%d"))
    why = ""
    try:
        r = t.ssh.run(tushare.ARGV, stdin=script, check=False, timeout=60)
        out = json.loads((r.stdout.strip().splitlines() or ["{}"])[-1])
    except (TwilightError, ValueError) as e:
        out, why = {}, getattr(e, "message", str(e))[:160]
    if isinstance(out, dict) and out.get("ok"):
        day = market.trading_day(out.get("days") or {}, today)
        if day is not None:
            return day, "Tushare trade_cal"
        why = f"trade_cal has no row for {today}"
    elif isinstance(out, dict) and out:
        why = str(out.get("detail") or tushare.reply_problem(out.get("code"), out.get("msg"))[0])[:160]
    return market.weekday(today), f"weekdays (Tushare trade_cal not reachable: {why or 'no answer'})"


class Api:
    """GET /price from this machine with the operator token; bodies parsed."""

    def __init__(self, t: Target):
        self.settings, self.token = t.settings, t.token

    def get(self, code: str, date: str | None = None) -> tuple[int | None, dict | None, Any]:
        from ..api import get_price

        resp = get_price(self.settings, self.token, code, date)
        return resp.status, parse_json(resp.body) if resp.status is not None else None, resp


def _unreachable(level: str, id: str, resp: Any) -> Row:
    return Row(level, CheckResult(id, Status.UNREACHABLE, f"the API did not answer: {resp.transport_error}", {},
                                  "check the API and the network, then re-run `inv agent-smoke`"))


def api_latest(t: Target, api: Api, trading: bool) -> Row:
    from ..envelope import evaluate

    offset = t.settings.clock_offset_seconds
    before = market.expected_state(now_utc(offset), trading)
    status, body, resp = api.get(CODE)
    after = market.expected_state(now_utc(offset), trading)
    if status is None:
        return _unreachable("api", "latest_quote", resp)
    verdict = evaluate(status, resp.body, "w4", now_utc(offset), t.settings.thresholds.adj_tolerance)
    flags, why, ev = judge_latest(status, body, [f.code for f in verdict.red_flags], {before, after})
    note = literal_rule_note(ev.get("freshness_seconds"), ev.get("market_state"))
    return row("api", "latest_quote", flags, why,
               f"W4; market_state {ev.get('market_state')} as expected; "
               + (note or f"freshness {ev.get('freshness_seconds')} s"), ev)


def api_historical(api: Api) -> Row:
    status, body, resp = api.get(CODE, HISTORY_DATE.isoformat())
    if status is None:
        return _unreachable("api", "historical", resp)
    flags, why, ev = judge_historical(status, body)
    return row("api", "historical", flags, why, f"trade_date {HISTORY_DATE}, close_qfq {ev.get('close_qfq')}", ev)


def api_cache(t: Target, api: Api, expected: str, calendar: str, sleep: Callable[[float], None]) -> Row:
    s = t.settings
    if expected != "open":
        local = market.shanghai(now_utc(s.clock_offset_seconds)).strftime("%Y-%m-%d %H:%M")
        return Row("api", CheckResult("cache", Status.SKIP,
                                      f"only meaningful during OPEN; the market is {expected} ({local} Asia/Shanghai, {calendar})",
                                      {"expected_market_state": expected}))

    def get() -> cache_check.Sample:
        t0 = time.monotonic()
        status, body, _ = api.get(CODE)
        t1 = time.monotonic()
        body = body or {}
        fresh = body.get("freshness_seconds")
        return cache_check.Sample((t0 + t1) / 2, status, parse_instant(body.get("as_of")),
                                  fresh if isinstance(fresh, int) and not isinstance(fresh, bool) else None,
                                  body.get("market_state"), t1 - t0)

    def pause(seconds: float) -> None:      # the TTL the check must see pass: traced (bench counts it as a wait)
        from .. import trace

        trace.record("local", "sleep", seconds=round(seconds, 3), why="cache check")
        sleep(seconds)

    samples = cache_check.sample(get, s.cache_ttl_seconds, s.cache_slack_seconds, pause, time.monotonic)
    v = cache_check.verdict(samples, s.cache_ttl_seconds, s.cache_slack_seconds)
    ev = {"ttl_seconds": s.cache_ttl_seconds, "slack_seconds": s.cache_slack_seconds,
          "calls": [x.as_dict() for x in samples]}
    return row("api", "cache", list(v.red_flags), [] if v.ok else [v.reason], v.reason, ev)


def api_unknown(t: Target, api: Api) -> Row:
    from ..builders.compose import compose_logs
    from ..secret import redact, scrub

    status, _, resp = api.get(UNKNOWN_CODE)
    if status is None:
        return _unreachable("api", "unknown_code", resp)
    r = t.ssh.run(compose_logs(t.layout, LOG_TAIL), check=False, timeout=60)
    lines = redact(scrub(r.stdout + r.stderr, t.token)).splitlines() if r.ok else []
    mine = [ln for ln in lines if UNKNOWN_CODE in ln]
    line = next((ln for ln in reversed(mine) if re.search(r"\b502\b", ln)), None)
    flags, why, ev = judge_unknown(status, line)
    if status != 502 and mine:
        ev["backend_log"] = mine[-1][:300]
    if not r.ok:
        ev["backend_log_error"] = (r.stderr.strip().splitlines() or ["no output"])[-1][:200]
    return row("api", "unknown_code", flags, why, f"HTTP 502; backend log: {(line or '')[:160]}", ev)


@dataclasses.dataclass(frozen=True)
class Transcript:
    check: str
    prompt: str
    answer: str
    attempts: int
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


AGENT_CHECKS = ("latest_quote", "historical", "unknown_code")


def ask_all(t: Target, checks: tuple[str, ...] = AGENT_CHECKS) -> dict[str, Transcript]:
    """The runbook's prompts through the configured agent command, all at once (each its own
    process: the wait is the slowest prompt's, not the sum), with `agent_timeout`; a prompt that
    got no answer is asked again, up to `agent_retries` more times.
    The agent's /price calls are made on the tool's behalf: each prompt's window and codes go into
    the own-calls record (in prompt order, also when cut off), so preflight does not count them."""
    from .. import own_calls

    s = t.settings
    started = now_utc(s.clock_offset_seconds)
    ended: dict[str, dt.datetime] = {}
    try:
        return _ask_all(t, checks, ended)
    finally:
        for check in checks:
            own_calls.record_prompt(s, started, ended.get(check) or now_utc(s.clock_offset_seconds),
                                    PROMPT_CODES[check], check)


def _ask_all(t: Target, checks: tuple[str, ...], ended: dict[str, dt.datetime]) -> dict[str, Transcript]:
    from ..builders import hermes as hermes_cmd
    from .hermes import hermes_env

    s = t.settings
    local = t.local.child(env=hermes_env(s))
    errors: dict[str, str] = {}
    done: dict[str, Transcript] = {}
    pending = list(checks)
    for attempt in range(1, s.agent_retries + 2):
        argvs = [hermes_cmd.agent_chat(s.agent_chat_command, PROMPTS[c]) for c in pending]
        results = local.run_all(argvs, timeout=s.agent_timeout)
        now = now_utc(s.clock_offset_seconds)
        for check, r in zip(pending, results):
            ended[check] = now
            answer, error = judge_run(r)
            if error is None:
                done[check] = Transcript(check, PROMPTS[check], answer[:4000], attempt)
            else:
                errors[check] = error
        pending = [c for c in pending if c not in done]
        if not pending:
            break
    for check in pending:
        done[check] = Transcript(check, PROMPTS[check], "", s.agent_retries + 1, errors[check])
    return {c: done[c] for c in checks}


def judge_run(r: Any) -> tuple[str, str | None]:
    """(answer, None) for a real answer; ("", why) when the agent did not answer (pure)."""
    from .hermes import tail

    if isinstance(r, TwilightError):          # a timeout, a missing program
        return "", r.message
    answer = r.stdout.strip()
    failure = hermes_output.agent_failure(answer)       # None: a real answer
    if r.ok and failure is None:
        return answer, None
    # Hermes prints a model/provider failure in place of the answer, on stdout, and exits 0
    # (`hermes -z`) or 1 (`hermes chat -Q -q`): that line is the evidence, not an answer
    if failure and answer:
        return "", f"the agent reported: {failure}" + ("" if r.ok else f" (exit {r.exited})")
    return "", (f"exit {r.exited}: {tail(r.stderr or r.stdout, 3) or 'no answer'}" if not r.ok else "no answer")


def agent_row(check: str, tr: Transcript, refs: list[float | None]) -> Row:
    if not tr.answer:     # INCOMPLETE: the agent could not answer, so nothing was judged (never a PASS)
        return Row("agent", CheckResult(check, Status.UNREACHABLE,
                                        f"incomplete: no answer after {tr.attempts} attempt(s): {tr.error}",
                                        {"prompt": tr.prompt, "agent_error": tr.error},
                                        "check the agent's model endpoint and provider (the line above is the "
                                        "agent's own), then `inv agent-smoke`; twilight.agent_chat_command, "
                                        "twilight.agent_timeout"))
    flags, why, ev = judge_answer(check, tr.answer, refs)
    ev = {"prompt": tr.prompt, **ev, "attempts": tr.attempts}
    ok = {"latest_quote": f"price {ev.get('price_in_answer')} matches the API",
          "historical": f"the {HISTORY_DATE} close {ev.get('price_in_answer')} and the date",
          "unknown_code": "says the code is unknown/unavailable; no price"}[check]
    return row("agent", check, flags, why, ok, ev)


def _closes(body: dict | None) -> list[float | None]:
    return [body.get("close_raw"), body.get("close_qfq")] if body else []


A = TypeVar("A")
B = TypeVar("B")


def beside(work: Callable[[], A], here: Callable[[], B]) -> tuple[A, B]:
    """`work` in a thread while `here` runs in this one (the agent prompts: Ctrl-C reaches run_all,
    which kills them); `work`'s exception is raised here once both are done."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = work()
        except BaseException as e:       # raised again in the caller's thread
            box["error"] = e

    th = threading.Thread(target=target, daemon=True)
    th.start()
    mine = here()
    th.join()
    if "error" in box:
        raise box["error"]
    return box["value"], mine


def run(t: Target, sleep: Callable[[float], None] = time.sleep) -> AgentSmokeReport:
    s = t.settings
    api = Api(t)
    today = market.shanghai(now_utc(s.clock_offset_seconds)).date()
    trading, calendar = trading_calendar(t, today)
    expected = market.expected_state(now_utc(s.clock_offset_seconds), trading)
    # the API's numbers just before and just after the answers: a price moving meanwhile stays judged
    targets = {"latest_quote": (CODE, None), "historical": (CODE, HISTORY_DATE.isoformat())}
    refs: dict[str, list[float | None]] = {c: _closes(api.get(code, date)[1]) for c, (code, date) in targets.items()}
    # the API-level checks run while the agent answers (the prompts take seconds each, the cache check
    # TTL + slack): the agent's own /price calls can only hit the cache inside the cache check's TTL
    # window or refetch after it, which is what the check expects of any caller
    rows, asked = beside(lambda: [api_latest(t, api, trading), api_historical(api),
                                  api_cache(t, api, expected, calendar, sleep), api_unknown(t, api)],
                         lambda: ask_all(t))
    for c, (code, date) in targets.items():
        refs[c] += _closes(api.get(code, date)[1])
    transcripts = [asked[c] for c in AGENT_CHECKS]
    rows += [agent_row(c, asked[c], refs.get(c, [])) for c in AGENT_CHECKS]
    rows.append(Row("agent", CheckResult("cache", Status.SKIP, "the cache check has no agent form")))
    order = {c: i for i, c in enumerate(CHECK_IDS)}
    rows.sort(key=lambda r: (order[r.result.id], r.level != "api"))
    report = AgentSmokeReport(tuple(rows), calendar, expected)
    journal = t.journal()
    with t.journals.step(journal, Steps.AGENT_SMOKE) as step:
        step.evidence.update({"calendar": calendar, "expected_market_state": expected,
                              "checks": report.to_json()["checks"],
                              "transcripts": [tr.as_dict() for tr in transcripts]})
        step.outcome = "ok" if report.green else "red"
    flags = sorted({f for r in rows for f in r.red_flags})
    t.audit(Steps.AGENT_SMOKE, "green" if report.green else "red", ",".join(flags))
    return report


def latest_transcripts(journal) -> list[str]:
    """The answers of the latest agent-smoke run recorded in a journal (for `inv diagnose`)."""
    step = journal.last(Steps.AGENT_SMOKE) if journal is not None else None
    if step is None:
        return []
    return [str(tr.get("answer", "")) for tr in step.evidence.get("transcripts", []) if tr.get("answer")]
