"""An optional trace of every command and file operation a run makes (for bench/rollback_bench.py).

Set TWILIGHT_TRACE=/path/file.jsonl and each executor appends one JSON line per operation:
{"side": "tvps"|"local", "op": "run"|"read"|"write"|"append", "argv"|"path", "stdin"|"data" (base64),
"cwd"}.  Off unless the variable is set.  The file is created mode 600; token files are read
but their content is never recorded.
"""
from __future__ import annotations

import base64
import json
import os
from typing import Any


def record(side: str, op: str, **fields: Any) -> None:
    path = os.environ.get("TWILIGHT_TRACE")
    if not path:
        return
    for key in ("stdin", "data"):
        value = fields.get(key)
        if isinstance(value, str):
            value = value.encode()
        if isinstance(value, (bytes, bytearray)):
            fields[key] = base64.b64encode(bytes(value)).decode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (json.dumps({"side": side, "op": op, **fields}) + "\n").encode())
    finally:
        os.close(fd)
