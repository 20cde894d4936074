"""Neutralise terminal control characters in remote data before it is printed.

A /price body, a backend log line or a lock holder field could carry ESC or C1
sequences (a window-title OSC, colours, CSI as 0x9b) that the operator's terminal
would obey.  `printable` shows each C0/C1 control (and DEL) as a visible escape
such as `\\x1b`, so the text still says what arrived but cannot drive the terminal.
"""
from __future__ import annotations

import re

_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROLS_KEEP_LINES = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def _escape(m: re.Match) -> str:
    return f"\\x{ord(m.group()):02x}"


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """text with every C0/C1 control character (and DEL) replaced by a visible `\\xNN`."""
    pattern = _CONTROLS_KEEP_LINES if keep_newlines else _CONTROLS
    return pattern.sub(_escape, str(text))


def is_control(ch: str) -> bool:
    """True for a C0 or C1 control character or DEL."""
    return bool(_CONTROLS.fullmatch(ch))
