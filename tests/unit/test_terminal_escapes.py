"""Issue 8 §7: ESC and C1 sequences in remote data never reach the operator's terminal."""
from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from rich.console import Console

from twilight_ops.diagnose import Observation, Evidence, finding
from twilight_ops.envelope import evaluate
from twilight_ops.errors import BadInput
from twilight_ops.lock import Holder
from twilight_ops.render import diagnose as diagnose_render
from twilight_ops.phases.diagnose import Call, Gathered
from twilight_ops.sanitize import printable
from twilight_ops.render.smoke import render
from twilight_ops.validate import one_line

OSC_TITLE = "\x1b]0;pwned\x07"
CSI_C1 = "\x9b31m"
COLOUR = "\x1b[2J\x1b[31m"
HOSTILE = OSC_TITLE + CSI_C1 + COLOUR + "\x85\x8d\x7f"


def terminal_bytes(out: str) -> set[str]:
    return {ch for ch in out if ord(ch) < 32 and ch != "\n" or 0x7F <= ord(ch) <= 0x9F}


def plain_console() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=200, color_system=None, force_terminal=False), buf


def test_printable_shows_controls_as_visible_escapes():
    assert printable("a\x1b]0;t\x07b\x9bc\x7f") == "a\\x1b]0;t\\x07b\\x9bc\\x7f"
    assert printable("line1\nline2") == "line1\\x0aline2"
    assert printable("line1\nline2", keep_newlines=True) == "line1\nline2"
    assert printable("ordinary text, 中文, é") == "ordinary text, 中文, é"


def test_smoke_renderer_neutralises_a_hostile_body():
    body = {"ts_code": "600519.SH", "trade_date": "2026-05-11", "close_raw": HOSTILE, "source": HOSTILE,
            "market_state": "open", "cite": HOSTILE}
    v = evaluate(200, json.dumps(body), "w4", dt.datetime(2026, 5, 11, 2, 0, tzinfo=dt.timezone.utc), 0.01)
    console, buf = plain_console()
    render(v, console)
    out = buf.getvalue()
    assert "\\x1b" in out                     # what arrived is still visible...
    assert terminal_bytes(out) == set(), {hex(ord(c)) for c in terminal_bytes(out)}   # ...but inert


def test_smoke_renderer_neutralises_an_error_body():
    v = evaluate(500, ("internal error " + HOSTILE).encode(), "w4", dt.datetime(2026, 5, 11, tzinfo=dt.timezone.utc), 0.01)
    console, buf = plain_console()
    render(v, console)
    assert terminal_bytes(buf.getvalue()) == set()


def test_diagnose_renderer_neutralises_details_and_notes():
    ev = Evidence(None, [Observation("600519.SH", 200, {"close_raw": None, "close_qfq": 1.0})], "", ("a", "b"))
    g = Gathered(ev, (Call("600519.SH", "liquid", 200, 4.0),), 0, (f"backend logs not read: {HOSTILE}",), 1.0)
    console, buf = plain_console()
    diagnose_render.render(console, g, [finding("close_raw_null_qfq_set", f"seen {HOSTILE}")])
    out = buf.getvalue()
    assert "SYMPTOM" in out and terminal_bytes(out) == set()


def test_lock_holder_describe_is_inert():
    h = Holder(operator=f"ops{OSC_TITLE}", version="v0.3.0", reason=f"x{CSI_C1}", acquired_at=COLOUR)
    assert terminal_bytes(h.describe()) == set()
    assert "\\x9b" in h.describe()


@pytest.mark.parametrize("text", ["reason\x9b31m", "a\x85b", "x\x1bY", "tab\there", "del\x7f"])
def test_one_line_rejects_c0_c1_and_del(text):
    with pytest.raises(BadInput):
        one_line(text, "--reason")


def test_one_line_keeps_ordinary_text():
    assert one_line("manual maintenance — 维护", "--reason") == "manual maintenance — 维护"
