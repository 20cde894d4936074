"""Issue 23 item 2 through the twin: two real `inv cutover` runs started 0–50 ms apart, many
times: exactly one proceeds, the other is refused naming the holder, writes nothing to the
journal and leaves the lock alone; a holder on another machine is never judged dead."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, inv
from tests import journals
from twilight_ops.builders.layout import layout
from twilight_ops.remote import SSHExecutor
from twilight_ops.twin import build, rehearse

pytestmark = pytest.mark.twin

V = rehearse.V
ROUNDS = int(os.environ.get("TWILIGHT_LOCK_RACE_ROUNDS", "8"))


@pytest.fixture
def fresh(twin, twin_settings):
    rehearse.reset(twin, twin_settings)
    yield twin
    rehearse.reset(twin, twin_settings)


def journal_bytes(settings) -> bytes | None:
    path = journals.local_path(settings, V)
    return path.read_bytes() if path.exists() else None


def start(twin, operator: str) -> subprocess.Popen:
    argv = [str(Path(sys.executable).with_name("inv")), "-f", str(twin.invoke_yaml), "cutover", "--version", V, "--yes"]
    return subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ, "INVOKE_TWILIGHT_OPERATOR": operator})


def stop(p: subprocess.Popen) -> str:
    """Its stderr, after killing it if it still runs."""
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGKILL)
    return p.communicate(timeout=60)[1] if p.stderr and not p.stderr.closed else ""


def record(ex, lay) -> dict | None:
    """The lock's holder record as stored (None: no lock)."""
    try:
        return json.loads(ex.read_file(lay.lock_info))
    except (FileNotFoundError, ValueError):
        return None


def one_round(twin, ex, lay, settings, operators: tuple[str, str]) -> None:
    first = start(twin, operators[0])
    time.sleep(random.uniform(0, 0.05))              # the 0–50 ms apart
    second = start(twin, operators[1])
    runs = {first.pid: (first, operators[0]), second.pid: (second, operators[1])}
    try:
        holder: dict | None = None
        while holder is None or holder.get("client_pid") not in runs:     # until one of them holds the lock
            assert first.poll() is None or second.poll() is None, "neither run took the deploy lock"
            holder = record(ex, lay)
        winner, winner_op = runs[holder["client_pid"]]
        os.killpg(winner.pid, signal.SIGSTOP)        # the winner holds the lock while the other tries
        (loser, _), = [r for pid, r in runs.items() if pid != winner.pid]
        before = journal_bytes(settings)
        while loser.poll() is None and journal_bytes(settings) == before:
            time.sleep(0.05)                        # until it gives up, or writes the journal (it proceeded)
        proceeded = loser.poll() is None
        err = stop(loser)
        assert not proceeded, "both runs passed the deploy lock"
        assert journal_bytes(settings) == before, "the run without the lock wrote the journal"
        assert record(ex, lay) == holder, "the run without the lock touched it"
        if loser.returncode == 1:                   # refused by the lock, naming the holder
            assert "deploy lock" in err and f"PID {winner.pid}" in err and winner_op in err, err
            assert holder.get("host", "") in err and V in err and "cutover" in err, err
        else:                                       # or it read the journal after the winner's first save
            assert loser.returncode == 2 and "in progress" in err, err
        assert "Traceback" not in err
    finally:
        for p in (first, second):
            stop(p)
        build.forget_cutovers(twin)                 # the killed winner's journal and lock


def test_two_cutovers_started_together_exactly_one_proceeds(fresh, twin_settings):
    with SSHExecutor(twin_settings) as ex:
        lay = layout(twin_settings, ex.home)
        for n in range(ROUNDS):
            # every other round the second run is another operator (a colleague on the same tvps)
            ops = (twin_settings.operator, twin_settings.operator if n % 2 == 0 else "bob@desk")
            one_round(fresh, ex, lay, twin_settings, ops)


def test_a_holder_on_another_machine_is_never_taken_over(fresh, twin_settings, tmp_path):
    """The rehearsal's lock-held-elsewhere: this operator's run on another host, for the same
    version, with a PID that means nothing here: refused, the journal and the lock untouched."""
    sc = rehearse.SCENARIOS["lock-held-elsewhere"]
    with SSHExecutor(twin_settings) as ex:
        lay = layout(twin_settings, ex.home)
        rehearse.hold_lock_elsewhere(twin_settings)
        seen = record(ex, lay)
        r = inv("cutover", "--version", V, "--yes", cfg=fresh.invoke_yaml)
        assert r.returncode == 1, r.stdout + r.stderr
        assert f"held by {twin_settings.operator} on other-" in r.stderr and "(PID 4242)" in r.stderr, r.stderr
        assert "inv lock --release" in r.stderr and "Traceback" not in r.stderr
        assert journal_bytes(twin_settings) is None          # refused before the journal
        assert record(ex, lay) == seen
        row = rehearse.run_scenario(fresh.base, sc, tmp_path)   # the same through the rehearsal's matrix
        assert row.ok, f"{row.got} ({row.note}); log:\n" + open(row.log, encoding="utf-8").read()[-3000:]
        assert journal_bytes(twin_settings) is None and record(ex, lay) == seen
