"""The model stand-in's script (pure): which turn of the real Hermes tool loop comes next,
the answer wordings, and the OpenAI-compatible encodings (SSE chunks, a whole completion).

Hermes Agent 0.19.0 sends the whole conversation on every call; the turn is chosen from the
last user message and the tool results after it, never from the system prompt (it holds the
date, cwd and host):

    1. no skill_view result yet      → tool call skill_view {"name": "stock-research"}
    2. the skill text, no terminal   → tool call terminal {"command": "curl -sS -H @<header file> …/price?code=…"}
    3. the terminal output           → the answer, built from the HTTP status and body curl printed

The header file (`Authorization: Bearer …`, mode 600) is read by curl: the token is never in
argv, in a message or in a log.  A skill_view error (skill disabled, missing, another profile)
ends the loop with "I don't have a tool for stock prices".  The answer style is the active
fault (operator_side.set_hermes_fault) or, when the skill text is the v0.2.0 SKILL.md (it
says `value`, not close_raw), the legacy template.
"""
from __future__ import annotations

import dataclasses
import json
import re
import shlex
import urllib.parse
from datetime import date, datetime, timedelta, timezone
from typing import Any

PRICE_SKILL = "stock-research"
STYLES = ("legacy_prompt", "price_unavailable", "verbose_wording", "verbose_wrong_date", "verbose_unavailable")
VERBOSE = ("verbose_wording", "verbose_wrong_date", "verbose_unavailable")
SHANGHAI = timezone(timedelta(hours=8))
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
NAMES = {"贵州茅台": "600519.SH", "茅台": "600519.SH", "kweichow moutai": "600519.SH", "moutai": "600519.SH",
         "平安银行": "000001.SZ", "宁德时代": "300750.SZ"}
CODE_RE = re.compile(r"(?<!\d)(\d{6})(?:\.(SH|SZ|BJ))?(?![\d])", re.IGNORECASE)
DATE_RE = re.compile(r"(?<!\d)(\d{4}-\d{2}-\d{2})(?!\d)")
HTTP_LINE = re.compile(r"\n?HTTP (\d{3})\s*$")
NO_TOOL = f"I don't have a tool for stock prices: the {PRICE_SKILL} skill is not loaded."
NO_CODE = "I could not find a stock code in your question; please give one like 600519.SH."


# ----------------------------------------------------------------------------- turns


@dataclasses.dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]
    call_id: str


@dataclasses.dataclass(frozen=True)
class Answer:
    text: str


Turn = ToolCall | Answer


@dataclasses.dataclass(frozen=True)
class Script:
    """What the stand-in knows of the twin: the /price base, the header file, the answer style."""
    api_base: str
    header_file: str
    style: str | None = None


