"""What an agent's answer says, checked against the API's numbers (runbook T+00:35, agent level).

Pure: plain strings and numbers in, plain values out.  dateparser is imported only by
gives_date, and only when the fast path (numeric year-first dates) has not found the day.

    prices(text)                         the numbers an answer gives: stock codes, dates, times,
                                         percentages, durations and HTTP statuses removed
    matches_price(text, refs, tol)       a number within `tol` (0.5 %) of one of the reference closes
    negative(text)                       negative wording, English or Chinese: not / no / never / n't,
                                         cannot, unable, unknown, unrecogni[sz]ed, invalid, delisted …,
                                         无 / 没有 / 不存在 / 未找到 / 查无 / 无效 / 未知 / 无法 …
    unknown_code_problems(text)          why an answer to "the price of 999999.SH?" is not the
                                         unknown-code answer: it gives a price, or it has no
                                         negative wording; [] when it is
    says_unknown(text)                   unknown_code_problems(text) == []
    says_price_unavailable(text, refs)   no price matching `refs`, and a clause that is negative
                                         about the price / quote / data without giving a number
                                         (or "unavailable" / "N/A" / 暂无 anywhere)
    gives_date(text, day)                the answer names `day`, year included, in any form
                                         dateparser reads in English or Chinese: 2024-01-02,
                                         2024/1/2, 20240102, January 2, 2024, Jan 2 2024,
                                         2 January 2024, 2nd Jan 2024, 02-Jan-2024, 2 Jan '24,
                                         1/2/2024 or 2/1/2024, 2024年1月2日, 2024 年 1 月 2 日,
                                         二〇二四年一月二日

A date is looked for only in date-shaped spans (a month name with a day and a year; a
numeric day-month-year with one separator; 年/月/日), so a price or a bare number is never
read as a date; dateparser then says which date a span is (abbreviations, ordinals,
validity, Chinese), deterministically: fixed languages, a RELATIVE_BASE derived from the
day asked, naive datetimes, relative phrases ("today", "2 days ago") never parsed.
"""
from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from typing import Iterable

PRICE_TOLERANCE = 0.005
LANGUAGES = ["en", "zh"]

# ---------------------------------------------------------------- date-shaped spans

_MONTH_NAMES = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
                r"sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b")
_MONTH = _MONTH_NAMES + r"\.?"
_WEEKDAY = (r"\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
            r"mon|tues?|wed|thu(?:rs?)?|fri|sat|sun)\b\.?,?")
_DAY = r"\d{1,2}(?:st|nd|rd|th)?(?![\d.,]\d)"
_YEAR = r"(?:\d{4}|['’]\d{2})(?![\d.,]\d)"
_ISO_STAMP = r"\d{4}-\d{1,2}-\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
_CJK_DATE = r"\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}(?:\s*[日号])?"
_LONG_DATES = (                          # a month name, a day and a year: what dateparser is asked about
    rf"\b{_DAY}\s+(?:of\s+)?{_MONTH},?\s+{_YEAR}"          # 2 January 2024, 2nd of Jan. 2024
    rf"|\b{_MONTH}\s+(?:the\s+)?{_DAY},?\s+{_YEAR}"        # January 2, 2024, Jan 2nd 2024
    rf"|\b\d{{4}},?\s+{_MONTH}\s+{_DAY}"                   # 2024 Jan 2, 2024, January 2
    rf"|\b\d{{1,2}}-{_MONTH}-(?:\d{{4}}|\d{{2}})\b"        # 02-Jan-2024
    rf"|\b{_MONTH}-\d{{1,2}}-\d{{4}}\b")                   # Jan-02-2024
_NUMERIC_DMY = r"(?<![\d.])\d{1,2}(?P<sep>[/.-])\d{1,2}(?P=sep)(?:\d{4}|\d{2})(?![\d.]\d|\d)"   # 1/2/2024, 02.01.2024
_PARTIAL_DATES = (                       # stripped from prices, never taken as the date (no year)
    rf"\b{_DAY}\s+(?:of\s+)?{_MONTH}|\b{_MONTH}\s+(?:the\s+)?{_DAY}|\b{_MONTH}\s+\d{{4}}\b"
    r"|\d{1,2}\s*月\s*\d{1,2}\s*[日号]|\d{4}\s*年(?:\s*\d{1,2}\s*月)?")

