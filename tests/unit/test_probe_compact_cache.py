"""monitor/script._strip_docstrings keeps its result in the user's cache (issue 22: the ast round
trip cost every `inv monitor` ≈ 50 ms): the kept text is the compacted source, a changed source
never reads an older entry, and a cache it cannot write only costs the compaction again."""
from __future__ import annotations

from pathlib import Path

from twilight_ops.monitor import script

SOURCE = 'def f():\n    """doc"""\n    return 1  # a comment\n'


def test_the_kept_text_is_the_compacted_source_and_is_read_back(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = script._strip_docstrings(SOURCE)
    assert first == script._compacted(SOURCE) and '"""doc"""' not in first and "comment" not in first
    kept = list((tmp_path / "twilight-ops" / "probe").iterdir())
    assert len(kept) == 1 and kept[0].read_text() == first
    kept[0].write_text("def f():\n    return 2\n")          # read back from the cache, not compacted again
    assert script._strip_docstrings(SOURCE) == "def f():\n    return 2\n"


def test_a_changed_source_gets_its_own_entry(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    a = script._strip_docstrings(SOURCE)
    b = script._strip_docstrings(SOURCE.replace("return 1", "return 3"))
    assert "return 1" in a and "return 3" in b
    assert len(list((tmp_path / "twilight-ops" / "probe").iterdir())) == 2


def test_an_unwritable_cache_still_compacts(tmp_path: Path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")                                   # the cache's parent is a file: no folder there
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert script._strip_docstrings(SOURCE) == script._compacted(SOURCE)
