import json

import pytest

from twilight_ops.builders.layout import layout
from twilight_ops.config import DEFAULTS, load_settings
from twilight_ops.journal import JournalStore, new_journal
from twilight_ops.secret import Secret, scrub
from twilight_ops.lock import Holder


def test_secret_is_masked_everywhere():
    s = Secret("tok-123")
    assert str(s) == "***" and repr(s) == "Secret('***')" and f"{s}" == "***" and "%s" % s == "***"
    assert s.reveal() == "tok-123"
    with pytest.raises(TypeError):
        json.dumps({"t": s})
    assert scrub("Bearer tok-123 ok", s) == "Bearer *** ok"


def _store(tmp_path):
    settings = load_settings(dict(DEFAULTS, state_dir=str(tmp_path)))
    return JournalStore(tmp_path, "tvps", layout(settings, "/home/ops"), None)


def test_journal_roundtrip_and_atomic_save(tmp_path):
    store = _store(tmp_path)
    j = new_journal("v0.3.0-w4-cutover", "tvps", "ops@laptop")
    j.facts["pre_digest"] = "repo@sha256:" + "a" * 64
    with store.step(j, "preflight") as step:
        step.evidence["services"] = 1
    with pytest.raises(KeyError):
        with store.step(j, "deploy"):
            raise KeyError("boom")
    loaded = store.load("v0.3.0-w4-cutover")
    assert loaded is not None
    assert loaded.done("preflight") and not loaded.done("deploy")
    assert loaded.last("deploy").outcome == "interrupted"     # not ours: no evidence against the release
    assert loaded.facts["pre_digest"].endswith("a" * 64)
    assert [p.name for p in store.local_dir.iterdir()] == ["v0.3.0-w4-cutover.jsonl"]  # no temp left


def test_journal_refuses_secrets(tmp_path):
    """One of our two guards answers (json.dumps alone refuses any unknown object, so a bare
    TypeError proves nothing): Secret.__reduce__ (asdict deep-copies) or the journal's branch."""
    store = _store(tmp_path)
    j = new_journal("v0.3.0", "tvps", "ops")
    j.facts["token"] = Secret("abc")
    with pytest.raises(TypeError, match="a Secret (is not serialisable|cannot be written to the journal)"):
        store.save(j)
    assert not store.local_dir.exists() or not any(store.local_dir.iterdir())


def test_journal_json_default_has_its_own_secret_branch():
    from twilight_ops.journal import _json_default

    with pytest.raises(TypeError, match="a Secret cannot be written to the journal"):
        _json_default(Secret("abc"))


@pytest.mark.parametrize("copy_or_pickle", [
    lambda s: __import__("pickle").dumps(s),
    lambda s: __import__("pickle").dumps({"nested": [s]}),
    lambda s: __import__("copy").copy(s),
    lambda s: __import__("copy").deepcopy({"t": s}),
])
def test_secret_reduce_refuses_every_serialiser(copy_or_pickle):
    """Secret.__reduce__ itself: pickle and copy go through it and must get its refusal."""
    with pytest.raises(TypeError, match="a Secret is not serialisable"):
        copy_or_pickle(Secret("tok-123"))


def test_journal_scrubs_registered_secrets(tmp_path):
    store = _store(tmp_path)
    tok = Secret("very-secret-token")
    store.secrets.append(tok)
    j = new_journal("v0.3.0", "tvps", "ops")
    j.steps.append(__import__("twilight_ops.journal", fromlist=["Step"]).Step(name="smoke", started_at="t", note="got very-secret-token back"))
    store.save(j)
    assert "very-secret-token" not in store.local_path("v0.3.0").read_text()


def test_holder_parse():
    h = Holder.parse('{"operator":"a@b","version":"v0.3.0","reason":"W4","acquired_at":"2026-11-30T10:00:00+00:00"}')
    assert h.describe() == "a@b since 2026-11-30T10:00:00+00:00 for v0.3.0 (W4)"