def _text(content: Any) -> str:
    """A message's content as text (a string, or a list of {"type": "text", "text": …} parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def conversation(messages: list[dict]) -> tuple[str, dict[str, str]]:
    """(the last user message, {tool name: its latest result after that message})."""
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    prompt = _text(messages[last_user].get("content")) if last_user >= 0 else ""
    names: dict[str, str] = {}
    results: dict[str, str] = {}
    for m in messages[last_user + 1:]:
        for call in m.get("tool_calls") or []:
            names[call.get("id", "")] = (call.get("function") or {}).get("name", "")
        if m.get("role") == "tool":
            name = names.get(m.get("tool_call_id", ""), m.get("name", ""))
            results[name] = _text(m.get("content"))
    return prompt, results


def skill_text(result: str) -> str | None:
    """The SKILL.md text a skill_view result carries, or None when the skill was not found."""
    try:
        data = json.loads(result)
    except ValueError:
        return result or None
    if not isinstance(data, dict) or data.get("success") is False or data.get("error"):
        return None
    content = data.get("content")
    return content if isinstance(content, str) else json.dumps(data)


def is_legacy_skill(text: str) -> bool:
    """The v0.2.0 SKILL.md: it tells the agent to report `value`, and knows no close_raw."""
    return "`value`" in text and "close_raw" not in text


def find_code(prompt: str) -> str | None:
    lowered = prompt.lower()
    m = CODE_RE.search(prompt)
    if m:
        digits, exchange = m.group(1), (m.group(2) or "").upper()
        if not exchange:
            exchange = "SH" if digits[0] in "69" else "BJ" if digits[0] in "48" else "SZ"
        return f"{digits}.{exchange}"
    for name, code in NAMES.items():
        if name in lowered:
            return code
    return None


def find_day(prompt: str) -> str | None:
    m = DATE_RE.search(prompt)
    return m.group(1) if m else None


def curl_command(api_base: str, header_file: str, code: str, day: str | None) -> str:
    """The terminal command: curl reads the Authorization header from a file (never argv)."""
    query = urllib.parse.urlencode({"code": code, **({"date": day} if day else {})})
    url = api_base.rstrip("/") + "/price?" + query
    return shlex.join(["curl", "-sS", "-H", "@" + header_file, "-w", "\nHTTP %{http_code}\n", url])


def terminal_output(result: str) -> str:
    """The command's output from a terminal tool result ({"output", "exit_code", "error"} or text)."""
    try:
        data = json.loads(result)
    except ValueError:
        return result
    if isinstance(data, dict):
        return "\n".join(str(data[k]) for k in ("output", "stdout", "stderr", "error") if data.get(k))
    return result


def parse_curl(output: str) -> tuple[int | None, Any]:
    """(HTTP status, JSON body or text) from curl's output ending in `HTTP NNN`; (None, reason)
    when curl could not connect (HTTP 000) or printed no status."""
    text = output.rstrip()
    m = HTTP_LINE.search(text)
    if not m or m.group(1) == "000":
        reason = (text[: m.start()] if m else text).strip().splitlines()
        return None, (reason[-1] if reason else "no response")
    raw = text[: m.start()].strip()
    try:
        return int(m.group(1)), json.loads(raw)
    except ValueError:
        return int(m.group(1)), raw[:200]


def next_turn(messages: list[dict], script: Script) -> Turn:
    """The next step of the tool loop for this conversation (pure)."""
    prompt, results = conversation(messages)
    n = len(results) + 1      # the call's step in this tool loop: its id does not depend on the system prompt
    if "skill_view" not in results:
        return ToolCall("skill_view", {"name": PRICE_SKILL}, f"call_{n}_skill_view")
    skill = skill_text(results["skill_view"])
    if skill is None:
        return Answer(NO_TOOL)
    code = find_code(prompt)
    if code is None:
        return Answer(NO_CODE)
    day = find_day(prompt)
    if "terminal" not in results:
        return ToolCall("terminal", {"command": curl_command(script.api_base, script.header_file, code, day)},
                        f"call_{n}_terminal")
    status, body = parse_curl(terminal_output(results["terminal"]))
    style = script.style or ("legacy_prompt" if is_legacy_skill(skill) else None)
    return Answer(answer(prompt, status, body, code, day, style))


# ----------------------------------------------------------------------------- answers


def _num(x: Any) -> str:
    return f"{x:.2f}" if isinstance(x, (int, float)) and not isinstance(x, bool) else "n/a"


def long_day(iso: Any, shift: int = 0) -> str:
    """2024-01-02 as "Tuesday 2nd January 2024" (`shift` days later); the text itself when not a date."""
    try:
        d = date.fromisoformat(str(iso)[:10]) + timedelta(days=shift)
    except ValueError:
        return str(iso)
    suffix = "th" if 11 <= d.day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(d.day % 10, "th")
    return f"{DAYS[d.weekday()]} {d.day}{suffix} {MONTHS[d.month - 1]} {d.year}"


