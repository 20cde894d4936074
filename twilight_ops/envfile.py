"""Compose's `.env` file as text: read one variable, set one, keep every other line (pure)."""
from __future__ import annotations

import re

_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$")


def get(text: str, name: str) -> str | None:
    value = None
    for line in text.splitlines():
        m = _LINE.match(line)
        if m and m.group(1) == name:
            value = m.group(2).strip().strip('"').strip("'")
    return value


def set_var(text: str, name: str, value: str) -> str:
    """Replace every assignment of `name` by one `name=value` (in place of the first), or append it."""
    if any(c in value for c in "\n\r\"'$`\\ #"):
        raise ValueError(f"{name} value {value!r} needs quoting; refusing to write it")
    out, done = [], False
    for line in text.splitlines():
        m = _LINE.match(line)
        if m and m.group(1) == name:
            if not done:
                out.append(f"{name}={value}")
                done = True
            continue
        out.append(line)
    if not done:
        out.append(f"{name}={value}")
    return "\n".join(out) + "\n"
