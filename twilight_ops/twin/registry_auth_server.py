"""The twin registry's token server: GET /token as ghcr.io's and distribution's token spec.

    python -m twilight_ops.twin.registry_auth_server --config <twin>/registry-auth/config.json

    GET /token?service=S&scope=repository:NAME:pull[,push]…[&account=ci]
        [Authorization: Basic base64(ci:PASSWORD)]
      200 {"token", "access_token", "expires_in", "issued_at"}   anonymous: pull only
      401 {"errors": [{"code": "UNAUTHORIZED", …}]}               wrong or unknown credentials
      400 {"errors": [{"code": "INVALID_REQUEST", …}]}            unknown service, malformed scope

Read per request: the CI password file and the policy file (`{"deny_pull": true}` is the
twin's pull-refused fault).  The signing key is read once at start.  The access log has
method, path (with service and scope) and status, and who the token is for; never a
password or a token.
"""
from __future__ import annotations

import argparse
import base64
import datetime as dt
import hmac
import json
import secrets
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from . import registry_token as rt

TOKEN_TTL = 300


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return default


class Signer:
    """ES256 with the key whose self-signed certificate is the registry's rootcertbundle."""

    def __init__(self, key_pem: bytes, cert_pem: bytes):
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        key = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the signing key is not an EC key (ES256 needs P-256)")
        self._key = key
        cert = x509.load_pem_x509_certificate(cert_pem)
        spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
        self.header = rt.jwt_header(cert.public_bytes(serialization.Encoding.DER), rt.libtrust_key_id(spki))

    def sign(self, data: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        r, s = decode_dss_signature(self._key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")  # JWS ES256: raw r‖s, 64 bytes


def basic_account(authorization: str | None, password_file: Path, account: str) -> str | None | Literal[False]:
    """None: no credentials (anonymous); the account name: right credentials; False: wrong ones."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        expected = password_file.read_text().strip()
    except (ValueError, OSError):
        return False
    ok = hmac.compare_digest(user.encode(), account.encode()) & hmac.compare_digest(password.encode(), expected.encode())
    return account if ok and expected else False


class TokenHandler(BaseHTTPRequestHandler):
    server_version = "twin-token-server/1"
    protocol_version = "HTTP/1.1"
    cfg: dict = {}
    signer: Signer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        sys.stderr.write(f"token {self.log_date_time_string()} {format % args}\n")

    def _send(self, status: int, body: dict, extra: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, code: str, message: str, extra: dict[str, str] | None = None) -> None:
        self._send(status, {"errors": [{"code": code, "message": message, "detail": None}]}, extra)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path != "/token":
            self._error(404, "NOT_FOUND", f"no route {url.path}")
            return
        query = parse_qs(url.query, keep_blank_values=True)
        service = (query.get("service") or [""])[-1]
        if service != self.cfg["service"]:
            self._error(400, "INVALID_REQUEST", f"unknown service {service[:60]!r}")
            return
        try:
            scopes = rt.parse_scopes(query.get("scope", []))
        except ValueError as e:
            self._error(400, "INVALID_REQUEST", str(e))
            return
        who = basic_account(self.headers.get("Authorization"), Path(self.cfg["password_file"]), self.cfg["account"])
        if who is False:
            self._error(401, "UNAUTHORIZED", "authentication required",
                        {"WWW-Authenticate": f'Basic realm="{self.cfg["service"]}"'})
            return
        policy = rt.Policy(ci_account=self.cfg["account"],
                           deny_pull=bool(_read_json(Path(self.cfg["policy_file"]), {}).get("deny_pull")))
        access = rt.grant(scopes, who, policy)
        now = int(time.time())
        claim_set = rt.claims(issuer=self.cfg["issuer"], service=service, subject=who or "", access=access,
                              now=now, ttl=TOKEN_TTL, jti=secrets.token_hex(12))
        token = rt.encode_jwt(self.signer.header, claim_set, self.signer.sign)
        granted = " ".join(f"{a['name']}:{','.join(a['actions'])}" for a in access) or "-"
        sys.stderr.write(f"token issued for {who or 'anonymous'}: {granted}\n")
        issued = dt.datetime.fromtimestamp(now, dt.timezone.utc).isoformat().replace("+00:00", "Z")
        self._send(200, rt.token_response(token, TOKEN_TTL, issued))


def serve(config_path: Path) -> None:
    cfg = json.loads(config_path.read_text())
    handler = type("TokenHandler", (TokenHandler,), {
        "cfg": cfg, "signer": Signer(Path(cfg["key_file"]).read_bytes(), Path(cfg["cert_file"]).read_bytes())})
    server = ThreadingHTTPServer(("127.0.0.1", int(cfg["port"])), handler)
    server.daemon_threads = True
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda s, f: stop.set())
    signal.signal(signal.SIGINT, lambda s, f: stop.set())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    sys.stderr.write(f"token server ready on 127.0.0.1:{cfg['port']} service={cfg['service']}\n")
    sys.stderr.flush()
    stop.wait()
    server.shutdown()
    server.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path)
    serve(parser.parse_args(argv).config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
