"""Issue 22 item 2 on the twin: the executor's file operations that were several sftp requests are
one command each, with the same effect and the same errors (real sshd, real sftp, real files)."""
from __future__ import annotations

import json
import os

import pytest

pytestmark = pytest.mark.twin


def wire(trace_file) -> list[tuple[str, str]]:
    if not trace_file.exists():
        return []
    return [(r["side"], r["op"]) for r in map(json.loads, trace_file.read_text().splitlines())]


def test_an_append_is_one_channel_keeps_what_was_there_and_is_on_tvps_when_it_returns(twin, ex, tmp_path, monkeypatch):
    folder = twin.remote_root / "rt-append"
    ex.run(["mkdir", "-p", "--", str(folder)])
    path = folder / "a b; $(x) 'q'.log"
    ex.append_file(str(path), b"one\n")                     # the run's first write here (tvps' clock for the sweep)
    inode = path.stat().st_ino
    trace = tmp_path / "trace.jsonl"
    monkeypatch.setenv("TWILIGHT_TRACE", str(trace))
    before = ex.commands_run
    ex.append_file(str(path), b"$(two) `x`\n")
    assert path.read_bytes() == b"one\n$(two) `x`\n" and path.stat().st_ino == inode
    assert wire(trace) == [("tvps", "append"), ("ssh", "channel")]     # was: sftp open, fstat, write, close
    assert ex.commands_run == before                                 # deploy's evidence counts the phase's own commands
    assert sorted(os.listdir(folder)) == [path.name]


def test_an_append_into_a_missing_directory_is_file_not_found_and_creates_nothing(twin, ex):
    gone = twin.remote_root / "rt-gone"
    with pytest.raises(FileNotFoundError):
        ex.append_file(str(gone / "audit.log"), b"x\n")
    assert not gone.exists()