def long_instant(iso: Any) -> str:
    """2026-05-11T02:00:01Z as "10:00 Shanghai time on Monday 11th May 2026"."""
    try:
        t = datetime.fromisoformat(str(iso).replace("Z", "+00:00"))
    except ValueError:
        return str(iso)
    if t.tzinfo is not None:
        t = t.astimezone(SHANGHAI)
    return f"{t:%H:%M} Shanghai time on {long_day(t.date().isoformat())}"


def _yuan(x: Any) -> str:
    return f"¥{x:,.2f}" if isinstance(x, (int, float)) and not isinstance(x, bool) else "n/a"


def verbose_answer(status: int, body: Any, code: str, day: str | None, style: str) -> str:
    """The chattier agent (styles verbose_*): the same facts in British long form with contractions."""
    error = body.get("error", "") if isinstance(body, dict) else ""
    if status != 200 or not isinstance(body, dict):
        if status == 404:
            return f"There's no trading data for {code} on that day, I'm afraid (the service answered HTTP 404 {error})."
        if status in (400, 502):
            return (f"Sorry, I couldn't find {code}: it isn't a recognised code, so there's no quote I can give "
                    f"you (the price service answered HTTP {status} {error}).")
        return f"The price service wasn't working (HTTP {status} {error}), so I haven't got a quote for {code}."
    raw = body.get("close_raw", body.get("value"))
    field = "close_raw" if "close_raw" in body else "value"
    if day:
        qfq = body.get("close_qfq")
        qfq_text = (f"the forward-adjusted close (close_qfq) was {_yuan(qfq)}" if isinstance(qfq, (int, float))
                    else "the forward-adjusted close (close_qfq) isn't available")
        shift = 1 if style == "verbose_wrong_date" else 0
        return (f"On {long_day(body.get('trade_date', day), shift)}, {code} closed at {_yuan(raw)} ({field}); "
                f"{qfq_text}. I've taken that from {body.get('source', 'the price service')}.")
    if style == "verbose_unavailable":
        return f"Sorry, I couldn't retrieve a live quote for {code} just now; I'd try again in a minute."
    text = f"Right then: {code} is at {_yuan(raw)} ({field}), the latest quote I've got"
    if body.get("as_of"):
        text += f", as of {long_instant(body['as_of'])}"
    text += "."
    if body.get("market_state"):
        text += f" The market's {body['market_state']}"
        if isinstance(body.get("freshness_seconds"), int):
            text += f" and the figure's {body['freshness_seconds']} seconds old"
        text += "."
    return text


def answer(prompt: str, status: int | None, body: Any, code: str, day: str | None, style: str | None) -> str:
    """The final answer from what /price returned (status None: unreachable, body = the reason)."""
    if status is not None and status != 401 and style in VERBOSE:
        return verbose_answer(status, body, code, day, style)
    if status is None:
        return f"I could not reach the price service ({body}), so I cannot give a price for {code} right now."
    if status == 401:
        return "The price service rejected my operator token (HTTP 401), so I cannot look up prices."
    if status != 200 or not isinstance(body, dict):
        error = body.get("error", "") if isinstance(body, dict) else ""
        if status in (400, 404, 502):
            what = "is not a known code" if status != 404 else "has no trading data for that date"
            return (f"{code} {what}: the price service could not find it (HTTP {status} {error}). "
                    f"The price is unavailable.").replace("  ", " ")
        return f"The price service failed (HTTP {status} {error}), so the price of {code} is unavailable right now."
    if style == "price_unavailable":
        return f"Sorry, the price of {code} is unavailable right now."
    raw = body.get("close_raw", body.get("value"))
    field = "close_raw" if "close_raw" in body else "value"
    trade_date = body.get("trade_date", "an unknown date")
    if style == "legacy_prompt":
        if "value" in body:
            return (f"The price of {code} is {_num(body['value'])} yuan (value: {_num(body['value'])}, "
                    f"close_raw: {_num(body.get('close_raw'))}), trade date {trade_date}.")
        return (f"I could not parse the price of {code}: the response has no `value` field (KeyError: 'value'); "
                f"close_raw is {_num(body.get('close_raw'))}.")
    if day:
        qfq = body.get("close_qfq")
        qfq_text = (f"the forward-adjusted close (close_qfq) is {_num(qfq)} yuan" if isinstance(qfq, (int, float))
                    else "the forward-adjusted close (close_qfq) is not available")
        return (f"The close of {code} on {trade_date} was {_num(raw)} yuan ({field}); {qfq_text}. "
                f"Source: {body.get('source', 'unknown')}.")
    fresh = body.get("freshness_seconds")
    parts = [f"The latest price of {code} is {_num(raw)} yuan ({field}"
             + (f"; close_qfq {_num(body['close_qfq'])}" if isinstance(body.get("close_qfq"), (int, float)) else "") + ")",
             f"trade date {trade_date}"]
    if body.get("as_of"):
        parts.append(f"as of {body['as_of']}")
    if isinstance(fresh, int):
        parts.append(f"freshness {fresh} seconds")
    if body.get("market_state"):
        parts.append(f"market state {body['market_state']}")
    if body.get("source"):
        parts.append(f"source {body['source']}")
    return ", ".join(parts) + "."


