"""A stand-in for Nous Research's Hermes Agent CLI on the twin's operator side (stdlib only).

twin.up installs it as <twin>/operator/bin/hermes (shebang: the Python that ran twin.up).

    hermes restart                   scan $HERMES_HOME/skills, write $HERMES_HOME/logs/startup.log
                                     (rewritten on each restart) with one line per skill:
                                     "<utc> INFO hermes.skills: registered skill <name> v<version> (<path>)"
    hermes skills list               one "name  description" line per installed skill
    hermes chat -q "PROMPT" [-s NAME]
                                     answer one prompt without interaction: find the stock code
                                     (600519, 600519.SH or 贵州茅台) and a YYYY-MM-DD date in it, call
                                     GET /price on the twin with the operator token, answer in
                                     plain English sentences

HERMES_HOME defaults to ~/.hermes.  A skill is a directory holding SKILL.md, directly under
skills/ or one category folder deep, whose YAML front matter has name, description, version.
chat needs a skill named stock-research (it is the agent's tool for prices).

$HERMES_HOME/standin.json (written by twin.up):
    {"api_base": "http://127.0.0.1:PORT", "token_file": "PATH", "timeout_seconds": 10}
The token is read from token_file, never from argv or the environment.

$HERMES_HOME/standin-faults.json {"fault": NAME} (`inv twin.hermes-fault`):
    skill_missing      stock-research is not found: restart registers nothing for it,
                       skills list omits it, chat says it has no price tool
    legacy_prompt      the old prompt template: answers quote `value` beside close_raw, or
                       report a `value` parse error when the body has no `value`
    price_unavailable  the agent says the price is unavailable (after a successful call)
    verbose_wording    a chattier agent: British spelling, contractions, long-form dates
                       ("Tuesday 2nd January 2024", "10:00 Shanghai time on Monday 11th May 2026"), ¥1,712.30;
                       for an unknown code "I couldn't find 999999.SH: it isn't a recognised code …"
    verbose_wrong_date verbose_wording, but the historical answer names the day after the trade date
    verbose_unavailable verbose_wording, but the latest quote is "I couldn't retrieve a live quote …"

Exit codes: 0 answered (whatever the answer says), 1 a skill named with -s is missing,
2 bad usage or configuration (one line on stderr).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

PRICE_SKILL = "stock-research"
FAULTS = ("skill_missing", "legacy_prompt", "price_unavailable", "verbose_wording", "verbose_wrong_date",
          "verbose_unavailable")
VERBOSE = ("verbose_wording", "verbose_wrong_date", "verbose_unavailable")
SHANGHAI = timezone(timedelta(hours=8))
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
NAMES = {"贵州茅台": "600519.SH", "茅台": "600519.SH", "kweichow moutai": "600519.SH", "moutai": "600519.SH",
         "平安银行": "000001.SZ", "宁德时代": "300750.SZ"}
CODE_RE = re.compile(r"(?<!\d)(\d{6})(?:\.(SH|SZ|BJ))?(?![\d])", re.IGNORECASE)
DATE_RE = re.compile(r"(?<!\d)(\d{4}-\d{2}-\d{2})(?!\d)")


class UsageError(Exception):
    """Bad usage or configuration: one line, exit 2."""


# ----------------------------------------------------------------------------- home and skills


def hermes_home(env: dict[str, str]) -> Path:
    return Path(env.get("HERMES_HOME") or Path.home() / ".hermes").expanduser()


def active_fault(home: Path) -> str | None:
    try:
        raw = json.loads((home / "standin-faults.json").read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None
    fault = raw.get("fault") if isinstance(raw, dict) else None
    return fault if fault in FAULTS else None


def front_matter(text: str) -> dict[str, str]:
    """The `key: value` lines of a SKILL.md's leading `---` block (flat YAML scalars)."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}
    out: dict[str, str] = {}
    for line in lines[1:]:
        if line.strip() == "---":
            return out
        m = re.match(r"^([A-Za-z_][\w-]*):\s*(.*?)\s*$", line)
        if m and not line.startswith((" ", "\t")):
            value = m.group(2)
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            out[m.group(1)] = value
    return {}  # no closing ---


def scan_skills(home: Path, fault: str | None) -> tuple[list[dict[str, str]], list[str]]:
    """(skills, warnings): every SKILL.md under skills/<name>/ or skills/<category>/<name>/."""
    root = home / "skills"
    found: list[Path] = []
    if root.is_dir():
        for entry in sorted(root.iterdir()):
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            if (entry / "SKILL.md").is_file():
                found.append(entry / "SKILL.md")
            else:
                found += sorted(p / "SKILL.md" for p in entry.iterdir()
                                if p.is_dir() and not p.name.startswith(".") and (p / "SKILL.md").is_file())
    skills, warnings = [], []
    for path in found:
        rel = str(path.parent.relative_to(root))
        try:
            meta = front_matter(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as e:
            warnings.append(f"skipped {rel}: unreadable SKILL.md ({e})")
            continue
        missing = [k for k in ("name", "description", "version") if not meta.get(k)]
        if missing:
            warnings.append(f"skipped {rel}: SKILL.md front matter lacks {', '.join(missing)}")
            continue
        if fault == "skill_missing" and meta["name"] == PRICE_SKILL:
            continue
        skills.append({"name": meta["name"], "description": meta["description"], "version": meta["version"], "path": rel})
    return skills, warnings


def _stamp() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def restart(home: Path) -> int:
    skills, warnings = scan_skills(home, active_fault(home))
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    lines = [f"{_stamp()} INFO hermes: starting Hermes Agent (stand-in), HERMES_HOME={home}"]
    lines += [f"{_stamp()} WARNING hermes.skills: {w}" for w in warnings]
    lines += [f"{_stamp()} INFO hermes.skills: registered skill {s['name']} v{s['version']} ({s['path']})" for s in skills]
    lines.append(f"{_stamp()} INFO hermes: ready, {len(skills)} skill(s) registered")
    tmp = logs / "startup.log.tmp"
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, logs / "startup.log")
    names = ", ".join(s["name"] for s in skills) or "none"
    print(f"Hermes restarted: {len(skills)} skill(s) registered ({names}); log: {logs / 'startup.log'}")
    return 0


