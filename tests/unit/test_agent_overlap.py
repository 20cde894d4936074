"""agent_smoke.beside: the API-level checks run in a thread while the agent's prompts run here."""
from __future__ import annotations

import threading

import pytest

from twilight_ops.errors import CheckFailed
from twilight_ops.phases.agent_smoke import beside


def test_both_run_at_once_and_each_result_comes_back():
    asked = threading.Event()      # set by `here` (the prompts); `work` (the API checks) sees it while it runs
    seen = []

    def work() -> str:
        seen.append(asked.wait(timeout=60))
        return "api rows"

    def here() -> str:
        asked.set()
        return "transcripts"

    assert beside(work, here) == ("api rows", "transcripts")
    assert seen == [True]


def test_an_error_of_the_api_checks_is_raised_after_the_prompts_ended():
    ended = []

    def work() -> None:
        raise CheckFailed("tvps did not answer", "re-run")

    with pytest.raises(CheckFailed, match="tvps did not answer"):
        beside(work, lambda: ended.append("prompts"))
    assert ended == ["prompts"]
