"""Registry token auth as distribution v2 and ghcr.io speak it: pure parts.

The flow (distribution's docs/spec/auth/token.md; ghcr.io answers the same way even for
anonymous pulls):

    GET /v2/<name>/manifests/<tag>            → 401, WWW-Authenticate: Bearer realm="…",service="…",scope="…"
    GET <realm>?service=…&scope=…             → 200 {"token": JWT, "access_token": JWT, "expires_in": N, …}
    GET /v2/<name>/manifests/<tag>, Authorization: Bearer JWT → 200

What distribution 2.8 checks in a token (registry/auth/token/token.go): `iss` equals its
configured issuer, `aud` (a string in 2.8) equals its service, `exp`/`nbf` within 60 s
leeway, a signature by a key it trusts — found, in this order, from the header's `x5c`
(a certificate chain that must verify against `rootcertbundle`), `jwk`, or `kid` (a
libtrust fingerprint of a root certificate's key) — and `access` entries
`{"type", "name", "actions"}` covering the request ("pull" for GET/HEAD, "pull"+"push"
for POST/PUT/PATCH, "delete" for DELETE).  We send both `x5c` (the self-signed signing
certificate, which is the root bundle) and its `kid`, and sign ES256 (JWS: raw r‖s).
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Callable

ACTIONS = ("pull", "push", "delete")
LEEWAY_SECONDS = 60  # distribution's token.Leeway


# ----------------------------------------------------------------------------- JOSE helpers


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def libtrust_key_id(spki_der: bytes) -> str:
    """docker/libtrust's key ID: SHA-256 of the DER SubjectPublicKeyInfo, first 240 bits,
    base32 without padding, in 12 groups of 4 joined by ':' (distribution's `kid`)."""
    encoded = base64.b32encode(hashlib.sha256(spki_der).digest()[:30]).decode("ascii").rstrip("=")
    return ":".join(encoded[i:i + 4] for i in range(0, len(encoded), 4))


def jwt_header(cert_der: bytes, key_id: str, alg: str = "ES256") -> dict:
    """The JOSE header distribution accepts: `x5c` is standard base64 DER (not url-safe)."""
    return {"typ": "JWT", "alg": alg, "kid": key_id, "x5c": [base64.b64encode(cert_der).decode("ascii")]}


def encode_jwt(header: Mapping[str, Any], claims: Mapping[str, Any], sign: Callable[[bytes], bytes]) -> str:
    """Compact JWS: b64url(header).b64url(claims).b64url(sign(signing input))."""
    signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "."
                     + b64url(json.dumps(claims, separators=(",", ":")).encode()))
    return signing_input + "." + b64url(sign(signing_input.encode("ascii")))


def decode_jwt(token: str) -> tuple[dict, dict, bytes]:
    """(header, claims, signature) of a compact JWS, unverified; ValueError if malformed."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("a JWT has three dot-separated parts")
    return json.loads(b64url_decode(parts[0])), json.loads(b64url_decode(parts[1])), b64url_decode(parts[2])


# ----------------------------------------------------------------------------- scopes and grants


@dataclasses.dataclass(frozen=True)
class Scope:
    type: str  # "repository" (or "registry" for the catalog)
    name: str
    actions: tuple[str, ...]

    def text(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"


_SCOPE = re.compile(r"^(?P<type>[a-z]+)(?:\((?P<cls>[a-z]+)\))?:(?P<name>[a-z0-9._/:-]+):(?P<actions>[a-z*,]*)$")


def parse_scope(text: str) -> Scope:
    """`repository:lacatfly/twilight-drive:pull,push` → Scope; ValueError if malformed.
    The name may hold a host:port, so the actions are what follows the last ':'."""
    m = _SCOPE.match(text.strip())
    if not m:
        raise ValueError(f"scope {text[:80]!r} is not type:name:actions")
    actions = tuple(dict.fromkeys(a for a in m["actions"].split(",") if a))
    return Scope(m["type"], m["name"], actions)


def parse_scopes(values: Iterable[str]) -> list[Scope]:
    """Every `scope` query value; one value may hold several scopes separated by spaces."""
    return [parse_scope(part) for value in values for part in value.split() if part]


@dataclasses.dataclass(frozen=True)
class Policy:
    """Who gets what.  Anonymous callers may pull repositories under `namespace` (as ghcr.io
    does for public packages); the CI account may also push and delete.  `deny_pull` is the
    twin's pull-refused fault: nobody gets "pull"."""

    namespace: str = "lacatfly/"
    ci_account: str = "ci"
    deny_pull: bool = False


