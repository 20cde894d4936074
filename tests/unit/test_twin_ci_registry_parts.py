"""Pure parts of the twin's CI and registry token auth: JWTs and their claims, scopes and
grants, WWW-Authenticate parsing/building, workflow-run transitions, post-receive lines."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from pathlib import Path

import pytest

from twilight_ops.twin import ci, ci_runs, registry_token as rt
from twilight_ops.twin.registry import registry_config
from twilight_ops.twin.registry_auth import AuthPaths, ensure_keys, registry_auth
from twilight_ops.twin.registry_auth_server import Signer, basic_account
from twilight_ops.twin.release_faults import backend_faults

T0 = dt.datetime(2026, 5, 11, 2, 0, 0, tzinfo=dt.timezone.utc)
SHA = "a" * 40


# ---------------------------------------------------------------- JWT


def test_jwt_round_trip_is_es256_with_x5c_and_libtrust_kid(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    paths = AuthPaths.under(tmp_path)
    ensure_keys(paths)
    assert paths.key.stat().st_mode & 0o777 == 0o600
    signer = Signer(paths.key.read_bytes(), paths.cert.read_bytes())
    claim_set = rt.claims(issuer="iss", service="svc", subject="", now=1_800_000_000, ttl=300, jti="j",
                          access=[{"type": "repository", "name": "lacatfly/twilight-drive", "actions": ["pull"]}])
    token = rt.encode_jwt(signer.header, claim_set, signer.sign)
    header, claims, signature = rt.decode_jwt(token)

    assert header["alg"] == "ES256" and header["typ"] == "JWT"
    cert = x509.load_pem_x509_certificate(paths.cert.read_bytes())
    assert base64.b64decode(header["x5c"][0]) == cert.public_bytes(serialization.Encoding.DER)  # standard base64
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert header["kid"] == rt.libtrust_key_id(spki)
    assert claims == claim_set and claims["aud"] == "svc"  # a string: distribution 2.8's ClaimSet.Audience
    assert len(signature) == 64  # JWS ES256: raw r||s, not DER
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    signing_input = token.rsplit(".", 1)[0].encode()
    cert.public_key().verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(hashes.SHA256()))
    assert "=" not in token  # base64url without padding


def test_keys_are_made_once(tmp_path):
    paths = AuthPaths.under(tmp_path)
    ensure_keys(paths)
    first = paths.cert.read_bytes()
    ensure_keys(paths)
    assert paths.cert.read_bytes() == first


def test_libtrust_key_id_is_twelve_groups_of_base32():
    kid = rt.libtrust_key_id(b"any public key DER")
    assert re.fullmatch(r"([A-Z2-7]{4}:){11}[A-Z2-7]{4}", kid)
    expected = base64.b32encode(hashlib.sha256(b"any public key DER").digest()[:30]).decode()
    assert kid.replace(":", "") == expected


def test_claims_times_and_leeway():
    c = rt.claims(issuer="i", service="s", subject="ci", access=[], now=1000, ttl=300, jti="x")
    assert (c["iat"], c["nbf"], c["exp"]) == (1000, 999, 1300)
    assert rt.verify_times(c, 1000) and rt.verify_times(c, 1360) and not rt.verify_times(c, 1361)
    assert rt.verify_times(c, 940) and not rt.verify_times(c, 938)


def test_decode_rejects_non_jwt():
    with pytest.raises(ValueError):
        rt.decode_jwt("a.b")


def test_token_response_carries_both_names():
    assert rt.token_response("T", 300, "2026-05-11T02:00:00Z") == {
        "token": "T", "access_token": "T", "expires_in": 300, "issued_at": "2026-05-11T02:00:00Z"}


# ---------------------------------------------------------------- scopes and grants


def test_parse_scopes_splits_spaces_and_keeps_host_port_names():
    scopes = rt.parse_scopes(["repository:lacatfly/twilight-drive:pull,push repository:lacatfly/other:pull",
                              "repository:127.0.0.1:5000/x:pull"])
    assert [s.text() for s in scopes] == ["repository:lacatfly/twilight-drive:pull,push",
                                          "repository:lacatfly/other:pull", "repository:127.0.0.1:5000/x:pull"]
    assert scopes[2].name == "127.0.0.1:5000/x"


@pytest.mark.parametrize("bad", ["repository", "repository:Name:pull", "repository:a b:pull", ":x:pull"])
def test_parse_scope_rejects_malformed(bad):
    with pytest.raises(ValueError):
        rt.parse_scope(bad)


SCOPE = [rt.parse_scope("repository:lacatfly/twilight-drive:pull,push,delete")]


def test_anonymous_gets_pull_only_ci_gets_all_others_nothing():
    policy = rt.Policy()
    assert rt.grant(SCOPE, None, policy) == [{"type": "repository", "name": "lacatfly/twilight-drive", "actions": ["pull"]}]
    assert rt.grant(SCOPE, "ci", policy)[0]["actions"] == ["pull", "push", "delete"]
    assert rt.grant(SCOPE, "mallory", policy) == []
    assert rt.grant([rt.parse_scope("repository:someone/else:pull")], None, policy) == []
    assert rt.grant([rt.parse_scope("registry:catalog:*")], "ci", policy) == []


def test_deny_pull_takes_pull_from_everyone():
    policy = rt.Policy(deny_pull=True)
    assert rt.grant(SCOPE, None, policy) == []
    assert rt.grant(SCOPE, "ci", policy)[0]["actions"] == ["push", "delete"]


def test_basic_account(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")

    def basic(user: str, password: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    assert basic_account(None, pw, "ci") is None
    assert basic_account(basic("ci", "s3cret"), pw, "ci") == "ci"
    assert basic_account(basic("ci", "wrong"), pw, "ci") is False
    assert basic_account(basic("root", "s3cret"), pw, "ci") is False
    assert basic_account("Bearer x", pw, "ci") is False
    assert basic_account("Basic !!!", pw, "ci") is False


# ---------------------------------------------------------------- WWW-Authenticate


def test_parse_ghcr_challenge():
    c = rt.parse_challenge('Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:lacatfly/twilight-drive:pull"')
    assert (c.scheme, c.realm, c.service, c.scope) == ("Bearer", "https://ghcr.io/token", "ghcr.io",
                                                        "repository:lacatfly/twilight-drive:pull")
    assert rt.token_query(c) == {"service": "ghcr.io", "scope": "repository:lacatfly/twilight-drive:pull"}


def test_build_then_parse_round_trips_with_error():
    header = rt.build_challenge("http://127.0.0.1:1/token", "twin-registry", "repository:a/b:pull,push", "insufficient_scope")
    assert header == ('Bearer realm="http://127.0.0.1:1/token",service="twin-registry",'
                      'scope="repository:a/b:pull,push",error="insufficient_scope"')
    c = rt.parse_challenge(header)
    assert c.params == {"realm": "http://127.0.0.1:1/token", "service": "twin-registry",
                        "scope": "repository:a/b:pull,push", "error": "insufficient_scope"}


def test_parse_challenge_tolerates_spaces_and_token_values_and_escapes():
    c = rt.parse_challenge('bearer  Realm = "r\\"x" , service=svc')
    assert c.params == {"realm": 'r"x', "service": "svc"} and c.scope is None
    assert rt.token_query(c) == {"service": "svc"}


@pytest.mark.parametrize("bad", ["", '"Bearer" realm="x"', 'Bearer realm="x" junk', "Bearer =x"])
def test_parse_challenge_rejects_garbage(bad):
    with pytest.raises(ValueError):
        rt.parse_challenge(bad)


def test_registry_config_token_section():
    auth = registry_auth("http://127.0.0.1:9/token", Path("/t/signing.crt"))
    cfg = registry_config(Path("/t/data"), 5000, auth)
    assert cfg["auth"] == {"token": {"realm": "http://127.0.0.1:9/token", "service": "twin-registry",
                                     "issuer": "twin-token-server", "rootcertbundle": "/t/signing.crt"}}
    assert "auth" not in registry_config(Path("/t/data"), 5000)


# ---------------------------------------------------------------- runs


def test_run_moves_queued_in_progress_completed():
    run = ci_runs.new_run("lacatfly/twilight-drive", 10_000_001, SHA, "v0.3.0-w4-cutover", T0)
    assert (run["status"], run["conclusion"], run["event"], run["head_branch"], run["run_started_at"]) == (
        "queued", None, "push", "v0.3.0-w4-cutover", "2026-05-11T02:00:00Z")   # GitHub: a string even while queued
    assert run["html_url"].endswith("/actions/runs/10000001") and run["created_at"] == "2026-05-11T02:00:00Z"
    started = ci_runs.advance(run, "in_progress", T0 + dt.timedelta(seconds=2))
    assert started["status"] == "in_progress" and started["run_started_at"] == "2026-05-11T02:00:02Z"
    done = ci_runs.advance(started, "completed", T0 + dt.timedelta(seconds=9), "success")
    assert (done["status"], done["conclusion"], done["updated_at"], done["run_started_at"]) == (
        "completed", "success", "2026-05-11T02:00:09Z", "2026-05-11T02:00:02Z")
    assert run["status"] == "queued"  # advance returns a new dict


@pytest.mark.parametrize("status, conclusion", [
    ("queued", None), ("in_progress", "success"), ("completed", None), ("completed", "exploded"), ("done", None)])
def test_illegal_transitions_from_queued(status, conclusion):
    run = ci_runs.new_run("o/r", 1, SHA, "v1", T0)
    with pytest.raises(ci_runs.TransitionError):
        ci_runs.advance(run, status, T0, conclusion)


def test_completed_is_final_and_a_queued_run_can_be_cancelled():
    run = ci_runs.new_run("o/r", 1, SHA, "v1", T0)
    cancelled = ci_runs.advance(run, "completed", T0, "cancelled")
    assert cancelled["conclusion"] == "cancelled"
    for status in ("in_progress", "completed"):
        with pytest.raises(ci_runs.TransitionError):
            ci_runs.advance(cancelled, status, T0, "success" if status == "completed" else None)


def test_next_run_id_grows_past_seeded_runs():
    assert ci_runs.next_run_id([]) == ci_runs.FIRST_ID
    assert ci_runs.next_run_id([{"id": 9_000_001}, {"id": 8_000_001}]) == ci_runs.FIRST_ID
    assert ci_runs.next_run_id([{"id": 10_000_007}, {"id": 9_000_001}]) == 10_000_008


def test_replace_run():
    runs = [{"id": 1, "status": "queued"}, {"id": 2, "status": "queued"}]
    assert ci_runs.replace_run(runs, {"id": 1, "status": "in_progress"}) == [
        {"id": 2, "status": "queued"}, {"id": 1, "status": "in_progress"}]


def test_tag_pushes_keeps_created_v_tags_only():
    zero = ci_runs.ZERO_SHA
    lines = [f"{zero} {'b' * 40} refs/tags/v0.3.0-w4-cutover",
             f"{'c' * 40} {'d' * 40} refs/heads/main",
             f"{'e' * 40} {zero} refs/tags/v0.2.1",
             f"{zero} {'f' * 40} refs/tags/release-1",
             "garbage"]
    assert ci_runs.tag_pushes(lines) == [("v0.3.0-w4-cutover", "b" * 40)]


def test_hook_script_quotes_paths():
    text = ci.hook_script("/opt/py env/bin/python", Path("/src/it's"), Path("/var/tmp/twin"))
    assert text.startswith("#!/bin/sh\n")
    assert "PYTHONPATH='/src/it'\"'\"'s'\n" in text
    assert text.rstrip().endswith("exec '/opt/py env/bin/python' -m twilight_ops.twin.ci_hook --twin /var/tmp/twin post-receive")


def test_backend_release_faults_file():
    assert backend_faults({}, "v1", "never-healthy") == {"v1": "never-healthy"}
    assert backend_faults({"v1": "never-healthy", "v2": "restart-loop"}, "v1", None) == {"v2": "restart-loop"}
    assert backend_faults({"v1": "never-healthy"}, "v1", "restart-loop") == {"v1": "restart-loop"}