def skills_list(home: Path) -> int:
    skills, _ = scan_skills(home, active_fault(home))
    for s in skills:
        print(f"{s['name']}  {s['description']}")
    return 0


# ----------------------------------------------------------------------------- chat


def read_config(home: Path) -> dict[str, Any]:
    path = home / "standin.json"
    try:
        cfg = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"no {path}: run `inv twin.up` (it writes the stand-in's config)") from None
    except (OSError, ValueError) as e:
        raise UsageError(f"{path} is unreadable ({e}); re-run `inv twin.up`") from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("api_base"), str) or not isinstance(cfg.get("token_file"), str):
        raise UsageError(f"{path} lacks api_base or token_file; re-run `inv twin.up`")
    return cfg


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


def call_price(cfg: dict[str, Any], code: str, day: str | None) -> tuple[int | None, Any]:
    """(HTTP status, parsed JSON body or text) of GET /price; (None, reason) when unreachable."""
    try:
        token = Path(cfg["token_file"]).expanduser().read_text().strip()
    except OSError as e:
        raise UsageError(f"cannot read the operator token file named in standin.json ({e.strerror})") from None
    query = urllib.parse.urlencode({"code": code, **({"date": day} if day else {})})
    req = urllib.request.Request(cfg["api_base"].rstrip("/") + "/price?" + query,
                                 headers={"Authorization": f"Bearer {token}", "User-Agent": "hermes-standin"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    timeout = cfg.get("timeout_seconds", 10)
    try:
        with opener.open(req, timeout=timeout if isinstance(timeout, (int, float)) else 10) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        return None, str(getattr(e, "reason", e))
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode("utf-8", "replace")[:200]


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


def verbose_answer(status: int, body: Any, code: str, day: str | None, fault: str) -> str:
    """The chattier agent (faults verbose_*): the same facts in British long form with contractions."""
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
        shift = 1 if fault == "verbose_wrong_date" else 0
        return (f"On {long_day(body.get('trade_date', day), shift)}, {code} closed at {_yuan(raw)} ({field}); "
                f"{qfq_text}. I've taken that from {body.get('source', 'the price service')}.")
    if fault == "verbose_unavailable":
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


def answer(prompt: str, status: int | None, body: Any, code: str, day: str | None, fault: str | None) -> str:
    if status is not None and status != 401 and fault in VERBOSE:
        return verbose_answer(status, body, code, day, fault)
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
    if fault == "price_unavailable":
        return f"Sorry, the price of {code} is unavailable right now."
    raw = body.get("close_raw", body.get("value"))
    field = "close_raw" if "close_raw" in body else "value"
    trade_date = body.get("trade_date", "an unknown date")
    if fault == "legacy_prompt":
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


def chat(home: Path, prompt: str, skill: str | None) -> int:
    fault = active_fault(home)
    skills, _ = scan_skills(home, fault)
    names = {s["name"] for s in skills}
    if skill and skill not in names:
        print(f"error: skill {skill!r} is not installed under {home / 'skills'}", file=sys.stderr)
        return 1
    if PRICE_SKILL not in names:
        print(f"I don't have a tool for stock prices: the {PRICE_SKILL} skill is not loaded.")
        return 0
    code = find_code(prompt)
    if code is None:
        print("I could not find a stock code in your question; please give one like 600519.SH.")
        return 0
    m = DATE_RE.search(prompt)
    day = m.group(1) if m else None
    status, body = call_price(read_config(home), code, day)
    print(answer(prompt, status, body, code, day, fault))
    return 0


# ----------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hermes", description="Hermes Agent stand-in (staging twin)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("restart", help="reload skills; write logs/startup.log")
    skills_p = sub.add_parser("skills", help="manage skills")
    skills_sub = skills_p.add_subparsers(dest="skills_command", required=True)
    skills_sub.add_parser("list", help="list installed skills")
    chat_p = sub.add_parser("chat", help="chat with the agent")
    chat_p.add_argument("-q", "--query", required=True, help="answer this one prompt and exit")
    chat_p.add_argument("-s", "--skill", help="preload this skill")
    args = parser.parse_args(argv)
    home = hermes_home(dict(os.environ))
    try:
        if args.command == "restart":
            return restart(home)
        if args.command == "skills":
            return skills_list(home)
        return chat(home, args.query, args.skill)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
