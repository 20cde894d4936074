"""Issue 8 §3 and §9: values read from tvps (lock holder, journal mirror) are validated
before they become local paths, and malformed ones are one line, never a traceback."""
from __future__ import annotations

import json

import pytest

from twilight_ops.builders.layout import layout
from twilight_ops.config import DEFAULTS, load_settings
from twilight_ops.errors import BadInput
from twilight_ops.journal import JournalStore, new_journal
from twilight_ops.lock import Holder

HOSTILE_VERSIONS = ["../../x/PWNED", "v0.3.0/../../PWNED", "/etc/passwd", "v0.3.0\n", "v٠.٣.٠", ""]


def _store(tmp_path):
    settings = load_settings(dict(DEFAULTS, state_dir=str(tmp_path)))
    return JournalStore(tmp_path / "state", "tvps", layout(settings, "/home/ops"), None)


def _store_holding(tmp_path, data: bytes) -> JournalStore:
    """A store whose copy of the v0.3.0 journal holds data (the tvps mirror goes through the
    same parser; tests/integration/test_hardening_twin.py puts one on the twin)."""
    store = _store(tmp_path)
    path = store.local_path("v0.3.0")
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    return store


@pytest.mark.parametrize("version", HOSTILE_VERSIONS)
def test_a_hostile_version_never_names_a_local_or_remote_journal_file(tmp_path, version):
    store = _store(tmp_path)
    with pytest.raises(BadInput):
        store.local_path(version)
    with pytest.raises(BadInput):
        store.lay.journal_path(version)
    assert not (tmp_path / "x").exists()


def test_a_journal_whose_version_escapes_is_refused_on_save(tmp_path):
    store = _store(tmp_path)
    j = new_journal("v0.3.0", "tvps", "ops")
    j.version = "../../x/PWNED"
    with pytest.raises(BadInput):
        store.save(j)
    assert not list(tmp_path.rglob("PWNED*"))


def test_ordinary_versions_and_unknown_still_name_files(tmp_path):
    store = _store(tmp_path)
    assert store.local_path("v0.3.0-w4-cutover").name == "v0.3.0-w4-cutover.jsonl"
    assert store.local_path("unknown").name == "unknown.jsonl"


@pytest.mark.parametrize("data", [
    b"\xff\xfe not utf-8",
    b"[" * 100000 + b"]" * 100000,
    b"[]",
    b'"a string"',
    json.dumps({"version": "../../x/PWNED", "host": "tvps", "operator": "o", "created_at": "t",
                "updated_at": "t", "facts": {}, "steps": []}).encode(),
    json.dumps({"version": "v0.3.0", "steps": "nope"}).encode(),
])
def test_a_malformed_journal_is_one_line_exit_2(tmp_path, data):
    store = _store_holding(tmp_path, data)
    with pytest.raises(BadInput) as caught:
        store.load("v0.3.0")
    assert caught.value.exit_code == 2
    assert "is unreadable" in caught.value.line() or "is for" in caught.value.line()
    assert "\n" not in caught.value.line()


def test_a_mirror_for_another_version_is_refused(tmp_path):
    other = new_journal("v0.2.0", "tvps", "o").to_json().encode()
    with pytest.raises(BadInput, match="is for v0.2.0, not v0.3.0"):
        _store_holding(tmp_path, other).load("v0.3.0")


@pytest.mark.parametrize("text", ["[]", '"str"', '{"client_pid": [1]}', '{"client_pid": "12"}', "[" * 100000])
def test_a_malformed_holder_record_is_a_value_error(text):
    with pytest.raises(ValueError):
        Holder.parse(text)


def test_holder_parse_keeps_a_good_record():
    h = Holder.parse('{"operator":"a@b","version":"v0.3.0","reason":"W4","acquired_at":"t","client_pid":42}')
    assert h.client_pid == 42 and h.version == "v0.3.0"
