"""The OCI distribution API from the operator's machine: is image:tag published, and its digest.

    manifest_digest(settings, name, tag) -> "sha256:…" | None

HEAD /v2/<name>/manifests/<tag> with Accept headers for image indexes and manifests.  A
registry that wants a token (ghcr.io, even for public images) answers 401 with
`WWW-Authenticate: Bearer realm="…",service="…",scope="…"`: GET realm?service=…&scope=…
gives {"token": …} (or {"access_token": …}), and the HEAD is retried with it.  The digest is
the Docker-Content-Digest header.  The anonymous token is a Secret too.

A Session (the publish poll: a HEAD every few seconds) keeps one HTTP client, so its connection
is reused, and the token the registry gave, sent with the next HEAD until a 401 asks for a new one:
one request a poll instead of three (HEAD 401, token, HEAD).
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any

from .config import RegistrySettings, Settings
from .errors import CheckFailed, Unreachable
from .secret import Secret, redact

ACCEPT = ", ".join((
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
))
_PARAM = re.compile(r'([A-Za-z]+)="([^"]*)"')


def parse_challenge(header: str) -> dict[str, str] | None:
    """`Bearer realm="…",service="…",scope="…"` → {"realm", "service", "scope"}; None if not Bearer."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    params = {k.lower(): v for k, v in _PARAM.findall(rest)}
    return params if "realm" in params else None


def split_repo(image_repo: str) -> tuple[str, str]:
    """ghcr.io/lacatfly/twilight-drive → ("ghcr.io", "lacatfly/twilight-drive")."""
    host, _, name = image_repo.partition("/")
    return host, name


def api_base(settings: RegistrySettings) -> str:
    if settings.registry_api:
        return settings.registry_api
    host, _ = split_repo(settings.image_repo)
    return f"https://{host}"


@dataclasses.dataclass
class Session:
    """Several HEADs in a row: one client and the last pull token (never shown: a Secret).  close() ends it."""
    client: Any
    token: Secret | None = None

    def close(self) -> None:
        self.client.close()


def session(settings: Settings) -> Session:
    import httpx

    from . import tls

    return Session(httpx.Client(timeout=httpx.Timeout(settings.http_timeout), follow_redirects=True, verify=tls.context()))


def manifest_digest(settings: Settings, tag: str, client: Any = None, within: Session | None = None) -> str | None:
    import httpx

    _, name = split_repo(settings.image_repo)
    base = api_base(settings)
    if within is not None:
        client = within.client
    own = client is None
    from . import tls

    client = client or httpx.Client(timeout=httpx.Timeout(settings.http_timeout), follow_redirects=True, verify=tls.context())
    url = f"{base}/v2/{name}/manifests/{tag}"
    kept = within.token if within is not None else None
    try:
        resp = client.head(url, headers=_headers(kept))
        if resp.status_code == 401:
            challenge = parse_challenge(resp.headers.get("www-authenticate", ""))
            if challenge is None:
                raise CheckFailed(f"the registry at {base} wants credentials this tool cannot give "
                                  f"({resp.headers.get('www-authenticate', 'no challenge')})",
                                  "check twilight.image_repo / registry_api")
            token = _token(client, challenge, f"repository:{name}:pull")
            if within is not None:
                within.token = token
            resp = client.head(url, headers=_headers(token))
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise CheckFailed(f"the registry answered HTTP {resp.status_code} for {name}:{tag}", "retry; check the registry")
        digest = resp.headers.get("docker-content-digest", "")
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            raise CheckFailed(f"the registry gave no Docker-Content-Digest for {name}:{tag}", "retry; check the registry")
        return digest
    except httpx.HTTPError as e:
        raise Unreachable(f"the registry at {base} did not answer: {redact(str(e) or type(e).__name__)}",
                          "check the network, or twilight.registry_api") from None
    finally:
        if own:
            client.close()


def _headers(token: Secret | None) -> dict[str, str]:
    if token is None:
        return {"Accept": ACCEPT}
    return {"Accept": ACCEPT, "Authorization": f"Bearer {token.reveal()}"}


def _token(client: Any, challenge: dict[str, str], default_scope: str) -> Secret:
    params = {"service": challenge.get("service", ""), "scope": challenge.get("scope") or default_scope}
    resp = client.get(challenge["realm"], params={k: v for k, v in params.items() if v})
    if resp.status_code != 200:
        raise CheckFailed(f"the registry's token endpoint answered HTTP {resp.status_code}",
                          "the image may be private: check the registry's settings")
    try:
        body = resp.json()
        token = body.get("token") or body.get("access_token")
    except (ValueError, AttributeError):
        token = None
    if not token:
        raise CheckFailed("the registry's token endpoint gave no token", "retry; check the registry")
    return Secret(str(token))
