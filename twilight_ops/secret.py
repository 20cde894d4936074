"""Secrets: a masked type, and the two ways text is cleaned of credentials.

    Secret      prints as *** everywhere; the value only through reveal()
    scrub       replaces the values of known secrets in text
    redact      masks anything in response-derived text that looks like a credential
"""
from __future__ import annotations

import re


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str):
        if not isinstance(value, str):
            raise TypeError("Secret holds a str")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self):  # never pickled/serialised with its value
        raise TypeError("a Secret is not serialisable")


def scrub(text: str, *secrets: "Secret | None") -> str:
    """Replace every secret's value in text with ***."""
    for s in secrets:
        if s is not None and s.reveal():
            text = text.replace(s.reveal(), "***")
    return text


def header_problem(value: str) -> str | None:
    """Why value cannot travel in an HTTP header (`Bearer <value>`), or None.

    httpx/h11 refuse control characters (a CR, a newline, a second line) and
    non-ASCII; their error text shows the value, escaped.  Never returns the value.
    """
    for ch in value:
        if ch in "\r\n":
            return "holds a line break (a second line?)"
        if ord(ch) < 0x20 or ord(ch) == 0x7F:
            return "holds a control character"
        if ord(ch) > 0x7E:
            return "holds a non-ASCII character"
    return None


def scrub_error(text: str, *secrets: "Secret | None") -> str:
    """A transport error string with every secret masked, raw or escaped.

    h11 quotes a rejected header as `Illegal header value b'Bearer ab\\r\\ncd'`, so
    the raw value is not in the text: mask its repr forms too, and anything that
    follows `Bearer`.
    """
    import re

    text = scrub(text, *secrets)
    for s in secrets:
        if s is None or not s.reveal():
            continue
        value = s.reveal()
        forms = {repr(value)[1:-1], repr(value.encode("utf-8", "backslashreplace"))[2:-1],
                 value.encode("unicode_escape").decode("ascii")}
        for form in sorted(forms, key=len, reverse=True):
            if form:
                text = text.replace(form, "***")
    return re.sub(r"(?i)(bearer\s+)(?!\*\*\*)[^\s'\"]+", r"\1***", text)


_TOKENISH = (
    (re.compile(r"(?i)\bbearer\s+[^\s\"',;]+"), "Bearer ***"),
    (re.compile(r"\beyJ[\w-]+\.[\w-]+\.[\w-]*"), "***"),   # JWT
    (re.compile(r"(?i)\b(token|api[_-]?key|secret|password|authorization)(\"?\s*[:=]\s*\"?)[^\s\"',;&]+"), r"\1\2***"),
    (re.compile(r"(?<![A-Za-z0-9+/_=-])[A-Za-z0-9+/_=-]{32,}"), "***"),   # long opaque strings (Tushare tokens are 56 hex)
)


def redact(text: str) -> str:
    """Mask anything in response-derived text that looks like a credential."""
    for pattern, replacement in _TOKENISH:
        text = pattern.sub(replacement, text)
    return text
