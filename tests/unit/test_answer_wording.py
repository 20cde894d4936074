"""Issue 15 item 3: agent answers in real agents' wording (answers.py through judge_answer).

Plain strings and numbers: each answer is judged as `inv agent-smoke` judges it, against the
API's closes (latest 1712.30; 2024-01-02 close_raw 1685.01, close_qfq 1600.20).  Positives
must pass, negatives must not: a wrong date, a price for the unknown code, "available"
without a negation, a price off by more than 0.5 %.
"""
from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest

from twilight_ops import answers
from twilight_ops.phases import agent_smoke as phase

DAY = dt.date(2024, 1, 2)
LATEST_REFS = [1712.3, 1712.3]
HISTORY_REFS = [1685.01, 1600.2]

# ---------------------------------------------------------------- check 1: latest quote

LATEST_GREEN = [
    "The latest price of 600519.SH is 1712.30 yuan (close_raw; close_qfq 1712.30), trade date 2026-05-11, "
    "as of 2026-05-11T10:00:01.000+08:00, freshness 1 seconds, market state open, source akshare-spot.",
    "Kweichow Moutai (600519.SH) is trading at ¥1,712.30 right now.",
    "贵州茅台（600519）现价1712.30元。",
    "The current price of 600519.SH is 1712.3 CNY, as of 10:00 on 11 May 2026.",
    "It's 1,712.30 yuan at the moment — the market's open.",
    "Right now Moutai's at RMB 1712.30 (close_raw), up 0.8% today.",
    "Latest: 1712.30 yuan; close_qfq isn't available for live quotes.",
    "As of 10:00:01 CST on Monday 11th May 2026 the price was ¥1,712.30.",
    "600519 last traded at 1712.5 yuan.",                                     # within 0.5 %
    "The latest quote I've got is 1,710.00 yuan (freshness 3 seconds).",      # within 0.5 %
    "贵州茅台最新价格为 1712.30 元，数据来源 akshare-spot。",
    "600519.SH：1712.30元（2026年5月11日 10:00）",
    "The price hasn't moved much: it's 1712.30.",
    "Moutai is trading at 1712.30 yuan, 2 minutes after the open.",
    "I checked twice (2 attempts): 1712.30 yuan.",
    "Current price ¥1712.30; market state open; source akshare-spot.",
    "It is currently priced at 1,712.30 yuan per share.",
    "1712.30 yuan is the latest price for Kweichow Moutai.",
    "The latest close_raw is 1712.30 and close_qfq 1712.30.",
    "今天（2026-05-11）茅台股价是1712.3元。",
    "The quote: 1712.30 CNY. Nothing unusual.",
    "２０２６年５月１１日，贵州茅台报价１７１２．３０元。",                     # full-width digits
]

LATEST_RED = [   # (answer, the red flag it raises or None, a phrase of the reason)
    ("Sorry, the price of 600519.SH is unavailable right now.", "price_unavailable", "unavailable"),
    ("I couldn't retrieve a live quote for 600519.SH right now.", "price_unavailable", "unavailable"),
    ("I'm unable to get the current price of Kweichow Moutai.", "price_unavailable", "unavailable"),
    ("Kweichow Moutai's price isn't something I can look up.", "price_unavailable", "unavailable"),
    ("The quote service failed, so there's no price to report.", "price_unavailable", "unavailable"),
    ("Price: N/A", "price_unavailable", "unavailable"),
    ("无法获取贵州茅台的最新价格。", "price_unavailable", "unavailable"),
    ("暂无600519的行情数据。", "price_unavailable", "unavailable"),
    ("抱歉，没有查到贵州茅台的报价。", "price_unavailable", "unavailable"),
    ("I couldn't get the latest quote; the last price I remember was 1500 yuan.", "price_unavailable", "unavailable"),
    ("The price of 600519.SH is 1800.00 yuan.", None, "no price within 0.5 %"),
    ("The latest price is 1,650.00 yuan (as of 10:00).", None, "no price within 0.5 %"),
    ("600519.SH 现价 1800 元", None, "no price within 0.5 %"),
    ("Trading at 1723 yuan.", None, "no price within 0.5 %"),                # 0.62 % off
    ("The price is 17.12 yuan.", None, "no price within 0.5 %"),
    ("Moutai is trading normally.", None, "no price within 0.5 %"),
    ("The price is available.", None, "no price within 0.5 %"),             # "available" alone is no price
    ("Up 1712.3% this year.", None, "no price within 0.5 %"),               # a percentage is not a price
    ("It last traded at 17:12, 3 seconds ago.", None, "no price within 0.5 %"),   # a time is not a price
    ("The price is 1712.30 yuan (value: 1712.30, close_raw: 1712.30).", "hermes_legacy_prompt", "beside close_raw"),
    ("The price isn't 1700: it's 1800 yuan.", None, "no price within 0.5 %"),   # a negation beside numbers: a wrong price
]