_SPAN_RE = re.compile(rf"{_LONG_DATES}|{_CJK_DATE}", re.IGNORECASE)
_NUMERIC_RE = re.compile(_NUMERIC_DMY)
_YEAR_FIRST_RE = re.compile(r"(?<![\d.])(\d{4})\s*([-/.年])\s*(\d{1,2})\s*(?:\2|月)\s*(\d{1,2})(?!\d)")
_COMPACT_RE = re.compile(r"(?<![\d.])(\d{4})(\d{2})(\d{2})(?![\d.]\d|\d)")
_SHAPE_RE = re.compile(rf"{_MONTH}|月|{_NUMERIC_DMY}", re.IGNORECASE)
_EXPLICIT_YEAR_RE = re.compile(r"\d{4}|['’]\d{2}\b")
_RELATIVE_RE = re.compile(r"\b(?:ago|today|yesterday|tomorrow|last|next|this)\b|[前后今昨明]天", re.IGNORECASE)
_WEEKDAY_RE = re.compile(_WEEKDAY, re.IGNORECASE)
_ABBREV_DOT_RE = re.compile(rf"\b({_MONTH_NAMES})\.", re.IGNORECASE)   # "Jan." -> "Jan" for search_dates

# ---------------------------------------------------------------- what is not a price

_CODE_RE = re.compile(r"(?<![\d.])\d{6}(?:\.(?:SH|SZ|BJ))?(?![\d])", re.IGNORECASE)
_COMPACT_DATE = r"(?<![\d.])(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?![\d.]\d|\d)"   # 20240102
_BARE_YEAR = r"\b(?:in|since|until|till|during|year|before|after)\s+(?:19|20)\d\d\b(?![.,]\d)"          # in 2024
_DATE_RE = re.compile(rf"{_ISO_STAMP}|\d{{4}}/\d{{1,2}}/\d{{1,2}}|{_CJK_DATE}|{_LONG_DATES}|{_NUMERIC_DMY}|{_PARTIAL_DATES}"
                      rf"|{_COMPACT_DATE}|{_BARE_YEAR}", re.IGNORECASE)
_TIME_RE = re.compile(r"(?<![\d.])\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:\s*(?:am|pm)\b)?", re.IGNORECASE)
_HTTP_RE = re.compile(r"\b(?:HTTP|status|code|error)\s*[:=]?\s*\d{3}\b"
                      r"|\b[1-5]\d{2}\s+(?:bad gateway|bad request|not found|internal server error|service unavailable|"
                      r"gateway timeout|unauthori[sz]ed|forbidden|error)\b", re.IGNORECASE)
_NOT_PRICE_RE = re.compile(r"\d+(?:\.\d+)?\s*(?:%|percent\b|per cent\b)"
                           r"|\b\d+\s*(?:seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|times|attempts?|tries|retries)\b"
                           r"|\d+\s*(?:秒|分钟|小时|天|次)"
                           r"|\b\d{1,2}(?:st|nd|rd|th)\b", re.IGNORECASE)
_NUMBER_RE = re.compile(     # ASCII word boundaries: 收盘价为1685.01元 is a price, close_qfq2 is not
    r"(?<![A-Za-z0-9_.])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![A-Za-z0-9_])|(?<![A-Za-z0-9_.])\d+(?:\.\d+)?(?![A-Za-z0-9_])")

# ---------------------------------------------------------------- negative wording

_NEGATIVE_EN = re.compile(
    r"n['’]t\b|\b(?:not|no|never|none|nothing|neither|nor|cannot|unable|without|"
    r"un(?:known|recogni[sz](?:ed|able)|available|listed|supported|identified|resolvable|resolved)|"
    r"invalid|non-?existent|inexistent|delisted|bogus|missing|absent|fail(?:s|ed|ure)?|errors?|n/a)\b",
    re.IGNORECASE)
_NEGATIVE_ZH = re.compile(
    r"无|没|未(?:找到|查到|能|知|上市|收录|识别|获取|获得|检索到|搜到)|不(?:存在|是|可用|能|到|明|详|支持|正确|合法|在|可)"
    r"|非法|并非|查无|找不到|查不到|搜不到|失败|错误|退市|摘牌")
_PRICE_TOPIC = re.compile(r"\b(?:prices?|pricing|quotes?|quotations?|close|closing|data|figures?|numbers?|information|info|"
                          r"value|market data|trading)\b|价|行情|报价|数据|收盘|信息", re.IGNORECASE)
_UNAVAILABLE = re.compile(r"\bunavailable\b|\bnot available\b|\bn/a\b|暂无|无法获取|不可用|获取失败", re.IGNORECASE)
_CLAUSE_RE = re.compile(r"[;!?\n。；！？]|\.(?=\s|$)")

_CN_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_NUMBER_RE = re.compile(r"[〇零一二两三四五六七八九十]+(?=\s*[年月日号])")


def _cn_number(m: re.Match) -> str:
    s = m.group(0)
    if "十" not in s:
        return "".join(str(_CN_DIGITS[c]) for c in s)
    tens, _, ones = s.partition("十")
    return str((_CN_DIGITS.get(tens[-1:], 1) if tens else 1) * 10 + (_CN_DIGITS.get(ones[:1], 0) if ones else 0))


