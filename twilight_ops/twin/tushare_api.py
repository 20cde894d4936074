"""The twin's Tushare Pro HTTP API stand-in (http://api.tushare.pro): pure parts.

Tushare's HTTP API is one `POST /` with a JSON body
`{"api_name", "token", "params", "fields"}`; every reply is HTTP 200 with
`{"request_id", "code", "msg", "data"}`, `code` 0 on success and
`data = {"fields": [...], "items": [[...]], "has_more": false}`.

Implemented: `trade_cal` (exchange, cal_date YYYYMMDD, is_open, pretrade_date) from
weekdays (Mon–Fri open; no holiday table), newest first as Tushare returns it.
A wrong token gets Tushare's reply `code` 40101 "您的token不对，请确认。" with
`data` null (as Tushare answers it live; third parties' captures, not its docs).  An unknown api_name or unreadable body get a non-zero code as well
(their exact codes are the stand-in's, not documented by Tushare).
"""
from __future__ import annotations

import datetime as dt
import hmac
import json
import uuid
from typing import Any, Mapping

BAD_TOKEN_CODE = 40101
BAD_TOKEN_MSG = "您的token不对，请确认。"
BAD_REQUEST_CODE = -2001
TRADE_CAL_FIELDS = ("exchange", "cal_date", "is_open", "pretrade_date")
MAX_DAYS = 3660
SHANGHAI = dt.timezone(dt.timedelta(hours=8))

Reply = dict[str, Any]


def reply(code: int, msg: str, data: dict | None, request_id: str | None = None) -> Reply:
    return {"request_id": request_id or uuid.uuid4().hex, "code": code, "msg": msg, "data": data}


def bad_token(request_id: str | None = None) -> Reply:
    return reply(BAD_TOKEN_CODE, BAD_TOKEN_MSG, None, request_id)


def _day(text: str, name: str) -> dt.date:
    try:
        return dt.datetime.strptime(str(text), "%Y%m%d").date()
    except ValueError:
        raise ValueError(f"{name} {text!r} is not YYYYMMDD") from None


def previous_open(day: dt.date) -> dt.date:
    """The last weekday strictly before `day`."""
    prev = day - dt.timedelta(days=1)
    while prev.weekday() >= 5:
        prev -= dt.timedelta(days=1)
    return prev


def trade_cal_rows(start: dt.date, end: dt.date, exchange: str = "SSE", is_open: str | None = None) -> list[dict[str, Any]]:
    """One row per calendar day in [start, end], newest first."""
    if end < start:
        return []
    if (end - start).days > MAX_DAYS:
        raise ValueError(f"the range spans more than {MAX_DAYS} days")
    rows = []
    day = end
    while day >= start:
        row = {"exchange": exchange, "cal_date": day.strftime("%Y%m%d"), "is_open": 0 if day.weekday() >= 5 else 1,
               "pretrade_date": previous_open(day).strftime("%Y%m%d")}
        if is_open is None or str(row["is_open"]) == str(is_open):
            rows.append(row)
        day -= dt.timedelta(days=1)
    return rows


def table(rows: list[dict[str, Any]], fields: list[str]) -> dict[str, Any]:
    return {"fields": list(fields), "items": [[row[f] for f in fields] for row in rows], "has_more": False}


def _fields(raw: Any, known: tuple[str, ...]) -> list[str]:
    if not raw:
        return list(known)
    names = [f.strip() for f in (raw.split(",") if isinstance(raw, str) else raw) if str(f).strip()]
    unknown = [f for f in names if f not in known]
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}")
    return names


def trade_cal(params: Mapping[str, Any], fields: Any, today: dt.date) -> dict[str, Any]:
    """trade_cal's data for params start_date/end_date (default: the 30 days up to today),
    exchange (default SSE), is_open ("0"/"1")."""
    end = _day(params["end_date"], "end_date") if params.get("end_date") else today
    start = _day(params["start_date"], "start_date") if params.get("start_date") else end - dt.timedelta(days=30)
    is_open = params.get("is_open")
    rows = trade_cal_rows(start, end, str(params.get("exchange") or "SSE"), None if is_open in (None, "") else str(is_open))
    return table(rows, _fields(fields, TRADE_CAL_FIELDS))


def handle(body: bytes, accepted_token: str, today: dt.date | None = None) -> Reply:
    """Tushare's reply to one POST body."""
    request_id = uuid.uuid4().hex
    try:
        req = json.loads(body.decode("utf-8"))
        if not isinstance(req, dict):
            raise ValueError
    except (UnicodeDecodeError, ValueError):
        return reply(BAD_REQUEST_CODE, "请求参数错误：body 不是 JSON 对象", None, request_id)
    token = req.get("token")
    if not isinstance(token, str) or not accepted_token or not hmac.compare_digest(token.encode(), accepted_token.encode()):
        return bad_token(request_id)
    api_name = req.get("api_name")
    params = req.get("params") or {}
    if not isinstance(params, dict):
        return reply(BAD_REQUEST_CODE, "请求参数错误：params 不是对象", None, request_id)
    if api_name != "trade_cal":
        return reply(BAD_REQUEST_CODE, f"请指定正确的接口名 (the twin serves trade_cal only, not {api_name!r})", None, request_id)
    try:
        data = trade_cal(params, req.get("fields"), today or dt.datetime.now(SHANGHAI).date())
    except ValueError as e:
        return reply(BAD_REQUEST_CODE, f"请求参数错误：{e}", None, request_id)
    return reply(0, "", data, request_id)