@pytest.mark.parametrize("text", LATEST_GREEN)
def test_latest_quote_answers_that_pass(text):
    flags, why, ev = phase.judge_answer("latest_quote", text, LATEST_REFS)
    assert (flags, why) == ([], []), text
    assert ev["price_in_answer"] is not None


@pytest.mark.parametrize("text, flag, reason", LATEST_RED)
def test_latest_quote_answers_that_do_not_pass(text, flag, reason):
    flags, why, _ = phase.judge_answer("latest_quote", text, LATEST_REFS)
    assert why, text
    assert flags == ([flag] if flag else []), text
    assert reason in "; ".join(why)


def test_latest_quote_negation_beside_a_wrong_price_is_a_wrong_price_not_price_unavailable():
    _, why, _ = phase.judge_answer("latest_quote", "The price isn't 1712.30: it's 1800 yuan.", [1800.0 * 1.2])
    assert why == ["no price within 0.5 % of close_raw/close_qfq (2160)"]


# ---------------------------------------------------------------- check 2: historical, the date

HISTORY_GREEN = [
    "The close of 600519.SH on 2024-01-02 was 1685.01 yuan (close_raw); close_qfq is 1600.20 yuan.",
    "The close of 600519.SH on January 2, 2024 was 1,685.01 yuan.",
    "On Jan 2 2024 it closed at 1685.01.",
    "On 2 January 2024 Moutai closed at 1685.01 CNY.",
    "It closed at ¥1,685.01 on the 2nd Jan 2024.",
    "On the 2nd of January, 2024, the close was 1685.01.",
    "Tuesday, 2 January 2024: 1685.01 (close_raw).",
    "Jan. 2, 2024 close: 1685.01.",
    "Kweichow Moutai closed at 1685.01 on Tuesday 2nd January 2024.",
    "On January 2nd, 2024, shares closed at 1,685.01 yuan.",
    "02-Jan-2024: close_raw 1685.01.",
    "On Jan-02-2024 the close was 1685.01.",
    "Close on 2 Jan '24: 1685.01.",
    "2024, January 2: close 1685.01.",
    "As at 2 Jan. 2024, close_raw was 1685.01 CNY and the forward-adjusted close 1600.20.",
    "1/2/2024 close: 1685.01.",
    "On 02/01/2024 (UK style) it closed at 1685.01.",
    "The close on 2024/1/2 was 1685.01.",
    "20240102 close 1685.01.",
    "2024年1月2日收盘价为1685.01元。",
    "2024 年 1 月 2 日 收盘 1685.01 元",
    "2024年01月02日 收盘价 1685.01，前复权 1600.20。",
    "2024年1月2号的收盘价是1685.01元。",
    "二〇二四年一月二日收盘1685.01元。",
    "２０２４年１月２日收盘价１６８５．０１元。",
    "The forward-adjusted close (close_qfq) on 2 January 2024 was ¥1,600.20.",   # the qfq close matches too
]

