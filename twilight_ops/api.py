"""The /price API from the operator's machine (httpx), token as a Secret.

get_price is the one path every /price call of the tool takes (status, smoke, agent-smoke's API
checks, diagnose, rollback's verify smoke): each call it sends is recorded in the own-calls
record (own_calls.py), so preflight's no_traffic does not count it as client traffic."""
from __future__ import annotations

import atexit
import dataclasses
import threading
import time

import httpx
import tenacity

from . import own_calls
from .clock import now_utc
from .config import ApiSettings, Settings
from .secret import Secret, header_problem, scrub, scrub_error


@dataclasses.dataclass(frozen=True)
class ApiResponse:
    url: str
    status: int | None          # None when the transport failed
    body: str
    elapsed_ms: float
    transport_error: str | None = None


def _client(settings: ApiSettings) -> httpx.Client:
    from . import tls

    if httpx.URL(settings.api_base).scheme == "http" and not _env_proxy():
        # every request is plain http (relative URLs, redirects not followed, no proxy that could be https;
        # http only for loopback, the twin): no CA bundle to load (≈ 20–40 ms of every smoke against the twin)
        verify = tls.trusting_nothing()
    else:
        verify = tls.context(str(settings.api_ca_bundle) if settings.api_ca_bundle else None)
    return httpx.Client(
        base_url=settings.api_base,
        timeout=httpx.Timeout(settings.http_timeout, connect=min(5.0, settings.http_timeout)),
        verify=verify,
        follow_redirects=False,
        headers={"User-Agent": "twilight-ops"},
    )


def _env_proxy() -> bool:
    """An http(s)/all proxy in the environment, which httpx (trust_env) would use and could reach over TLS."""
    from urllib.request import getproxies

    return any(scheme in ("http", "https", "all") and url for scheme, url in getproxies().items())


_CLIENTS: dict[tuple[str, str, float], httpx.Client] = {}
_CLIENTS_LOCK = threading.Lock()


def shared_client(settings: ApiSettings) -> httpx.Client:
    """The process's one pooled client for this API (base URL, CA bundle, timeout): a run's /price calls
    reuse its connection (keep-alive) instead of a TCP and TLS handshake each (issue 22: over a 100 ms
    link a call was 2+ round trips, now 1).  httpx clients are safe to share between threads; a
    connection the server closed meanwhile is not reused.  Closed at exit."""
    key = (settings.api_base, str(settings.api_ca_bundle or ""), float(settings.http_timeout))
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None or client.is_closed:
            client = _CLIENTS[key] = _client(settings)
        return client


def close_clients() -> None:
    with _CLIENTS_LOCK:
        clients = list(_CLIENTS.values())
        _CLIENTS.clear()
    for client in clients:
        client.close()


atexit.register(close_clients)


def get_price(settings: Settings, token: Secret, code: str, date: str | None = None,
              attempts: int = 3) -> ApiResponse:
    """GET /price; retried (bounded) on transport errors only, never on an HTTP status."""
    params = {"code": code}
    if date:
        params["date"] = date
    url = f"{settings.api_base}/price?" + "&".join(f"{k}={v}" for k, v in params.items())

    retry = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(httpx.TransportError),
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_exponential(multiplier=0.3, max=3),
        reraise=True,
    )
    t0 = time.monotonic()
    bad = header_problem(token.reveal())
    if bad is not None:   # httpx would raise UnicodeEncodeError, or h11 echo the token escaped
        return ApiResponse(url, None, "", 0.0, transport_error=f"the token {bad}; it cannot be sent in a header")
    started = now_utc(settings.clock_offset_seconds)
    status: int | None = None
    try:
        resp = retry(
            shared_client(settings).get, "/price", params=params,
            headers={"Authorization": f"Bearer {token.reveal()}", "Accept": "application/json"},
        )
        status = resp.status_code
        return ApiResponse(url, resp.status_code, scrub(resp.text, token), (time.monotonic() - t0) * 1000)
    except httpx.TransportError as e:
        msg = scrub_error(f"{type(e).__name__}: {e}", token)
        return ApiResponse(url, None, "", (time.monotonic() - t0) * 1000, transport_error=msg)
    finally:   # sent (or tried): the tool's own call, whatever came back
        own_calls.record_call(settings, started, now_utc(settings.clock_offset_seconds), code, status,
                              retry.statistics.get("attempt_number", 1))
