"""Issue 22 item 2: preflight's pull-request GETs go out at once (github.in_order), yet the answers
and the error reported are those of a loop in PR order.  Plain functions on real threads."""
from __future__ import annotations

import threading
import time

import pytest

from twilight_ops import github
from twilight_ops.errors import CheckFailed, TwilightError


def test_results_come_back_in_the_order_asked_not_the_order_answered():
    # the first item answers last: its result is still first
    def slow_first(n: int) -> int:
        time.sleep(0.05 if n == 1 else 0.0)
        return n * 10

    assert github.in_order(slow_first, [1, 2, 3, 4], workers=8) == [10, 20, 30, 40]
    assert github.in_order(slow_first, [], workers=8) == []


def test_the_calls_run_at_once_up_to_the_bound():
    gate = threading.Barrier(3, timeout=5)      # passes only when 3 calls are in flight together
    in_flight, most = [0], [0]
    lock = threading.Lock()

    def call(n: int) -> int:
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        if n < 3:
            gate.wait()
        time.sleep(0.02)
        with lock:
            in_flight[0] -= 1
        return n

    assert github.in_order(call, list(range(10)), workers=3) == list(range(10))
    assert most[0] == 3                         # three at once, never more than the bound


def test_the_first_failure_in_item_order_is_raised_even_when_a_later_one_failed_first():
    seen: list[int] = []

    def call(n: int) -> int:
        if n == 2:
            time.sleep(0.1)                     # fails last in time, first in order
            raise TwilightError("GitHub answered 401 Bad credentials: the GitHub token is wrong or expired")
        seen.append(n)
        if n == 4:
            raise CheckFailed("GitHub answered HTTP 502 for PR #4")
        return n

    with pytest.raises(TwilightError) as e:
        github.in_order(call, [1, 2, 3, 4, 5], workers=8)
    assert e.value.message.startswith("GitHub answered 401") and not isinstance(e.value, CheckFailed)
    assert sorted(seen) == [1, 3, 4, 5]        # every call ran to its end before the error was raised