HISTORY_WRONG_DATE = [
    "On January 3, 2024 it closed at 1685.01.",
    "On 2 January 2023 it closed at 1685.01.",
    "2024-01-03: 1685.01.",
    "2024年1月3日收盘1685.01。",
    "二〇二四年一月三日收盘1685.01元。",
    "On Jan 2 it closed at 1685.01.",                  # no year
    "It closed at 1685.01 yesterday.",
    "It closed at 1685.01 today.",
    "The close was 1685.01 yuan, 2 days ago.",
    "The close was 1,685.01 yuan on 12 February 2024.",
    "3/1/2024 close 1685.01.",
    "In 2024, on the 2nd day it closed at 1685.01.",
    "1 Feb 2024 close 1685.01.",
    "2024-1-20 close 1685.01.",
    "February 1, 2024: 1685.01.",
    "On 12/01/2024 the close was 1685.01.",
    "The close was 1685.01, up 2.1% (a 2024 high).",
    "The close was 1685.01 yuan.",
    "On Wednesday 3rd January 2024, 600519.SH closed at ¥1,685.01 (close_raw).",
    "On 2nd February 2024 it closed at 1685.01.",
    "Feb 30, 2024: 1685.01.",                          # no such day
]


@pytest.mark.parametrize("text", HISTORY_GREEN)
def test_historical_answers_that_pass(text):
    assert answers.gives_date(text, DAY), text
    assert phase.judge_answer("historical", text, HISTORY_REFS)[:2] == ([], []), text


@pytest.mark.parametrize("text", HISTORY_WRONG_DATE)
def test_historical_answers_without_the_date_do_not_pass(text):
    assert not answers.gives_date(text, DAY), text
    _, why, _ = phase.judge_answer("historical", text, HISTORY_REFS)
    assert why == ["the answer does not give the date 2024-01-02"], text


@pytest.mark.parametrize("text", [
    "On 2 January 2024 it closed at 1800.00.",           # the right date, a price off by more than 0.5 %
    "2024年1月2日收盘价为1500元。",
])
def test_historical_right_date_wrong_close_does_not_pass(text):
    assert answers.gives_date(text, DAY)
    assert "no price within 0.5 %" in phase.judge_answer("historical", text, HISTORY_REFS)[1][0]


def test_numbers_are_never_read_as_the_date():
    for text in ("close 2.01, 2024 was a good year", "The close was 2024.01 and 2 yuan", "1685.01 2024 1 2",
                 "It closed at 1685.01 (2024 1 2).", "2.1.2024.5 yuan"):
        assert not answers.gives_date(text, DAY), text


# ---------------------------------------------------------------- check 4: unknown code 999999.SH

UNKNOWN_GREEN = [
    "999999.SH is not a known code: the price service could not find it (HTTP 502 ChainExhausted). The price is unavailable.",
    "Sorry, I couldn't find 999999.SH — it isn't a recognised stock code.",
    "I can't find any stock with the code 999999.SH.",
    "999999.SH doesn't exist on the Shanghai Stock Exchange.",
    "There's no listed company with code 999999.SH, so I have no price for it.",
    "The code 999999.SH is invalid.",
    "999999.SH appears to be unrecognized; please check the ticker.",
    "I wasn't able to retrieve a quote: the service answered 502 Bad Gateway for 999999.SH.",
    "Unknown code: 999999.SH.",
    "That ticker (999999.SH) is delisted or never existed.",
    "I'm unable to look up 999999.SH; the API returned status 502.",
    "No data was returned for 999999.SH.",
    "I tried 2 times, but 999999.SH wasn't found.",
    "The lookup for 999999.SH failed with error 502 (ChainExhausted) after 10 seconds.",
    "Sorry — as of 10:00 on 11 May 2026, 999999.SH is not a valid A-share code.",
    "I don't recognise 999999.SH; it's not in the exchange's list (0% match).",
    "I couldn’t find 999999.SH on 2 January 2024 or since.",                 # curly apostrophe, a long date
    "代码 999999.SH 不存在，无法查询价格。",
    "查无此股票代码：999999.SH",
    "抱歉，没有找到 999999.SH 的行情数据。",
    "999999.SH 不是有效的股票代码。",
    "未能查询到999999.SH的价格（HTTP 502）。",
    "该代码无效，请检查后重试。",
    "999999.SH 是未知代码，暂无报价。",
]

