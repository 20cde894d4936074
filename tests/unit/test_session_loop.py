"""Issue 22: the request loop's frames (pure) and the loop script itself, run in a real local python3
(the real loop over real pipes: nothing mocked)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from twilight_ops.builders import session
from twilight_ops.executor import render


# ---------------------------------------------------------------- frames

def answer_frame(code: int, out: bytes, err: bytes) -> bytes:
    return (b"A" + code.to_bytes(4, "big", signed=True) + len(out).to_bytes(8, "big") + out
            + len(err).to_bytes(8, "big") + err)


def test_a_request_frame_carries_the_command_and_exactly_the_stdin_bytes():
    frame = session.request("cat -- 'a b'", b"\x00\xff\n")
    assert frame == b"Q" + (12).to_bytes(8, "big") + b"cat -- 'a b'" + (3).to_bytes(8, "big") + b"\x00\xff\n"
    assert session.request("true", b"") == b"Q" + (4).to_bytes(8, "big") + b"true" + bytes(8)


def test_an_answer_split_anywhere_is_whole_only_once_every_byte_came():
    out, err = bytes(range(256)) * 3, b"warning\n"
    wire = b"X" + answer_frame(7, out, err) + answer_frame(-1, b"", b"")
    reader = session.AnswerReader()
    got = []
    for i in range(len(wire)):          # one byte at a time: every split point
        reader.feed(wire[i:i + 1])
        a = reader.answer()
        if a is not None:
            got.append(a)
    assert got == [session.Answer(7, out, err), session.Answer(-1, b"", b"")]
    assert reader.pending == 0


def test_the_exited_frame_is_noted_until_the_answer():
    reader = session.AnswerReader()
    reader.feed(b"X")
    assert reader.answer() is None and reader.exited
    reader.feed(answer_frame(0, b"ok", b""))
    assert reader.answer() == session.Answer(0, b"ok", b"") and not reader.exited


def test_the_hello_is_waited_for_and_anything_else_is_garbled():
    reader = session.AnswerReader()
    reader.feed(session.HELLO[:5])
    assert reader.hello() is None
    reader.feed(session.HELLO[5:] + b"X")
    assert reader.hello() is True and reader.pending == 1
    junk = session.AnswerReader()
    junk.feed(b"Welcome to tvps!\n")
    with pytest.raises(session.Garbled, match="did not start"):
        junk.hello()
    bad = session.AnswerReader()
    bad.feed(b"Z" + bytes(20))
    with pytest.raises(session.Garbled, match="unexpected frame"):
        bad.answer()


def test_the_loop_command_execs_the_interpreter_with_the_script_as_one_quoted_argument():
    argv = session.loop_argv(("python3",))
    assert argv[:3] == ["exec", "python3", "-c"] and argv[3] == session.LOOP_SCRIPT
    assert render(argv).startswith("exec python3 -c '")
    compile(session.LOOP_SCRIPT, "loop", "exec")          # the script is valid Python
    assert repr(session.HELLO) in session.LOOP_SCRIPT


# ---------------------------------------------------------------- the real loop

PY = shutil.which("python3") or "python3"


class Loop:
    """The loop started the way sshd starts it: `SHELL -c 'exec python3 -c SCRIPT'` in `home`."""

    def __init__(self, home: Path, shell: str = "/bin/sh"):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SHELL": shell, "HOME": str(home),
               "TWILIGHT_MARK": "from-the-session", "SHLVL": "1"}
        self.proc = subprocess.Popen([shell, "-c", render(session.loop_argv((PY,)))], cwd=home, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.reader = session.AnswerReader()
        assert self.proc.stdout is not None and self.proc.stdin is not None
        while self.reader.hello() is None:
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            assert chunk, "the loop ended before its hello"
            self.reader.feed(chunk)

    def ask(self, command: str, stdin: bytes = b"") -> session.Answer:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(session.request(command, stdin))
        self.proc.stdin.flush()
        while True:
            a = self.reader.answer()
            if a is not None:
                return a
            chunk = os.read(self.proc.stdout.fileno(), 1 << 20)
            assert chunk, "the loop ended before it answered"
            self.reader.feed(chunk)

    def close(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        return self.proc.wait(timeout=30)


@pytest.fixture
def loop(tmp_path):
    lp = Loop(tmp_path)
    yield lp
    if lp.proc.poll() is None:
        lp.proc.kill()
        lp.proc.wait()


def test_the_loop_answers_many_requests_with_exit_codes_stderr_and_binary_stdout(loop, tmp_path):
    assert loop.ask("true") == session.Answer(0, b"", b"")
    assert loop.ask("echo out; echo err >&2; exit 3") == session.Answer(3, b"out\n", b"err\n")
    blob = bytes(range(256)) * 16
    (tmp_path / "blob").write_bytes(blob)
    assert loop.ask(render(["cat", "--", "blob"])) == session.Answer(0, blob, b"")     # cwd = where it started
    assert loop.ask("pwd -P").stdout.decode().strip() == str(tmp_path.resolve())
    missing = loop.ask(render(["cat", "--", "nope"]))
    direct = subprocess.run(["sh", "-c", render(["cat", "--", "nope"])], cwd=tmp_path, capture_output=True)
    assert (missing.exited, missing.stderr) == (direct.returncode, direct.stderr) and missing.exited == 1
    assert loop.close() == 0                        # EOF on its stdin: the loop ends


def test_a_command_gets_exactly_its_stdin_then_eof_and_a_megabyte_passes_both_ways(loop):
    data = os.urandom(1024 * 1024 + 7)
    assert loop.ask("cat", data) == session.Answer(0, data, b"")
    assert loop.ask("wc -c", b"") == session.Answer(0, b"0\n", b"")     # no stdin: EOF at once
    assert loop.ask("true", data).exited == 0          # a command that reads none of a megabyte
    assert loop.ask("cat", b"after\n").stdout == b"after\n"             # and the next one is clean


def test_the_session_shell_and_environment_are_the_commands_own(tmp_path):
    lp = Loop(tmp_path, shell="/bin/sh")
    try:
        direct = subprocess.run(["sh", "-c", "no-such-program-x"], capture_output=True)
        got = lp.ask("no-such-program-x")
        assert (got.exited, got.stderr) == (127, direct.stderr)       # argv[0] is the shell's basename, as sshd
        env = dict(line.split("=", 1) for line in lp.ask("env").stdout.decode().splitlines() if "=" in line)
        assert env["TWILIGHT_MARK"] == "from-the-session" and env["SHELL"] == "/bin/sh"
        assert "SHLVL" not in env or env["SHLVL"] != "2"          # the loop's own shell level is not passed on
    finally:
        lp.close()


def test_a_command_killed_by_a_signal_answers_minus_one_and_the_loop_goes_on(loop):
    assert loop.ask("kill -9 $$").exited == -1
    assert loop.ask("echo still").stdout == b"still\n"


def test_the_loop_tells_when_the_command_exited_though_a_child_still_holds_its_output(loop):
    assert loop.proc.stdin is not None and loop.proc.stdout is not None
    loop.proc.stdin.write(session.request("(sleep 1; echo late) & echo now", b""))
    loop.proc.stdin.flush()
    first = os.read(loop.proc.stdout.fileno(), 65536)
    loop.reader.feed(first)
    assert loop.reader.answer() is None
    assert loop.reader.exited                      # the X frame came before the output ended
    while (a := loop.reader.answer()) is None:
        loop.reader.feed(os.read(loop.proc.stdout.fileno(), 65536))
    assert a == session.Answer(0, b"now\nlate\n", b"")


def test_a_foreign_frame_ends_the_loop_without_running_anything(loop, tmp_path):
    assert loop.proc.stdin is not None
    loop.proc.stdin.write(b"Z" + bytes(8))
    loop.proc.stdin.flush()
    assert loop.proc.wait(timeout=30) == 3


def test_the_loop_ends_once_its_command_ends_when_the_local_side_is_gone(tmp_path):
    lp = Loop(tmp_path)
    assert lp.proc.stdin is not None and lp.proc.stdout is not None
    lp.proc.stdin.write(session.request("sleep 1; touch done", b""))
    lp.proc.stdin.flush()
    lp.proc.stdout.close()                         # the reader is gone (sshd closed the channel)
    lp.proc.stdin.close()
    assert lp.proc.wait(timeout=30) == 0
    assert (tmp_path / "done").exists()            # the command it was running finished


def test_no_stdin_is_written_to_disk(tmp_path):
    lp = Loop(tmp_path)
    try:
        before = set(os.listdir(tmp_path))
        assert lp.ask("cat >/dev/null", b"token-value-x" * 1000).exited == 0
        assert set(os.listdir(tmp_path)) == before
    finally:
        lp.close()
