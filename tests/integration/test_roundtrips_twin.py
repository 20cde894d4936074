"""Issue 22 item 2 on the twin: the executor's file operations that were several sftp requests are
one command each, with the same effect and the same errors (real sshd, real sftp, real files); each
is one request on the executor's request loop (one channel for the executor's life)."""
from __future__ import annotations

import json
import os

import pytest

pytestmark = pytest.mark.twin


def fresh_dir(ex, path) -> None:
    """The twin is reused between runs: each test starts from an empty folder of its own."""
    ex.run(["rm", "-rf", "--", str(path)])
    ex.run(["mkdir", "-p", "--", str(path)])


def wire(trace_file) -> list[tuple[str, str]]:
    if not trace_file.exists():
        return []
    return [(r["side"], r["op"]) for r in map(json.loads, trace_file.read_text().splitlines())]


def test_an_append_is_one_channel_keeps_what_was_there_and_is_on_tvps_when_it_returns(twin, ex, tmp_path, monkeypatch):
    folder = twin.remote_root / "rt-append"
    fresh_dir(ex, folder)
    path = folder / "a b; $(x) 'q'.log"
    ex.append_file(str(path), b"one\n")                     # the run's first write here (tvps' clock for the sweep)
    inode = path.stat().st_ino
    trace = tmp_path / "trace.jsonl"
    monkeypatch.setenv("TWILIGHT_TRACE", str(trace))
    before = ex.commands_run
    ex.append_file(str(path), b"$(two) `x`\n")
    assert path.read_bytes() == b"one\n$(two) `x`\n" and path.stat().st_ino == inode
    assert wire(trace) == [("tvps", "append"), ("ssh", "request")]     # was: sftp open, fstat, write, close; then a
                                                                      # channel of its own; now one request on the loop
    assert ex.commands_run == before                                 # deploy's evidence counts the phase's own commands
    assert sorted(os.listdir(folder)) == [path.name]


def test_an_append_into_a_missing_directory_is_file_not_found_and_creates_nothing(twin, ex):
    gone = twin.remote_root / "rt-gone"
    ex.run(["rm", "-rf", "--", str(gone)])
    with pytest.raises(FileNotFoundError):
        ex.append_file(str(gone / "audit.log"), b"x\n")
    assert not gone.exists()


def test_queued_appends_ride_on_the_next_request_and_close_sends_the_rest(twin, twin_settings, tmp_path, monkeypatch):
    """append_soon (the audit log): the run's first write in a folder goes at once (it sweeps dead runs'
    temps there); after it, no request of its own: the next operation carries it, in order and before
    the operation itself (read-your-writes), with that command's own stdin intact; close() sends what
    no operation carried; a missing directory is made."""
    from twilight_ops.remote import SSHExecutor

    folder = twin.remote_root / "rt-soon"
    path = folder / "audit; $(x).log"
    trace = tmp_path / "trace.jsonl"
    with SSHExecutor(twin_settings) as ex:
        fresh_dir(ex, folder)
        monkeypatch.setenv("TWILIGHT_TRACE", str(trace))
        ex.append_soon(str(path), b"zero\n")
        assert wire(trace) == [("tvps", "append"), ("ssh", "request")]          # the first: at once (and the sweep)
        trace.unlink()
        ex.append_soon(str(path), b"one\n")
        ex.append_soon(str(path), b"two\n")
        assert wire(trace) == [("tvps", "append"), ("tvps", "append")]          # nothing sent yet
        assert ex.read_file(str(path)) == b"zero\none\ntwo\n"                 # rode on the read: one request
        assert ex.run(["cat"], stdin=b"the command's own stdin").stdout == "the command's own stdin"
        assert wire(trace)[2:] == [("tvps", "read"), ("ssh", "request"), ("tvps", "run"), ("ssh", "request")]
        ex.append_soon(str(path), b"three\n")
        deeper = folder / "sub dir" / "new.log"
        ex.append_soon(str(deeper), b"made\n")                                  # its folder does not exist yet
    assert path.read_bytes() == b"zero\none\ntwo\nthree\n"                    # close() sent them
    assert deeper.read_bytes() == b"made\n"


def test_read_first_is_one_request_and_gives_the_first_file_that_exists(twin, ex, tmp_path, monkeypatch):
    """The journal mirror, else its legacy file: one command, the bytes exact, the index of the one found."""
    folder = twin.remote_root / "rt-first"
    fresh_dir(ex, folder)
    log, old = folder / "j.jsonl", folder / "j.json"
    with pytest.raises(FileNotFoundError):
        ex.read_first([str(log), str(old)])
    ex.write_file(str(old), b"{\"legacy\": true}")
    trace = tmp_path / "trace.jsonl"
    monkeypatch.setenv("TWILIGHT_TRACE", str(trace))
    assert ex.read_first([str(log), str(old)]) == (1, b"{\"legacy\": true}")
    assert wire(trace) == [("tvps", "read"), ("ssh", "request")]
    data = bytes(range(256)) + b"\n\n"
    ex.write_file(str(log), data)
    assert ex.read_first([str(log), str(old)]) == (0, data)