UNKNOWN_RED = [   # (answer, a phrase of the reason)
    ("999999.SH trades at 12.50 yuan.", "gives a number (12.5)"),
    ("999999.SH is an unknown code, but its last price was 12.50 yuan.", "gives a number (12.5)"),
    ("I couldn't get a live quote, but 999999.SH last closed at ¥8.88.", "gives a number (8.88)"),
    ("999999.SH is not expensive: 3.5 yuan.", "gives a number (3.5)"),
    ("价格为 9.99 元，代码 999999.SH 未知。", "gives a number (9.99)"),
    ("999999.SH 的最新价格是10.50元。", "gives a number (10.5)"),
    ("代码999999.SH有效，现价10.5元", "gives a number (10.5)"),
    ("The price of 999999.SH is 1,000.00 yuan.", "gives a number (1000)"),
    ("999999.SH closed at 3.21 on January 2, 2024.", "gives a number (3.21)"),
    ("Here is the latest quote for 999999.SH: 45.60, market state open.", "gives a number (45.6)"),
    ("999999.SH: 0.00", "gives a number (0)"),
    ("Found it: 999999.SH, price 7 yuan.", "gives a number (7)"),
    ("Sure! 999999.SH costs 12 yuan.", "gives a number (12)"),
    ("The code 999999.SH is valid and listed on the Shanghai exchange.", "no negative wording"),
    ("999999.SH? Sure, it's available.", "no negative wording"),
    ("999999.SH is a Shanghai code.", "no negative wording"),
    ("It is 999999.SH and it is trading.", "no negative wording"),
    ("The code is recognised: 999999.SH.", "no negative wording"),
    ("999999.SH 上证指数成分股", "no negative wording"),
    ("代码 999999.SH 有效。", "no negative wording"),
    ("", "no negative wording"),
]


@pytest.mark.parametrize("text", UNKNOWN_GREEN)
def test_unknown_code_answers_that_pass(text):
    assert answers.says_unknown(text), answers.unknown_code_problems(text)
    assert phase.judge_answer("unknown_code", text, [])[:2] == ([], [])


@pytest.mark.parametrize("text, reason", UNKNOWN_RED)
def test_unknown_code_answers_that_do_not_pass(text, reason):
    assert not answers.says_unknown(text)
    _, why, _ = phase.judge_answer("unknown_code", text, [])
    assert reason in "; ".join(why), why


def test_a_price_and_no_negation_give_both_reasons():
    assert answers.unknown_code_problems("999999.SH is trading at 5.20 yuan.") == [
        "the answer gives a number (5.2) for an unknown code",
        "the answer does not say the code is unknown or unavailable (no negative wording)"]


# ---------------------------------------------------------------- "price unavailable" (check 1's red flag)

UNAVAILABLE = [
    "Sorry, the price of 600519.SH is unavailable right now.",
    "I couldn't retrieve a live quote for 600519.SH right now.",
    "I’m unable to get the current price of Kweichow Moutai.",
    "The price isn't available at the moment.",
    "There's no quote data for 600519.SH at the moment.",
    "I can't access real-time market data, so I can't tell you the current price.",
    "I don't have the latest price for 贵州茅台.",
    "The quote service failed, so there is no price to report.",
    "Price: N/A",
    "The current price could not be fetched (HTTP 503).",
    "Latest price: unavailable.",
    "No price data is available for 600519.SH today.",
    "The price of 600519.SH is not known right now.",
    "Pricing information for 600519.SH wasn't returned by the API.",
    "600519.SH: the quote is missing from the response.",
    "I couldn't get the latest quote; the last price I remember was 1500 yuan.",
    "贵州茅台的价格暂时不可用。",
    "无法获取贵州茅台的最新价格。",
    "暂无600519的行情数据。",
    "抱歉，没有查到贵州茅台的报价。",
    "行情数据获取失败。",
]