def grant(scopes: Sequence[Scope], account: str | None, policy: Policy) -> list[dict]:
    """The `access` claim: the requested actions this caller may have (possibly none)."""
    allowed: set[str] = {"pull"} if account is None else ({"pull", "push", "delete"} if account == policy.ci_account else set())
    if policy.deny_pull:
        allowed.discard("pull")
    access = []
    for scope in scopes:
        if scope.type != "repository" or not scope.name.startswith(policy.namespace):
            continue
        actions = [a for a in scope.actions if a in allowed]
        if actions:
            access.append({"type": scope.type, "name": scope.name, "actions": actions})
    return access


def claims(*, issuer: str, service: str, subject: str, access: list[dict], now: int, ttl: int, jti: str) -> dict:
    """The claim set distribution 2.8 verifies (`aud` a string, times in Unix seconds)."""
    return {"iss": issuer, "sub": subject, "aud": service, "exp": now + ttl, "nbf": now - 1, "iat": now,
            "jti": jti, "access": access}


def token_response(token: str, ttl: int, issued_at: str) -> dict:
    """The token endpoint's body: docker reads `token` (or `access_token`) and `expires_in`."""
    return {"token": token, "access_token": token, "expires_in": ttl, "issued_at": issued_at}


def verify_times(claim_set: Mapping[str, Any], now: int) -> bool:
    """exp/nbf as distribution checks them (with its 60 s leeway)."""
    return claim_set["nbf"] - LEEWAY_SECONDS <= now <= claim_set["exp"] + LEEWAY_SECONDS


# ----------------------------------------------------------------------------- WWW-Authenticate


@dataclasses.dataclass(frozen=True)
class Challenge:
    scheme: str
    params: dict[str, str]

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        return self.params.get("service")

    @property
    def scope(self) -> str | None:
        return self.params.get("scope")


_PARAM = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*(?:,|$)')


def parse_challenge(header: str) -> Challenge:
    """`Bearer realm="…",service="…",scope="…"` (RFC 6750 §3) → Challenge; ValueError if it
    is not one auth-scheme followed by key=value pairs (quoted or token values)."""
    text = header.strip()
    scheme, _, rest = text.partition(" ")
    if not scheme or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", scheme):
        raise ValueError(f"WWW-Authenticate {header[:80]!r} has no auth scheme")
    params: dict[str, str] = {}
    pos, rest = 0, rest.strip()
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if not m or m.end() == pos:
            raise ValueError(f"WWW-Authenticate {header[:80]!r} is not key=value pairs at {rest[pos:pos + 20]!r}")
        value = m[2] if m[2] is not None else m[3]
        params[m[1].lower()] = re.sub(r"\\(.)", r"\1", value)
        pos = m.end()
    return Challenge(scheme, params)


def build_challenge(realm: str, service: str, scope: str | None = None, error: str | None = None) -> str:
    """The header distribution sends (accesscontroller.go challengeParams)."""
    text = f'Bearer realm="{realm}",service="{service}"'
    if scope:
        text += f',scope="{scope}"'
    if error:
        text += f',error="{error}"'
    return text


def token_query(challenge: Challenge) -> dict[str, str]:
    """The query for GET <realm>: service and scope from the challenge."""
    query = {}
    if challenge.service:
        query["service"] = challenge.service
    if challenge.scope:
        query["scope"] = challenge.scope
    return query
