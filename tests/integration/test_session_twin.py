"""Issue 22: one request loop on tvps carries the executor's operations (real sshd, real bash, real
python3 on the twin's tvps account).  Results are compared with an executor whose loop cannot start
(`ssh_loop_python` names a missing program), which runs one channel per operation as before."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import pytest

from tests.conftest import REPO
from twilight_ops import trace as twilight_trace
from twilight_ops.errors import Unreachable
from twilight_ops.remote import SSHExecutor

pytestmark = pytest.mark.twin

NO_PYTHON = ("python3-not-on-tvps",)


def wire(trace_file) -> list[tuple[str, str]]:
    if not trace_file.exists():
        return []
    return [(r["side"], r["op"]) for r in map(json.loads, trace_file.read_text().splitlines())
            if r["side"] in ("ssh", "sftp")]


def per_channel(settings):
    return dataclasses.replace(settings, ssh_loop_python=NO_PYTHON)


def fresh_dir(ex, path) -> None:
    ex.run(["rm", "-rf", "--", str(path)])
    ex.run(["mkdir", "-p", "--", str(path)])


def operations(ex, folder) -> list:
    """The same operations on either executor, their results as values."""
    blob = bytes(range(256)) * 64
    mega = os.urandom(1024 * 1024 + 3)
    out: list = [ex.home]
    out.append(ex.run(["sh", "-c", "echo out; echo 'err: $x' >&2; exit 3"], check=False))
    out.append(ex.run(["pwd"]))
    out.append(ex.run(["cat", "--", "/nonexistent/x"], check=False))
    out.append(ex.run(["no-such-program-on-tvps"], check=False))
    ex.write_file(f"{folder}/blob", blob, mode=0o640)
    out.append(ex.read_file(f"{folder}/blob") == blob)
    out.append(ex.run(["cat"], stdin=mega).stdout == mega.decode("utf-8", "replace"))
    out.append(ex.run(["true"], stdin=mega))                  # reads none of a megabyte
    out.append(ex.run(["wc", "-c"]))                          # no stdin: EOF at once
    ex.write_file(f"{folder}/mega", mega)
    out.append(ex.read_file(f"{folder}/mega") == mega)
    ex.append_file(f"{folder}/log", b"one\n")
    ex.append_file(f"{folder}/log", b"two\n")
    out.append(ex.read_file(f"{folder}/log"))
    with pytest.raises(FileNotFoundError):
        ex.read_file(f"{folder}/missing")
    out.append(ex.run(["sh", "-c", "kill -9 $$"], check=False).exited)
    return out


def test_many_operations_over_one_channel_give_what_a_channel_each_gives(twin, twin_settings, tmp_path, monkeypatch):
    trace = tmp_path / "trace.jsonl"
    monkeypatch.setenv("TWILIGHT_TRACE", str(trace))
    twilight_trace.install()                  # counting the wire from the connect on (home records nothing)
    with SSHExecutor(twin_settings) as ex:
        fresh_dir(ex, twin.remote_root / "sess-loop")
        looped = operations(ex, twin.remote_root / "sess-loop")
    on_loop = wire(trace)
    trace.unlink()
    with SSHExecutor(per_channel(twin_settings)) as ex:
        fresh_dir(ex, twin.remote_root / "sess-chan")
        alone = operations(ex, twin.remote_root / "sess-chan")
    on_channels = wire(trace)

    assert looped == alone
    assert looped[1].exited == 3 and looped[1].stderr == "err: $x\n" and looped[-1] == -1
    assert looped[3].exited == 1 and "No such file" in looped[3].stderr
    assert looped[4].exited == 127 and "not found" in looped[4].stderr
    assert on_loop[:2] == [("ssh", "connect"), ("ssh", "channel")]          # the loop's one channel
    assert on_loop.count(("ssh", "channel")) == 1 and ("ssh", "fallback") not in on_loop
    n = on_loop.count(("ssh", "request"))
    assert n >= 16 and on_channels.count(("ssh", "channel")) == n + 1      # + the loop that did not start
    assert on_channels.count(("ssh", "fallback")) == 1 and ("ssh", "request") not in on_channels


def test_a_command_past_its_timeout_says_what_a_channel_says_and_the_next_operation_works(twin_settings, tmp_path,
                                                                                          monkeypatch):
    messages, held = [], []
    for settings in (twin_settings, per_channel(twin_settings)):
        with SSHExecutor(settings) as ex:
            assert ex.run(["echo", "before"]).stdout == "before\n"
            trace = tmp_path / f"trace-{len(messages)}.jsonl"
            monkeypatch.setenv("TWILIGHT_TRACE", str(trace))
            with pytest.raises(Unreachable) as e:
                ex.run(["sleep", "30"], timeout=1)
            messages.append((str(e.value), e.value.exit_code))
            assert ex.run(["echo", "after"]).stdout == "after\n"
            monkeypatch.delenv("TWILIGHT_TRACE")
            with pytest.raises(Unreachable) as e:            # exited, but its child holds stdout open
                ex.run(["sh", "-c", "sleep 20 & echo started"], timeout=2)
            held.append(str(e.value))
            assert ex.run(["echo", "after"]).stdout == "after\n"
            if settings is twin_settings:      # the loop was discarded: the next operation opened another
                assert wire(trace) == [("ssh", "request"), ("ssh", "channel"), ("ssh", "request")]
    assert messages[0] == messages[1]
    assert "`sleep 30` did not finish within 1 s" in messages[0][0] and messages[0][1] == 3
    assert held[0] == held[1] and "did not finish within 2 s (it exited, but a child it left in the background" in held[0]
    assert "(it exited" not in messages[0][0]         # a channel closed on time-out said so too: fixed


def test_a_loop_that_cannot_start_means_one_channel_per_operation_said_once(twin_settings, tmp_path, monkeypatch):
    trace = tmp_path / "trace.jsonl"
    monkeypatch.setenv("TWILIGHT_TRACE", str(trace))
    with SSHExecutor(per_channel(twin_settings)) as ex:
        results = [ex.run(["echo", str(i)]).stdout for i in range(3)]
    assert results == ["0\n", "1\n", "2\n"]
    assert wire(trace) == [("ssh", "connect"), ("ssh", "channel"), ("ssh", "fallback"),
                           ("ssh", "channel"), ("ssh", "channel"), ("ssh", "channel")]
    note = [json.loads(line) for line in trace.read_text().splitlines() if '"fallback"' in line][0]
    assert "did not start" in note["why"] and "python3-not-on-tvps" in note["why"] and "127" in note["why"]


def test_a_call_while_the_loop_is_busy_takes_a_channel_of_its_own(twin_settings, tmp_path, monkeypatch):
    with SSHExecutor(twin_settings) as ex:
        assert ex.run(["true"]).ok                              # the loop is open
        trace = tmp_path / "trace.jsonl"
        monkeypatch.setenv("TWILIGHT_TRACE", str(trace))
        slow: list = []
        worker = threading.Thread(target=lambda: slow.append(ex.run(["sh", "-c", "sleep 2; echo slow"])))
        worker.start()
        deadline = time.monotonic() + 30
        while ("ssh", "request") not in wire(trace) and time.monotonic() < deadline:
            time.sleep(0.05)
        quick = ex.run(["echo", "quick"])
        worker.join(60)
        assert quick.stdout == "quick\n" and slow[0].stdout == "slow\n"
        assert sorted(wire(trace)) == [("ssh", "channel"), ("ssh", "request")]
        assert ex.run(["echo", "again"]).stdout == "again\n"        # the loop is still there
        assert wire(trace).count(("ssh", "channel")) == 1


def alive(pid: int) -> bool:
    """A process that still runs (a zombie awaiting its parent's wait has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


CHILD = textwrap.dedent("""
    import sys
    from twilight_ops.twin import build
    from twilight_ops.remote import SSHExecutor
    ex = SSHExecutor(build.settings_for(__import__("pathlib").Path(sys.argv[1])))
    print(ex.run(["sh", "-c", "echo $PPID"]).stdout.strip(), flush=True)   # the loop's own PID on tvps
    ex.run(["sh", "-c", 'touch "$1"; sleep 4; touch "$2"', "sh", sys.argv[2], sys.argv[3]])
""")


def test_kill_9_of_the_local_side_mid_command_leaves_no_loop_on_tvps_once_the_command_ends(twin, twin_settings):
    folder = twin.remote_root / "sess-kill"
    with SSHExecutor(twin_settings) as ex:
        fresh_dir(ex, folder)
    started, done = folder / f"started-{uuid.uuid4().hex[:6]}", folder / "done"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(twin.invoke_yaml), str(started), str(done)],
                             cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        loop_pid = int(child.stdout.readline())
        with open(f"/proc/{loop_pid}/cmdline", "rb") as f:
            assert b"TWILIGHT-LOOP" in f.read()                  # it is the loop
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists()
        os.kill(child.pid, signal.SIGKILL)                       # the operator's machine dies mid-command
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    deadline = time.monotonic() + 60
    while alive(loop_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert done.exists()                                         # the command it was running finished
    assert not alive(loop_pid)                                   # and the loop is gone


def test_a_loop_killed_on_tvps_mid_request_is_a_lost_link_never_a_second_run(twin, twin_settings, tmp_path, monkeypatch):
    """The loop dies while its command runs: the caller gets LinkLost (the resume path), the command is
    not sent again on a new loop (an append must not happen twice), and the next operation works."""
    from twilight_ops.errors import LinkLost

    folder = twin.remote_root / "sess-died"
    log = folder / "ran.log"
    with SSHExecutor(twin_settings) as ex:
        fresh_dir(ex, folder)
        loop_pid = int(ex.run(["sh", "-c", "echo $PPID"]).stdout.strip())
        with open(f"/proc/{loop_pid}/cmdline", "rb") as f:
            assert b"TWILIGHT-LOOP" in f.read()
        trace = tmp_path / "trace.jsonl"
        monkeypatch.setenv("TWILIGHT_TRACE", str(trace))
        with pytest.raises(LinkLost, match="lost the connection to .* while running"):
            ex.run(["sh", "-c", 'echo ran >> "$1"; kill -9 "$2"; sleep 2', "sh", str(log), str(loop_pid)])
        assert log.read_text() == "ran\n"                          # it ran once and was not re-sent
        assert wire(trace) == [("ssh", "request")]
        assert ex.run(["cat", "--", str(log)]).stdout == "ran\n"   # the next operation opens a new loop
        assert wire(trace)[1:] == [("ssh", "channel"), ("ssh", "request")]
    assert not alive(loop_pid)


# ---- open_soon: the link opens on a thread while the caller works (smoke, monitor)

def test_open_soon_gives_the_same_answers_over_the_same_wire(twin, twin_settings, tmp_path, monkeypatch):
    trace = tmp_path / "trace.jsonl"
    monkeypatch.setenv("TWILIGHT_TRACE", str(trace))
    twilight_trace.install()
    with SSHExecutor(twin_settings) as ex:
        fresh_dir(ex, twin.remote_root / "sess-plain")
        plain = operations(ex, twin.remote_root / "sess-plain")
    plain_wire = wire(trace)
    trace.unlink()
    with SSHExecutor(twin_settings) as ex:
        ex.open_soon()
        ex.open_soon()                                   # a second call while it opens: nothing more
        fresh_dir(ex, twin.remote_root / "sess-soon")
        soon = operations(ex, twin.remote_root / "sess-soon")
    assert soon[1:] == plain[1:] and soon[0] == plain[0] == ex.home
    assert wire(trace) == plain_wire                     # the same requests, in the same order


def _no_known_hosts(twin_settings, tmp_path):
    ssh_cfg = "\n".join(line for line in twin_settings.ssh_config.read_text().splitlines()
                        if "UserKnownHostsFile" not in line) + "\n"
    (tmp_path / "ssh_config").write_text(ssh_cfg)
    return dataclasses.replace(twin_settings, ssh_config=tmp_path / "ssh_config",
                               known_hosts=tmp_path / "missing_known_hosts", connect_attempts=1)


def test_what_opening_soon_meets_is_raised_by_the_next_operation_as_open_raises_it(twin_settings, tmp_path):
    settings = _no_known_hosts(twin_settings, tmp_path)
    with pytest.raises(Exception) as direct:
        SSHExecutor(settings).run(["true"])
    ex = SSHExecutor(settings)
    ex.open_soon()
    with pytest.raises(type(direct.value)) as soon:
        ex.run(["true"])
    assert str(soon.value) == str(direct.value) and "known_hosts" in str(soon.value)
    ex.close()                                           # nothing was opened: closes quietly


def test_close_right_after_open_soon_leaves_no_loop_on_tvps(twin_settings):
    others = ["sh", "-c", 'pgrep -u "$(id -u)" -f "TWILIGHT-[L]OOP" | grep -vx "$PPID" || true']
    with SSHExecutor(twin_settings) as watcher:          # the account's loops, but the watcher's own
        before = set(watcher.run(others).stdout.split())  # (an earlier test's may still be ending)
        ex = SSHExecutor(twin_settings)
        ex.open_soon()
        ex.close()
        assert ex._opening is None and not ex.conn.is_connected
        deadline = time.monotonic() + 10                 # the closed loop ends at the EOF sshd gives it
        while (new := set(watcher.run(others).stdout.split()) - before) and time.monotonic() < deadline:
            time.sleep(0.1)
    assert new == set()