# ----------------------------------------------------------------------------- wire formats


def _chunk(cid: str, model: str, delta: dict | None, finish: str | None = None, usage: dict | None = None) -> bytes:
    obj: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": 0, "model": model,
                           "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage is not None:
        obj["usage"] = usage
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"


USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def sse_chunks(turn: Turn, model: str, cid: str, include_usage: bool = False) -> list[bytes]:
    """The turn as the `data: …` events of a streamed chat completion, ending with `data: [DONE]`."""
    out = [_chunk(cid, model, {"role": "assistant", "content": ""})]
    if isinstance(turn, Answer):
        half = len(turn.text) // 2
        out += [_chunk(cid, model, {"content": part}) for part in (turn.text[:half], turn.text[half:]) if part]
        out.append(_chunk(cid, model, {}, "stop"))
    else:
        args = json.dumps(turn.arguments, ensure_ascii=False)
        half = len(args) // 2
        out.append(_chunk(cid, model, {"tool_calls": [{"index": 0, "id": turn.call_id, "type": "function",
                                                        "function": {"name": turn.name, "arguments": ""}}]}))
        out += [_chunk(cid, model, {"tool_calls": [{"index": 0, "function": {"arguments": part}}]})
                for part in (args[:half], args[half:]) if part]
        out.append(_chunk(cid, model, {}, "tool_calls"))
    if include_usage:
        out.append(_chunk(cid, model, None, usage=USAGE))
    return out + [b"data: [DONE]\n\n"]


def completion(turn: Turn, model: str, cid: str) -> dict:
    """The turn as one non-streamed chat completion."""
    if isinstance(turn, Answer):
        message: dict[str, Any] = {"role": "assistant", "content": turn.text}
        finish = "stop"
    else:
        message = {"role": "assistant", "content": None,
                   "tool_calls": [{"id": turn.call_id, "type": "function",
                                   "function": {"name": turn.name, "arguments": json.dumps(turn.arguments)}}]}
        finish = "tool_calls"
    return {"id": cid, "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": USAGE}


def models(model: str) -> dict:
    return {"object": "list", "data": [model_info(model)]}


def model_info(model: str) -> dict:
    return {"id": model, "object": "model", "created": 0, "owned_by": "twilight-twin"}


def respond(request: dict, script: Script, model: str, cid: str) -> Turn:
    """The turn for one chat-completions request; a request without tools (a title, a summary)
    gets a short plain answer."""
    if not request.get("tools"):
        return Answer("Stock price lookup")
    messages = request.get("messages")
    return next_turn(messages if isinstance(messages, list) else [], script)
