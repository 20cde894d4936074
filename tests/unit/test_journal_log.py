"""Issue 20 item 1: the journal is held once and kept as an append-only event log.

The "tvps" side here is a LocalExecutor over a temp dir (a real executor on real files, the same
calls the SSHExecutor answers over sftp); tests/integration/test_journal_twin.py does it on the twin.
"""
from __future__ import annotations

import json
import os

import pytest

from twilight_ops import journal_log
from twilight_ops.builders.layout import layout
from twilight_ops.config import DEFAULTS, load_settings
from twilight_ops.errors import BadInput
from twilight_ops.journal import JournalStore, Step, local_copies, new_journal, read_copy
from twilight_ops.local import LocalExecutor

V = "v0.3.0-w4-cutover"


class CountingExecutor(LocalExecutor):
    """A LocalExecutor that counts its file operations (what TWILIGHT_TRACE counts on tvps)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def read_file(self, path: str) -> bytes:
        self.ops.append("read")
        return super().read_file(path)

    def write_file(self, path: str, data: bytes, mode: int = 0o600, *, parents: bool = False) -> None:
        self.ops.append("write")
        super().write_file(path, data, mode, parents=parents)

    def append_file(self, path: str, data: bytes) -> None:
        self.ops.append("append")
        super().append_file(path, data)


def writes(ex: CountingExecutor) -> list[str]:
    return [op for op in ex.ops if op != "read"]


def stores(tmp_path, remote: bool = True):
    settings = load_settings(dict(DEFAULTS, state_dir=str(tmp_path)))
    home = tmp_path / "tvps-home"
    home.mkdir(exist_ok=True)
    lay = layout(settings, str(home))
    warned: list[str] = []
    ex = CountingExecutor() if remote else None

    def make(ex_=ex):
        return JournalStore(tmp_path / "laptop", "tvps", lay, ex_, warn=warned.append)
    return make, lay, ex, warned


def test_a_journal_is_an_event_log_one_line_per_change(tmp_path):
    make, lay, ex, _ = stores(tmp_path)
    store = make()
    j = store.held(V, host="tvps", operator="op")
    with store.step(j, "preflight") as step:
        step.evidence["checks"] = 7
    j.facts["pre_digest"] = "repo@sha256:" + "a" * 64
    store.save(j)
    lines = store.local_path(V).read_bytes().splitlines()
    kinds = [json.loads(x)["kind"] for x in lines]
    assert kinds == ["journal", "step", "step", "fact"]          # header, start, end, one fact
    store.save(j)                                                 # nothing changed: nothing appended
    assert store.local_path(V).read_bytes().splitlines() == lines
    mirror = (tmp_path / "tvps-home" / "twilight" / "cutover" / f"journal-{V}.jsonl").read_bytes()
    assert mirror.splitlines() == lines                           # the mirror holds the same events
    assert oct(os.stat(store.local_path(V)).st_mode & 0o777) == "0o600"


def test_held_is_one_object_and_a_nested_phase_loses_nothing(tmp_path):
    """The data loss of issue 20: an outer step holding the journal while an inner phase saved its
    own steps; the outer save overwrote them.  Now both change the one object."""
    make, _, _, _ = stores(tmp_path)
    store = make()
    outer = store.held(V, host="tvps", operator="op")

    def hermes(step) -> None:
        inner = store.held(V)
        assert inner is outer
        for name in ("hermes-install", "hermes-restart", "hermes-verify"):
            with store.step(inner, name):
                pass

    store.once(outer, "rollback#1:hermes", hermes)
    names = [s.name for s in make().load(V).steps]
    assert names == ["rollback#1:hermes", "hermes-install", "hermes-restart", "hermes-verify"]


def test_a_torn_last_line_is_dropped_reported_kept_aside_and_the_log_goes_on(tmp_path):
    make, _, _, warned = stores(tmp_path, remote=False)
    store = make()
    j = store.held(V, host="tvps", operator="op")
    with store.step(j, "deploy#1:pull"):
        pass
    path = store.local_path(V)
    good = path.read_bytes()
    torn = b'{"id":"deadbeef","seq":9,"at":"2026-12-07T00:00:00+00:00","kind":"step","sid":"x","step":{"na'
    path.write_bytes(good + torn)                   # what kill -9 in the middle of an append leaves
    again = make().load(V)
    assert [s.name for s in again.steps] == ["deploy#1:pull"] and again.done("deploy#1:pull")
    assert any("the last, cut short" in w for w in warned)
    aside = [p for p in path.parent.iterdir() if ".torn-" in p.name]
    assert len(aside) == 1 and aside[0].read_bytes() == good + torn      # nothing lost, not even the fragment
    assert path.read_bytes().endswith(b"\n") and torn not in path.read_bytes()
    store2 = make()
    j2 = store2.held(V)
    with store2.step(j2, "deploy#1:up"):
        pass
    warned.clear()
    assert [s.name for s in make().load(V).steps] == ["deploy#1:pull", "deploy#1:up"] and warned == []


def test_copies_merge_by_event_id_and_a_future_stamped_mirror_does_not_win(tmp_path):
    """Issue 23's gap: the copy chosen by timestamp alone.  The mirror here holds fewer events, all
    stamped in the future; nothing of the local copy is lost and the mirror gets what it missed."""
    make, lay, ex, _ = stores(tmp_path)
    store = make()
    j = store.held(V, host="tvps", operator="op")
    j.facts["pre_digest"] = "d0"
    store.save(j)
    mirror = tmp_path / "tvps-home" / "twilight" / "cutover" / f"journal-{V}.jsonl"
    future = [dict(json.loads(x), at="2099-01-01T00:00:00+00:00") for x in mirror.read_bytes().splitlines()]
    mirror.write_bytes(b"".join(journal_log.line(e).encode() for e in future))
    with store.step(j, "smoke-w4"):                # a step only the local copy has: the mirror write "failed"
        pass
    mirror.write_bytes(b"".join(journal_log.line(e).encode() for e in future))
    again = make().load(V)
    assert [s.name for s in again.steps] == ["smoke-w4"] and again.facts["pre_digest"] == "d0"
    fresh = make()
    fresh.flush(fresh.held(V))
    ids = {json.loads(x)["id"] for x in mirror.read_bytes().splitlines()}
    assert ids == {json.loads(x)["id"] for x in fresh.local_path(V).read_bytes().splitlines()}


def test_the_mirror_alone_restores_a_lost_laptop_copy(tmp_path):
    make, lay, ex, _ = stores(tmp_path)
    store = make()
    j = store.held(V, host="tvps", operator="op")
    j.facts["snapshot"] = {"sha256": "ab"}
    with store.step(j, "snapshot"):
        pass
    store.local_path(V).unlink()
    again = make().load(V)
    assert again.facts["snapshot"] == {"sha256": "ab"} and again.done("snapshot")
    assert store.local_path(V).exists()              # written back from the mirror


def test_inside_a_batch_the_mirror_is_written_once_at_its_end(tmp_path):
    make, lay, ex, _ = stores(tmp_path)
    store = make()
    j = store.held(V, host="tvps", operator="op")
    with store.batch():
        for n in range(10):
            with store.step(j, f"step-{n}"):
                j.facts[f"fact-{n}"] = n
        assert writes(ex) == []                      # nothing on tvps yet, every event on the laptop
    assert writes(ex) == ["write"]                   # a fresh mirror: one whole write
    with store.batch():
        with store.step(j, "more"):
            pass
    assert writes(ex) == ["write", "append"]         # then one append per batch
    assert len(make().load(V).steps) == 11


def test_a_batch_ended_by_an_error_still_sends_the_mirror_and_keeps_the_error(tmp_path):
    make, lay, ex, _ = stores(tmp_path)
    store = make()
    j = store.held(V, host="tvps", operator="op")
    with pytest.raises(KeyError):
        with store.batch():
            with store.step(j, "deploy#1:up"):
                raise KeyError("cut")
    remote = JournalStore(tmp_path / "other-laptop", "tvps", lay, ex, warn=lambda s: None).load(V)
    assert remote.last("deploy#1:up").outcome == "interrupted"


def test_a_torn_mirror_is_kept_aside_and_rewritten_whole(tmp_path):
    make, lay, ex, warned = stores(tmp_path)
    store = make()
    j = store.held(V, host="tvps", operator="op")
    with store.step(j, "tag-push"):
        pass
    mirror = tmp_path / "tvps-home" / "twilight" / "cutover" / f"journal-{V}.jsonl"
    mirror.write_bytes(mirror.read_bytes() + b'{"id":"cut')
    store2 = make()
    j2 = store2.held(V)
    assert any("tvps mirror" in w and "cut short" in w for w in warned)
    with store2.step(j2, "deploy#1:pull"):
        pass
    assert json.loads(mirror.read_bytes().splitlines()[-1])["kind"] == "step"
    assert [p for p in mirror.parent.iterdir() if ".torn-" in p.name]
    assert [s.name for s in JournalStore(tmp_path / "x", "tvps", lay, ex).load(V).steps] == ["tag-push", "deploy#1:pull"]


def test_a_journal_from_before_the_log_is_converted_and_kept(tmp_path):
    make, lay, ex, warned = stores(tmp_path, remote=False)
    store = make()
    old = new_journal(V, "tvps", "op")
    old.steps.append(Step(name="preflight", started_at="2026-05-12T01:00:00+00:00", ended_at="t", outcome="ok"))
    old.facts["pre_digest"] = "d0"
    legacy = store.legacy_local_path(V)
    legacy.parent.mkdir(parents=True)
    legacy.write_text(old.to_json())
    j = make().load(V)
    assert j.done("preflight") and j.facts == {"pre_digest": "d0"}
    assert legacy.read_text() == old.to_json() and store.local_path(V).exists()
    assert any("converted" in w for w in warned)
    assert local_copies(store.local_dir) == [store.local_path(V)]
    assert read_copy(store.local_path(V)).facts == {"pre_digest": "d0"}


def test_a_dropped_fact_is_an_event_and_refresh_merges_another_runs_events(tmp_path):
    make, lay, ex, _ = stores(tmp_path)
    a, b = make(), make()
    ja = a.held(V, host="tvps", operator="op")
    ja.facts.update(x=1, y=2)
    a.save(ja)
    jb = b.held(V)
    del jb.facts["x"]
    with b.step(jb, "rollback#1"):
        pass
    same = a.held(V, fresh=True)
    assert same is ja and ja.facts == {"y": 2} and [s.name for s in ja.steps] == ["rollback#1"]


def test_a_file_with_no_event_that_is_no_journal_is_one_line_exit_2(tmp_path):
    make, *_ = stores(tmp_path, remote=False)
    store = make()
    store.local_path(V).parent.mkdir(parents=True)
    store.local_path(V).write_bytes(b"garbage\nmore garbage\n")
    with pytest.raises(BadInput, match="is unreadable"):
        store.load(V)


def test_fold_orders_by_seq_not_by_place_in_the_file():
    e = [{"id": "a", "seq": 0, "at": "t0", "kind": "journal", "version": V},
         {"id": "c", "seq": 2, "at": "t2", "kind": "step", "sid": "s", "step": {"name": "n", "started_at": "t", "outcome": "ok"}},
         {"id": "b", "seq": 1, "at": "t1", "kind": "step", "sid": "s", "step": {"name": "n", "started_at": "t", "outcome": "running"}}]
    folded = journal_log.fold(e)
    assert folded.steps == [("s", {"name": "n", "started_at": "t", "outcome": "ok"})]
    assert journal_log.merge(e[:2], e[1:]) == [e[0], e[2], e[1]]


def test_a_reloaded_journal_keeps_the_order_of_keys_the_phase_wrote(tmp_path):
    """The report written from the held journal and `inv report` (from disk) must be the same text."""
    make, *_ = stores(tmp_path, remote=False)
    store = make()
    j = store.held(V, host="tvps", operator="op")
    with store.step(j, "deploy#1") as step:
        step.evidence.update({"healthy_after_s": 3.1, "digest": "sha256:ab"})
    j.facts["zeta"] = {"b": 1, "a": 2}
    store.save(j)
    again = make().load(V)
    assert list(again.last("deploy#1").evidence) == ["healthy_after_s", "digest"]
    assert list(again.facts["zeta"]) == ["b", "a"]
    assert again.to_json() == j.to_json()
