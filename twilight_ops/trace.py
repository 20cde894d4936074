"""An optional trace of every command, file operation and round trip a run makes (bench/).

Set TWILIGHT_TRACE=/path/file.jsonl and each executor appends one JSON line per operation:
{"t": unix time, "side": "tvps"|"local", "op": "run"|"read"|"write"|"append"|"remove", "argv"|"path",
"stdin"|"data" (base64), "cwd"}.  With the variable set, the wire is counted too, one line per
request that costs a round trip on the link to tvps or an HTTP service:
    {"side": "ssh",  "op": "connect"}                      an SSH connection (handshake + auth)
    {"side": "ssh",  "op": "channel", "kind": "session"}   a channel (an exec of its own, the request
                                                           loop's one channel, the sftp subsystem)
    {"side": "ssh",  "op": "request"}                      one request on the request loop (remote.py)
    {"side": "sftp", "op": "<request>"}                    an SFTP request (open, read, write, close, …)
    {"side": "http", "op": "<METHOD>", "host", "path"}     an HTTP request (API, registry, GitHub)
and once, not a round trip: {"side": "ssh", "op": "fallback", "why"} (the request loop did not
start: one channel per operation from then on).
(install(): paramiko's and httpx's one request entry points are wrapped, in this process only,
and only while TWILIGHT_TRACE is set; nothing else changes.)  bench/roundtrips.py sums them per
phase.  The file is created mode 600; token files are read but their content is never recorded,
and no header, query string or SFTP argument is.
"""
from __future__ import annotations

import base64
import functools
import json
import os
import time
from typing import Any, Callable

_installed = False


def enabled() -> bool:
    return bool(os.environ.get("TWILIGHT_TRACE"))


def record(side: str, op: str, **fields: Any) -> None:
    path = os.environ.get("TWILIGHT_TRACE")
    if not path:
        return
    install()
    for key in ("stdin", "data"):
        value = fields.get(key)
        if isinstance(value, str):
            value = value.encode()
        if isinstance(value, (bytes, bytearray)):
            fields[key] = base64.b64encode(bytes(value)).decode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (json.dumps({"t": round(time.time(), 4), "side": side, "op": op, **fields}) + "\n").encode())
    finally:
        os.close(fd)


def _counted(fn: Callable[..., Any], note: Callable[..., None]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if enabled():
            note(*args, **kwargs)
        return fn(*args, **kwargs)

    wrapper.__wrapped_by_trace__ = True  # type: ignore[attr-defined]
    return wrapper


def install() -> None:
    """Count the wire (see the module doc) when TWILIGHT_TRACE is set; idempotent; a no-op otherwise."""
    global _installed
    if _installed or not enabled():
        return
    _installed = True
    import httpx
    import paramiko
    from paramiko import sftp as sftp_codes
    from paramiko.sftp_client import SFTPClient

    def sftp_request(self: Any, fileobj: Any, t: int, *args: Any) -> None:
        record("sftp", sftp_codes.CMD_NAMES.get(t, str(t)))

    def channel(self: Any, kind: str, *args: Any, **kwargs: Any) -> None:
        record("ssh", "channel", kind=kind)

    def connect(self: Any, *args: Any, **kwargs: Any) -> None:
        record("ssh", "connect")

    def http(self: Any, request: httpx.Request, *args: Any, **kwargs: Any) -> None:
        record("http", request.method, host=f"{request.url.host}:{request.url.port or ''}", path=request.url.path)

    SFTPClient._async_request = _counted(SFTPClient._async_request, sftp_request)  # type: ignore[attr-defined]
    paramiko.Transport.open_channel = _counted(paramiko.Transport.open_channel, channel)  # type: ignore[method-assign]
    paramiko.SSHClient.connect = _counted(paramiko.SSHClient.connect, connect)  # type: ignore[method-assign]
    httpx.Client.send = _counted(httpx.Client.send, http)  # type: ignore[method-assign]


install()