def test_a_queued_append_that_fails_is_the_error_of_the_operation_it_rode_on_which_does_not_run(twin, ex):
    from twilight_ops.errors import Unreachable

    folder = twin.remote_root / "rt-soon-bad"
    fresh_dir(ex, folder)
    ex.run(["touch", "--", str(folder / "file")])
    bad = folder / "file" / "audit.log"                      # its directory is a file: cannot be made
    ex.append_soon(str(bad), b"x\n")
    with pytest.raises(Unreachable) as e:
        ex.run(["touch", "--", str(folder / "ran")])
    assert f"cannot append to {bad}" in e.value.message
    assert not (folder / "ran").exists()
    ex.run(["touch", "--", str(folder / "ran")])             # the link is fine and the queue is empty again
    assert (folder / "ran").exists()


def test_a_write_is_one_channel_private_until_renamed_and_a_read_gives_the_bytes(twin, ex, tmp_path, monkeypatch):
    folder = twin.remote_root / "rt-write"
    fresh_dir(ex, folder)
    path = folder / "holder.json"
    ex.write_file(str(path), b"first\n", mode=0o644)         # the first write here also sweeps the folder
    trace = tmp_path / "trace.jsonl"
    monkeypatch.setenv("TWILIGHT_TRACE", str(trace))
    data = bytes(range(256)) * 4                               # any bytes, exactly
    ex.write_file(str(path), data, mode=0o640)
    assert wire(trace) == [("tvps", "write"), ("ssh", "request")]     # was: open, fsetstat, write, fstat, close, rename
    assert path.read_bytes() == data and oct(path.stat().st_mode & 0o777) == "0o640"
    assert sorted(os.listdir(folder)) == ["holder.json"]              # no temp left
    trace.unlink()
    assert ex.read_file(str(path)) == data
    assert wire(trace) == [("tvps", "read"), ("ssh", "request")]      # was: open, read, read, close
    with pytest.raises(FileNotFoundError):
        ex.read_file(str(folder / "nope"))


def test_a_dead_runs_temp_is_swept_by_the_first_write_and_nothing_else_is(twin, twin_settings, tmp_path, monkeypatch):
    from twilight_ops.remote import SSHExecutor

    folder = twin.remote_root / "rt-sweep"
    with SSHExecutor(twin_settings) as ex:
        fresh_dir(ex, folder)
        stale, keep = f"{folder}/.f.json.0badc0de.tmp", [f"{folder}/.f.json.notes.tmp", f"{folder}/f.json.0badc0de.tmp"]
        fresh = f"{folder}/.f.json.1234abcd.tmp"
        ex.run(["touch", "-d", "1 hour ago", "--", stale, *keep])
        ex.run(["touch", "-d", "1 hour", "--", fresh])          # stamped after this run began: another writer's
    trace = tmp_path / "trace.jsonl"
    monkeypatch.setenv("TWILIGHT_TRACE", str(trace))
    with SSHExecutor(twin_settings) as ex:
        ex.append_file(f"{folder}/log", b"x\n")
    # the connect, the request loop's one channel, a request for the append that also lists the folder's
    # temps, one for the stale one's removal
    assert wire(trace) == [("tvps", "append"), ("ssh", "connect"), ("ssh", "channel"),
                           ("ssh", "request"), ("ssh", "request"), ("tvps", "remove")]
    assert sorted(os.listdir(folder)) == sorted(["log", *(p.rsplit("/", 1)[1] for p in [*keep, fresh])])


def test_the_publish_polls_registry_session_asks_for_a_token_once(twin_settings, tmp_path, monkeypatch):
    from twilight_ops import registry

    trace = tmp_path / "trace.jsonl"
    monkeypatch.setenv("TWILIGHT_TRACE", str(trace))
    alone = registry.manifest_digest(twin_settings, "v0.2.0")
    assert alone is not None and alone.startswith("sha256:")
    assert [op for side, op in wire(trace) if side == "http"] == ["HEAD", "GET", "HEAD"]    # 401, token, HEAD
    trace.unlink()
    reg = registry.session(twin_settings)
    try:
        polls = [registry.manifest_digest(twin_settings, "v0.2.0", within=reg) for _ in range(3)]
        missing = registry.manifest_digest(twin_settings, "v9.9.9-none", within=reg)
    finally:
        reg.close()
    assert polls == [alone] * 3 and missing is None
    assert [op for side, op in wire(trace) if side == "http"] == ["HEAD", "GET", "HEAD", "HEAD", "HEAD", "HEAD"]


def test_audit_lines_that_cannot_be_sent_at_the_end_are_one_warning_and_the_run_still_closes(twin, twin_settings, capsys):
    """Target.close: the queued audit lines go with the last request; when they cannot (here: their file's
    folder is a file), the task's own result stands and stderr says so in one line."""
    from twilight_ops.remote import SSHExecutor
    from twilight_ops.target import Target

    folder = twin.remote_root / "rt-close-bad"
    with SSHExecutor(twin_settings) as ex:
        fresh_dir(ex, folder)
        ex.run(["touch", "--", str(folder / "file")])
    t = Target(twin_settings, version="v0.3.0-w4-cutover", announce=None)
    t.ssh.append_soon(str(folder / "file" / "audit.log"), b'{"action": "smoke"}\n')
    t.close()                                               # no exception: the task's result stands
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"warning: the audit log on {twin_settings.host} misses this run's last line(s) (")
    assert f"cannot append to {folder / 'file' / 'audit.log'}" in err[0] and err[0].endswith("the journal has every step")
    assert not t.ssh.conn.is_connected
