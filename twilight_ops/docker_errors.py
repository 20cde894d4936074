"""Which part docker could not reach, read from docker's own error text (pure).

    outage(text) -> Outage | None

A pull or `compose up` that fails because a part did not answer — the Docker daemon, the
registry, the registry's token server: connection refused, a timeout, a TLS handshake that
never finished, a 5xx — says nothing about the release: it is UNREACHABLE (retry when the
part is back), never a reason to roll back.  Anything else (manifest unknown, access denied,
a bad compose file) is None: a real failure of the release or its configuration.

Docker nests the requests that led to the error (`Head "…/v2/…/manifests/V": Get
"…/token?…": dial tcp …: connect: connection refused`); the innermost URL before the network
error is the part that did not answer: a `/v2/` URL is the registry, any other (the Bearer
realm) the token server.  Captured examples: tests/data/captured/compose-pull-*.txt,
compose-up-dockerd-down-*.txt, docker-pull-503-*.txt, docker-pull-timeout-*.txt.
"""
from __future__ import annotations

import dataclasses
import re
from urllib.parse import urlsplit

# Go's net/http and net errors, as docker prints them (the last one found wins)
NETWORK_ERRORS = (
    ("connect: connection refused", "connection refused"),
    ("connection reset by peer", "connection reset"),
    ("TLS handshake timeout", "TLS handshake timeout"),
    ("i/o timeout", "i/o timeout"),
    ("Client.Timeout exceeded", "timed out awaiting headers"),
    ("context deadline exceeded", "timed out"),
    ("no such host", "no such host"),
    ("network is unreachable", "network unreachable"),
    ("no route to host", "no route to host"),
)
DAEMON_RE = re.compile(r"Cannot connect to the Docker daemon at (\S+?)\.? Is the docker daemon running\?")
STATUS_5XX_RE = re.compile(r"(?:HTTP status:?|HTTP) (5\d\d(?: [A-Z][A-Za-z ]*[a-z])?)")
URL_RE = re.compile(r'(?:Get|Head|Post|Put) "([^"]+)"')


@dataclasses.dataclass(frozen=True)
class Outage:
    part: str        # "the registry 127.0.0.1:5000", "the registry's token server …", "the Docker daemon on tvps"
    cause: str       # "connection refused", "HTTP 503 Service Unavailable", "not answering (unix:///…)"
    kind: str        # registry | token-server | dockerd

    @property
    def line(self) -> str:
        return f"{self.part} ({self.cause})"


def _part_of(url: str) -> tuple[str, str]:
    where = urlsplit(url).netloc or url
    if "/v2/" in url or url.rstrip("/").endswith("/v2"):
        return f"the registry {where}", "registry"
    return f"the registry's token server {where}", "token-server"


def outage(text: str) -> Outage | None:
    """The part docker could not reach, or None when the failure is not about reaching a part."""
    m = DAEMON_RE.search(text)
    if m:
        return Outage("the Docker daemon on tvps", f"not answering at {m.group(1)}", "dockerd")
    for line in reversed(text.splitlines()):
        hits = [(line.rfind(needle), cause) for needle, cause in NETWORK_ERRORS if needle in line]
        if hits:
            at, cause = max(hits)
            urls = URL_RE.findall(line[:at])
            part, kind = _part_of(urls[-1]) if urls else ("the registry", "registry")
            return Outage(part, cause, kind)
        s = STATUS_5XX_RE.search(line)
        if s:
            urls = URL_RE.findall(line[:s.start()])
            part, kind = _part_of(urls[-1]) if urls else ("the registry", "registry")
            return Outage(part, f"HTTP {s.group(1)}", kind)
    return None