AVAILABLE = [
    "The latest price of 600519.SH is 1712.30 yuan (close_raw), trade date 2026-05-11.",
    "The latest price of 600519.SH is 1712.30 yuan; close_qfq isn't available.",
    "贵州茅台当前价格为1712.30元。",
    "600519.SH is available at 1,712.30 yuan.",
    "The price is available: 1712.30.",
    "Kweichow Moutai's current price is ¥1,712.30 — not bad!",
    "It's trading at 1712.30, no change since the open.",
    "The current price isn't 1700: it's 1712.30 yuan.",
    "I couldn't believe it, but the price is 1712.30.",
    "最新价：1712.30元，无异常。",
    "The price of 600519.SH is 1712.3 yuan, unchanged.",
    "Price data: 1712.30 CNY, as of 10:00.",
    "The last trade was at 1,712.30 yuan; there's no delay.",
    "600519.SH quote: 1712.30 (no errors).",
    "As of 11 May 2026, Moutai trades at 1712.30 yuan.",
    "I don't see any problem: 1712.30 yuan.",
    "Current price: 1712.30. Note it's not adjusted.",
    "The price is available.",                               # "available" without a negation
    "Kweichow Moutai is trading normally.",
    "The price is 1800 yuan, not adjusted.",                 # a wrong price, but not an "unavailable"
    "The quote is 1,650.00, which isn't what I expected.",
]


@pytest.mark.parametrize("text", UNAVAILABLE)
def test_price_unavailable_wording(text):
    assert answers.says_price_unavailable(text, LATEST_REFS), text
    assert answers.says_price_unavailable(text), text


@pytest.mark.parametrize("text", AVAILABLE)
def test_not_price_unavailable(text):
    assert not answers.says_price_unavailable(text, LATEST_REFS), text


# ---------------------------------------------------------------- what is a price


def test_prices_skip_long_dates_times_percentages_durations_and_statuses():
    assert answers.prices("On Tuesday 2nd January 2024 at 15:00:00 it closed at ¥1,685.01, up 0.5%, "
                          "after 3 retries (HTTP 200), 10 seconds old.") == [1685.01]
    assert answers.prices("收盘价为1685.01元（2024年1月2日）") == [1685.01]         # no spaces around a Chinese price
    assert answers.prices("20240102: 1685.01; in 2024 it rose") == [1685.01]
    assert answers.prices("502 Bad Gateway for 999999.SH on 1/2/2024") == []
    assert answers.prices("It closed at 2024.50 yuan.") == [2024.5]                  # a price that looks like a year
    assert answers.prices("2024-01-02 1685.01, as of 2026-05-11T10:00:01.000+08:00") == [1685.01]
    assert answers.prices("12.50-13.00 yuan, 1.5.2024") == [12.5, 13.0]             # a range is no date; 1.5.2024 is


def test_dateparser_is_imported_only_when_a_long_date_needs_it():
    probe = ("import sys, datetime as dt; import twilight_ops.tasks; from twilight_ops import answers; "
             "assert 'dateparser' not in sys.modules; "
             "assert answers.gives_date('close on 2024-01-02: 1685.01', dt.date(2024, 1, 2)); "
             "assert 'dateparser' not in sys.modules; "
             "assert answers.gives_date('close on 2 January 2024: 1685.01', dt.date(2024, 1, 2)); "
             "assert 'dateparser' in sys.modules; print('ok')")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
