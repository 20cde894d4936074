"""A small OCI distribution client for the twin's own plumbing (CI, faults, reconcile):
every request goes through the registry's token challenge, like docker's and ghcr.io's.

    401 + WWW-Authenticate: Bearer realm,service,scope → GET realm (Basic auth for the CI
    account, none for anonymous) → {"token"} → the same request with Authorization: Bearer.
"""
from __future__ import annotations

from pathlib import Path

import httpx

from ..errors import TwilightError, Unreachable
from . import registry_token as rt

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
ACCEPT = ", ".join(MANIFEST_TYPES)


class TwinRegistry:
    """The twin registry at 127.0.0.1:PORT, as `account` (None: anonymous)."""

    def __init__(self, host_port: str, account: str | None = None, password: str | None = None, timeout: float = 10.0):
        self.base_url = f"http://{host_port}"
        self._basic = (account, password) if account else None
        self._client = httpx.Client(trust_env=False, timeout=timeout)
        self._tokens: dict[str, str] = {}  # scope → token

    @classmethod
    def as_ci(cls, base: Path, host_port: str) -> TwinRegistry:
        from .registry_auth import CI_ACCOUNT, AuthPaths

        return cls(host_port, CI_ACCOUNT, AuthPaths.under(base).password.read_text().strip())

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> TwinRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _token(self, challenge: rt.Challenge) -> str:
        if challenge.scheme.lower() != "bearer" or not challenge.realm:
            raise TwilightError(f"registry asked for {challenge.scheme} auth, not a bearer token", "check its auth config")
        key = challenge.scope or ""
        if key not in self._tokens:
            auth = None
            if self._basic:
                auth = httpx.BasicAuth(*self._basic)  # type: ignore[arg-type]
            r = self._client.get(challenge.realm, params=rt.token_query(challenge), auth=auth)
            if r.status_code != 200:
                raise TwilightError(f"token endpoint {challenge.realm} answered {r.status_code}", "see the token server's log")
            body = r.json()
            self._tokens[key] = body.get("token") or body.get("access_token")
        return self._tokens[key]

    def request(self, method: str, path: str, headers: dict[str, str] | None = None, content: bytes | None = None) -> httpx.Response:
        """One request, answering a bearer challenge once."""
        url = self.base_url + path
        try:
            r = self._client.request(method, url, headers=headers, content=content)
            if r.status_code == 401 and "www-authenticate" in r.headers:
                token = self._token(rt.parse_challenge(r.headers["www-authenticate"]))
                r = self._client.request(method, url, headers={**(headers or {}), "Authorization": f"Bearer {token}"},
                                         content=content)
        except httpx.HTTPError as e:
            raise Unreachable(f"registry {self.base_url} unreachable: {type(e).__name__}", "is the twin up?") from None
        return r

    def manifest_digest(self, name: str, reference: str) -> str | None:
        """Docker-Content-Digest of HEAD /v2/<name>/manifests/<reference>; None on 404."""
        r = self.request("HEAD", f"/v2/{name}/manifests/{reference}", {"Accept": ACCEPT})
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise TwilightError(f"HEAD manifest {name}:{reference} answered {r.status_code}", "see the registry log")
        return r.headers.get("docker-content-digest")

    def get_manifest(self, name: str, reference: str) -> tuple[str, bytes] | None:
        """(media type, body) of a manifest; None on 404."""
        r = self.request("GET", f"/v2/{name}/manifests/{reference}", {"Accept": ACCEPT})
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise TwilightError(f"GET manifest {name}:{reference} answered {r.status_code}", "see the registry log")
        return r.headers.get("content-type", MANIFEST_TYPES[-1]), r.content

    def put_manifest(self, name: str, reference: str, media_type: str, body: bytes) -> None:
        r = self.request("PUT", f"/v2/{name}/manifests/{reference}", {"Content-Type": media_type}, body)
        if r.status_code not in (200, 201):
            raise TwilightError(f"PUT manifest {name}:{reference} answered {r.status_code}: {r.text[:120]}", "see the registry log")

    def delete_manifest(self, name: str, digest: str) -> None:
        r = self.request("DELETE", f"/v2/{name}/manifests/{digest}")
        if r.status_code not in (200, 202, 404):
            raise TwilightError(f"DELETE manifest {name}@{digest} answered {r.status_code}: {r.text[:120]}", "see the registry log")

    def tags(self, name: str) -> list[str]:
        r = self.request("GET", f"/v2/{name}/tags/list")
        if r.status_code == 404:
            return []
        if r.status_code != 200:
            raise TwilightError(f"tags of {name} answered {r.status_code}", "see the registry log")
        return list(r.json().get("tags") or [])
