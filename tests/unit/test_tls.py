"""twilight_ops/tls.py: one verifying TLS context per process for the tool's HTTP clients."""
from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from twilight_ops import tls


def _ca_pem(path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "twilight test CA")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_the_default_context_verifies_and_is_built_once():
    ctx = tls.context()
    assert ctx is tls.context()
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname


def test_a_ca_bundle_is_the_trust_of_its_own_context(tmp_path: Path):
    pem = _ca_pem(tmp_path / "ca.pem")
    ctx = tls.context(str(pem))
    assert ctx is tls.context(str(pem)) and ctx is not tls.context()
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert [c["subject"] for c in ctx.get_ca_certs()] == [((("commonName", "twilight test CA"),),)]


def test_the_context_for_plain_http_verifies_and_trusts_no_ca():
    ctx = tls.trusting_nothing()
    assert ctx is tls.trusting_nothing()
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.get_ca_certs() == []


def test_the_api_client_loads_the_ca_bundle_only_when_it_can_use_tls(monkeypatch):
    """An http:// api_base (loopback: the twin) never negotiates TLS, unless through a proxy (issue 22)."""
    from twilight_ops import api
    from twilight_ops.config import DEFAULTS, load_settings

    built: list[object] = []
    monkeypatch.setattr(tls, "context", lambda ca=None: built.append(ca) or ssl.create_default_context())
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    with api._client(load_settings(dict(DEFAULTS, api_base="http://127.0.0.1:8080"))):
        assert built == []
    with api._client(load_settings(dict(DEFAULTS))):            # https://api.fsagent.cc
        assert built == [None]
    monkeypatch.setenv("HTTPS_PROXY", "https://proxy.example:3128")
    with api._client(load_settings(dict(DEFAULTS, api_base="http://127.0.0.1:8080"))):
        assert built == [None, None]
