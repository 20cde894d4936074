"""Issue 22 item 3's cutover benchmark, pure parts: the agent's inherent wait counts the parallel
prompts by their group's wall time (LocalExecutor.run_all's `ran-all` record), and the wire records
the file commands make are counted once each (one channel, no sftp)."""
from __future__ import annotations

import sys

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
import cutover_bench  # noqa: E402
import roundtrips  # noqa: E402

H = "/x/bin/hermes"


def test_parallel_prompts_count_by_their_group_and_a_lone_command_by_its_span():
    recs = [
        {"t": 10.0, "side": "local", "op": "run", "argv": [H, "skills", "list"]},
        {"t": 11.5, "side": "tvps", "op": "append", "path": "/h/audit.log"},
        {"t": 11.5, "side": "ssh", "op": "channel", "kind": "session"},
        {"t": 12.0, "side": "local", "op": "run", "argv": ["hermes", "chat", "-q", "a"]},
        {"t": 12.0, "side": "local", "op": "run", "argv": ["hermes", "chat", "-q", "b"]},
        {"t": 12.5, "side": "tvps", "op": "run", "argv": ["docker", "compose", "logs"]},
        {"t": 36.0, "side": "local", "op": "ran-all", "argvs": [["hermes", "chat", "-q", "a"], ["hermes", "chat", "-q", "b"]],
         "seconds": 24.0},
        {"t": 36.1, "side": "http", "op": "GET", "host": "h:1", "path": "/price"},
    ]
    assert cutover_bench.agent_seconds(recs) == 1.5 + 24.0          # was 1.5 + 0 + 0.5: the prompts' 24 s were "overhead"
    assert roundtrips.totals(roundtrips.per_phase(recs)) == {"channel": 1, "http": 1, "total": 2}


def test_a_run_without_parallel_groups_is_measured_as_before():
    recs = [{"t": 1.0, "side": "local", "op": "run", "argv": [H, "gateway", "status"]},
            {"t": 3.0, "side": "local", "op": "run", "argv": ["git", "push"]}]
    assert cutover_bench.agent_seconds(recs) == 2.0


def test_a_commands_own_round_trips_are_two_on_a_channel_and_one_on_the_request_loop():
    pull = ["docker", "compose", "pull"]
    recs = [{"t": 1.0, "side": "tvps", "op": "run", "argv": pull},
            {"t": 1.0, "side": "ssh", "op": "channel", "kind": "session"},
            {"t": 4.0, "side": "tvps", "op": "run", "argv": ["true"]},
            {"t": 5.0, "side": "tvps", "op": "run", "argv": pull},
            {"t": 5.0, "side": "ssh", "op": "request"},
            {"t": 7.5, "side": "tvps", "op": "run", "argv": ["true"]}]
    assert cutover_bench.command_spans(recs, lambda a: "pull" in a, "tvps") == [(3.0, 2), (2.5, 1)]
    assert cutover_bench.command_seconds(recs, lambda a: "pull" in a, "tvps") == [3.0, 2.5]


def test_the_cache_checks_sleep_past_the_prompts_is_an_inherent_wait_and_none_when_it_did_not_run():
    recs = [
        {"t": 10.0, "side": "local", "op": "sleep", "seconds": 10.0, "why": "cache check"},
        {"t": 20.1, "side": "http", "op": "GET", "host": "h:1", "path": "/price"},
        {"t": 20.2, "side": "local", "op": "sleep", "seconds": 50.0, "why": "cache check"},
        {"t": 30.0, "side": "local", "op": "ran-all", "argvs": [["hermes", "chat", "-q", "a"]], "seconds": 20.0},
    ]
    assert round(cutover_bench.cache_seconds(recs), 3) == 40.2       # 70.2 (its last sleep's end) − 30.0 (the prompts' end)
    assert cutover_bench.cache_seconds(recs[3:]) == 0.0               # market not open: no sleep, no wait
    assert cutover_bench.cache_seconds([{**recs[0], "seconds": 5.0}, recs[3]]) == 0.0   # ended inside the prompts
