"""One TLS context per process for the tool's HTTP clients (the /price API, GitHub, the registry).

httpx builds a fresh SSLContext for every Client, loading the whole CA bundle each time (≈ 75 ms
of CPU here); the tool made a Client per /price call, so a cutover paid it a dozen times.  Every
client now gets `verify=context(ca_bundle)`: the same verification httpx would do (its own
create_ssl_context: SSL_CERT_FILE / SSL_CERT_DIR when set, else certifi; a CA bundle file when
`twilight.api_ca_bundle` names one), built once per process (issue 22).
"""
from __future__ import annotations

import functools
import ssl


@functools.lru_cache(maxsize=4)
def context(ca_bundle: str | None = None) -> ssl.SSLContext:
    """The verifying context for `ca_bundle` (a PEM file), or httpx's default trust when None."""
    if ca_bundle:
        return ssl.create_default_context(cafile=ca_bundle)
    import httpx

    return httpx.create_ssl_context(verify=True, trust_env=True)


@functools.cache
def trusting_nothing() -> ssl.SSLContext:
    """For a client that never negotiates TLS (an http:// base URL whose redirects are not followed):
    httpx makes a context for every Client, by default loading the whole CA bundle.  This one verifies
    certificates and host names but trusts no CA, so a handshake through it could only fail."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
