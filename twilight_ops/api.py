"""The /price API from the operator's machine (httpx), token as a Secret."""
from __future__ import annotations

import dataclasses
import time

import httpx
import tenacity

from .config import Settings
from .secret import Secret, header_problem, scrub, scrub_error


@dataclasses.dataclass(frozen=True)
class ApiResponse:
    url: str
    status: int | None          # None when the transport failed
    body: str
    elapsed_ms: float
    transport_error: str | None = None


def _client(settings: Settings) -> httpx.Client:
    verify: bool | str = str(settings.api_ca_bundle) if settings.api_ca_bundle else True
    return httpx.Client(
        base_url=settings.api_base,
        timeout=httpx.Timeout(settings.http_timeout, connect=min(5.0, settings.http_timeout)),
        verify=verify,
        follow_redirects=False,
        headers={"User-Agent": "twilight-ops"},
    )


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
    try:
        with _client(settings) as client:
            resp = retry(
                client.get, "/price", params=params,
                headers={"Authorization": f"Bearer {token.reveal()}", "Accept": "application/json"},
            )
        return ApiResponse(url, resp.status_code, scrub(resp.text, token), (time.monotonic() - t0) * 1000)
    except httpx.TransportError as e:
        msg = scrub_error(f"{type(e).__name__}: {e}", token)
        return ApiResponse(url, None, "", (time.monotonic() - t0) * 1000, transport_error=msg)