def normalise(text: str) -> str:
    """NFKC (full-width digits and punctuation to ASCII) and Chinese numerals before 年/月/日 as digits."""
    return _CN_NUMBER_RE.sub(_cn_number, unicodedata.normalize("NFKC", text))


# ---------------------------------------------------------------- prices


def prices(text: str) -> list[float]:
    """Every number left after removing stock codes, dates, times, percentages, durations and HTTP statuses."""
    rest = _DATE_RE.sub(" ", normalise(text))
    for pattern in (_TIME_RE, _CODE_RE, _HTTP_RE, _NOT_PRICE_RE):
        rest = pattern.sub(" ", rest)
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


# ---------------------------------------------------------------- wording


def negative(text: str) -> bool:
    t = normalise(text)
    return bool(_NEGATIVE_EN.search(t) or _NEGATIVE_ZH.search(t))


def clauses(text: str) -> list[str]:
    """Sentences and semicolon-separated parts (a decimal point does not end one)."""
    return [c for c in _CLAUSE_RE.split(normalise(text)) if c.strip()]


def unknown_code_problems(text: str) -> list[str]:
    problems = []
    given = prices(text)
    if given:
        problems.append(f"the answer gives a number ({given[0]:g}) for an unknown code")
    if not negative(text):
        problems.append("the answer does not say the code is unknown or unavailable (no negative wording)")
    return problems


def says_unknown(text: str) -> bool:
    return not unknown_code_problems(text)


def says_price_unavailable(text: str, references: Iterable[float | None] = ()) -> bool:
    if matches_price(text, references) is not None:
        return False
    if _UNAVAILABLE.search(normalise(text)):
        return True
    return any(negative(c) and _PRICE_TOPIC.search(c) and not prices(c) for c in clauses(text))


# ---------------------------------------------------------------- dates


def gives_date(text: str, day: dt.date) -> bool:
    t = normalise(text)
    if day in _numeric_dates(t):
        return True
    return day in _parsed_dates(t, day.year)


def _numeric_dates(text: str) -> set[dt.date]:
    """Year-first numeric dates (2024-01-02, 2024/1/2, 2024.01.02, 2024年1月2日, 20240102): unambiguous, no parser."""
    out = set()
    for m in _YEAR_FIRST_RE.finditer(text):
        out |= _valid(m.group(1), m.group(3), m.group(4))
    for m in _COMPACT_RE.finditer(text):
        out |= _valid(*m.groups())
    return out


def _valid(y: str, m: str, d: str) -> set[dt.date]:
    try:
        return {dt.date(int(y), int(m), int(d))}
    except ValueError:
        return set()


@functools.lru_cache(maxsize=8)
def _parsers(year: int):
    """dateparser's parsers for day-month-year (default order) and day-first numeric dates."""
    from dateparser.date import DateDataParser

    settings = {"PREFER_DATES_FROM": "past", "RETURN_AS_TIMEZONE_AWARE": False, "TIMEZONE": "UTC",
                "RELATIVE_BASE": dt.datetime(year + 50, 1, 1),     # two-digit years: '24 is 2024
                "REQUIRE_PARTS": ["day", "month", "year"], "PARSERS": ["custom-formats", "absolute-time"]}
    return (settings, DateDataParser(languages=LANGUAGES, settings=settings),
            DateDataParser(languages=LANGUAGES, settings={**settings, "DATE_ORDER": "MDY"}),
            DateDataParser(languages=LANGUAGES, settings={**settings, "DATE_ORDER": "DMY"}))


def _parsed_dates(text: str, year: int) -> set[dt.date]:
    """Dates in date-shaped spans, as dateparser reads them; plus its own search, guarded."""
    from dateparser.search import search_dates

    settings, default, mdy, dmy = _parsers(year)
    out: set[dt.date] = set()

    def parse(parser, span: str) -> None:
        got = parser.get_date_data(span).date_obj
        if got is not None:
            out.add(got.date())

    for m in _SPAN_RE.finditer(text):
        parse(default, _WEEKDAY_RE.sub(" ", m.group(0)))
    for m in _NUMERIC_RE.finditer(text):       # 1/2/2024 and 2/1/2024: either reading names the day
        parse(mdy, m.group(0))
        parse(dmy, m.group(0))
    cleaned = _ABBREV_DOT_RE.sub(r"\1", _WEEKDAY_RE.sub(" ", text))
    for found, when in search_dates(cleaned, languages=LANGUAGES, settings=settings) or ():
        if _EXPLICIT_YEAR_RE.search(found) and _SHAPE_RE.search(found) and not _RELATIVE_RE.search(found):
            out.add(when.date())
    return out
