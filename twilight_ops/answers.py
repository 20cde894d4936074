"""What an agent's answer says, checked against the API's numbers (runbook T+00:35, agent level).

Pure: plain strings and numbers in, plain values out.

    prices(text)                    the numbers an answer gives (codes, dates and HTTP statuses removed)
    matches_price(text, refs, tol)  a number within `tol` (0.5 %) of one of the reference closes
    says_unavailable(text)          "price unavailable" / unknown-code wording, English or Chinese
    gives_date(text, day)           the date, as 2024-01-02, 2024/01/02, 20240102 or 2024年1月2日
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Iterable

PRICE_TOLERANCE = 0.005

_CODE_RE = re.compile(r"(?<![\d.])\d{6}(?:\.(?:SH|SZ|BJ))?(?![\d])", re.IGNORECASE)
_DATE_RE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}(?:[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?|\d{4}/\d{1,2}/\d{1,2}|\d{4}年\d{1,2}月\d{1,2}日")
_HTTP_RE = re.compile(r"\b(?:HTTP|status|code)\s*[:=]?\s*\d{3}\b", re.IGNORECASE)
_NUMBER_RE = re.compile(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w])|(?<![\w.])\d+(?:\.\d+)?(?![\w])")

UNAVAILABLE = re.compile(
    r"unavailable|not available|not a known|unknown|not found|could not find|cannot find|no such|invalid|"
    r"does not exist|doesn't exist|not (?:a )?(?:valid|listed)|无法|不可用|未知|不存在|找不到|查不到|没有找到|无效|暂无",
    re.IGNORECASE)
PRICE_UNAVAILABLE = re.compile(r"price[^.。]*(?:unavailable|not available)|价格[^。]*(?:不可用|无法)|(?:unavailable|无法获取)",
                               re.IGNORECASE)


def prices(text: str) -> list[float]:
    """Every number left after removing stock codes, dates/times and HTTP statuses."""
    rest = _DATE_RE.sub(" ", text)
    rest = _CODE_RE.sub(" ", rest)
    rest = _HTTP_RE.sub(" ", rest)
    out = []
    for m in _NUMBER_RE.finditer(rest):
        try:
            out.append(float(m.group(0).replace(",", "")))
        except ValueError:
            continue
    return out


def near(value: float, reference: float, tolerance: float = PRICE_TOLERANCE) -> bool:
    return reference > 0 and abs(value - reference) <= tolerance * reference


def matches_price(text: str, references: Iterable[float | None], tolerance: float = PRICE_TOLERANCE) -> float | None:
    """The first number in the answer within `tolerance` of a reference close, else None."""
    refs = [r for r in references if isinstance(r, (int, float)) and not isinstance(r, bool)]
    for value in prices(text):
        if any(near(value, r, tolerance) for r in refs):
            return value
    return None


def says_price_unavailable(text: str) -> bool:
    return bool(PRICE_UNAVAILABLE.search(text))


def says_unknown(text: str) -> bool:
    return bool(UNAVAILABLE.search(text))


def gives_date(text: str, day: dt.date) -> bool:
    forms = (day.isoformat(), day.strftime("%Y/%m/%d"), day.strftime("%Y%m%d"),
             f"{day.year}年{day.month}月{day.day}日", f"{day.year}-{day.month}-{day.day}")
    return any(f in text for f in forms)
