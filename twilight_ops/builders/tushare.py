"""The Tushare token check, run on tvps by `python3 -` with this script on stdin.

The token never leaves tvps and never appears in an argv there: the script reads
TUSHARE_TOKEN from the env file itself, POSTs Tushare's documented body
({"api_name", "token", "params", "fields"}) and prints one JSON line with the reply's
code and msg, and `days` ({YYYYMMDD: is_open}: the trading calendar, for agent-smoke).  Parameters travel as one JSON string literal, never formatted
into code.

`reply_problem(code, msg)` says what a non-zero reply means: Tushare answers HTTP 200
with `{"code", "msg", "data": null}`; a bad or expired token is code 40101
("您的token不对，请确认。", seen live; not in Tushare's docs), 40203 is rate-limited or
not entitled to the API.
"""
from __future__ import annotations

import json

ARGV = ["python3", "-"]

_SCRIPT = r'''
import json, sys, urllib.request, urllib.error
P = json.loads(PARAMS)

def out(**kw):
    print(json.dumps(kw)); sys.exit(0)

token = None
try:
    with open(P["env_file"], encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line.startswith("export "):
                line = line[7:].lstrip()
            if line.startswith("TUSHARE_TOKEN="):
                token = line.split("=", 1)[1].strip().strip('"').strip("'")
except OSError as e:
    out(ok=False, kind="env_file", detail=f"cannot read {P['env_file']}: {e.strerror}")
if not token:
    out(ok=False, kind="no_token", detail=f"no TUSHARE_TOKEN in {P['env_file']}")
body = json.dumps({"api_name": "trade_cal", "token": token, "params": {"exchange": "SSE", "start_date": P["start"], "end_date": P["end"]},
                   "fields": "exchange,cal_date,is_open"}).encode()
req = urllib.request.Request(P["url"], data=body, headers={"Content-Type": "application/json"}, method="POST")
try:
    with urllib.request.urlopen(req, timeout=P["timeout"]) as resp:
        reply = json.loads(resp.read().decode("utf-8", "replace"))
except (urllib.error.URLError, OSError, ValueError) as e:
    out(ok=False, kind="unreachable", detail=str(getattr(e, "reason", e)).replace(token, "***"))
code = reply.get("code") if isinstance(reply, dict) else None
msg = str(reply.get("msg", "")) if isinstance(reply, dict) else "not a JSON object"
items = ((reply.get("data") or {}).get("items") or []) if isinstance(reply, dict) else []
fields = ((reply.get("data") or {}).get("fields") or []) if isinstance(reply, dict) else []
days = {}
if "cal_date" in fields and "is_open" in fields:
    i, j = fields.index("cal_date"), fields.index("is_open")
    days = {str(it[i]): int(it[j]) for it in items if isinstance(it, list) and len(it) > max(i, j)}
out(ok=code == 0, kind="reply", code=code, msg=msg.replace(token, "***")[:200], rows=len(items), days=days)
'''


def check_script(env_file: str, url: str, start: str, end: str, timeout: float = 15.0) -> str:
    params = json.dumps({"env_file": env_file, "url": url, "start": start, "end": end, "timeout": timeout},
                        ensure_ascii=True, sort_keys=True)
    return f"PARAMS = {params!r}\n" + _SCRIPT


BAD_TOKEN = 40101
NOT_ENTITLED = 40203


def reply_problem(code: object, msg: object) -> tuple[str, str]:
    """(what a non-zero Tushare reply means, what to do) — pure."""
    said = f"Tushare answered code {code}: {msg}"
    if code == BAD_TOKEN:
        return (f"the Tushare token is wrong or expired ({said})",
                "renew the token on tushare.pro and update TUSHARE_TOKEN in the env file on tvps")
    if code == NOT_ENTITLED:
        return (f"Tushare refused trade_cal: rate-limited or the account is not entitled ({said})",
                "wait a minute and re-run; else check the account's points on tushare.pro")
    return said, "renew the token and update TUSHARE_TOKEN in the env file on tvps"
