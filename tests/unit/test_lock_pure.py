"""The deploy lock's pure parts: the holder record, a process's start time, whether a holder
lives, and what a run may do with a lock it finds (issue 23 item 2)."""
from __future__ import annotations

import json
import os

import pytest

from twilight_ops import lock
from twilight_ops.errors import LockHeld

ME = lock.Holder(operator="ops@laptop", version="v0.3.0-w4-cutover", reason="cutover", acquired_at="t1",
                 client_pid=4242, host="laptop", client_start="1000")


def other(**changes) -> lock.Holder:
    base = dict(operator="ops@laptop", version="v0.3.0-w4-cutover", reason="deploy", acquired_at="t0",
                client_pid=777, host="laptop", client_start="900")
    base.update(changes)
    return lock.Holder(**base)


def test_the_record_round_trips_and_names_one_process():
    h = other()
    assert lock.Holder.parse(h.to_bytes().decode()) == h
    assert h.describe() == "ops@laptop on laptop (PID 777) since t0 for v0.3.0-w4-cutover (deploy)"


def test_an_older_record_without_host_or_start_still_reads():
    h = lock.Holder.parse(json.dumps({"operator": "a", "version": "v1", "reason": "r", "acquired_at": "t", "client_pid": 5}))
    assert (h.host, h.client_start) == ("", "")
    assert lock.liveness(h, ME, None) == "unknown"           # cannot tell where it ran: never judged dead


@pytest.mark.parametrize("start", ["12a", "-1", "1" * 21, "١٢"])
def test_a_start_time_that_is_not_one_is_refused(start):
    with pytest.raises(ValueError):
        lock.Holder.parse(json.dumps({"client_pid": 5, "client_start": start}))


def test_the_start_time_is_field_22_even_with_a_hostile_command_name():
    fields = ["S"] + [str(n) for n in range(4, 22)] + ["123456"] + ["0"] * 30
    assert lock.start_from_stat("99 (a) b ) c) " + " ".join(fields)) == "123456"
    assert lock.start_from_stat("99 (a) Z " + " ".join(fields[1:])) is None       # a zombie has exited


def test_this_process_has_a_start_time_and_a_gone_one_has_none():
    me = lock.proc_start(os.getpid())
    assert me and me.isdigit()
    assert lock.proc_start(2**22 + 12345) is None           # above pid_max: no such process


@pytest.mark.parametrize("current,start_now,state", [
    (other(client_pid=4242, client_start="1000"), "1000", "mine"),
    (other(), "900", "alive"),
    (other(), None, "dead"),
    (other(), "901", "dead"),                          # the PID was recycled by another process
    (other(client_start=""), "901", "alive"),          # no start recorded: a live PID counts as the holder
    (other(client_pid=4242, client_start="1"), "1000", "dead"),   # our PID, an earlier process's record
    (other(host="desk"), None, "elsewhere"),           # another machine: never judged dead from here
    (other(host=""), None, "unknown"),
    (other(client_pid=0), None, "unknown"),
])
def test_liveness(current, start_now, state):
    assert lock.liveness(current, ME, start_now) == state


@pytest.mark.parametrize("current,state,step", [
    (other(client_pid=4242, client_start="1000"), "mine", "re-enter"),
    (other(), "dead", "take-over"),
    (other(), "alive", "refuse"),                        # the race of issue 23: same operator, live run
    (other(), "elsewhere", "refuse"),
    (other(), "unknown", "refuse"),
    (other(operator="bob@desk"), "dead", "refuse"),      # another operator's lock is never taken over
    (other(version="v0.3.1"), "dead", "refuse"),
    (other(operator="bob@desk", client_pid=4242, client_start="1000"), "mine", "refuse"),
])
def test_next_step(current, state, step):
    assert lock.next_step(current, ME, state) == step


@pytest.mark.parametrize("state,says", [
    ("alive", "another run on this machine (PID 777)"),
    ("elsewhere", "it is held from laptop"),
    ("dead", "that process is gone"),
    ("unknown", "inv lock --release"),
])
def test_the_refusal_names_the_holder(state, says):
    e = lock.refusal(other(), state)
    assert isinstance(e, LockHeld) and e.exit_code == 1
    line = e.line()
    assert says in line and "ops@laptop" in line and "PID 777" in line and "since t0" in line
    assert "v0.3.0-w4-cutover" in line and "(deploy)" in line


def test_a_hostile_host_is_shown_inertly():
    assert "\x1b" not in other(host="x\x1b]0;pwned\x07").describe()


def test_the_rehearsal_judges_a_cutover_refused_at_the_lock():
    from twilight_ops.twin import rehearse

    sc = rehearse.SCENARIOS["lock-held-elsewhere"]
    assert sc.expected == "no decision → refused"
    assert rehearse.judge(sc, 1, None) == ("no decision → refused", True, "")
    assert rehearse.judge(sc, 3, None)[1] is False                       # unreachable is not a refusal
    assert rehearse.judge(sc, 0, {"outcome": "closed-out", "decision": {"verdict": "GO"}}) == ("exit 0, it ran", False, "")
