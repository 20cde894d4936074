"""Issue 8 §2: a token that headers reject never leaks through a transport error."""
from __future__ import annotations

import socket

import httpx
import pytest

from twilight_ops.api import get_price
from twilight_ops.config import DEFAULTS, load_settings
from twilight_ops.secret import Secret, header_problem, scrub_error

SECRET_PART = "s3cr3tPART"
HOSTILE = [f"tok-{SECRET_PART}\r\nsecond-line-{SECRET_PART}", f"tok-{SECRET_PART}\nline2", f"tok\x00{SECRET_PART}",
           f"tok-{SECRET_PART}\x7f", f"tok-{SECRET_PART}é", f"tok-{SECRET_PART}\u2028x"]


@pytest.fixture
def listener():
    """A real loopback socket that accepts (backlog) and never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    yield s.getsockname()[1]
    s.close()


def _settings(port: int):
    return load_settings(dict(DEFAULTS, api_base=f"http://127.0.0.1:{port}", http_timeout="1"))


def test_h11_error_text_escapes_the_token_and_scrub_error_masks_it(listener):
    value = f"tok-{SECRET_PART}\r\nsecond-line-{SECRET_PART}"
    with pytest.raises(httpx.TransportError) as caught:
        httpx.get(f"http://127.0.0.1:{listener}/price", headers={"Authorization": f"Bearer {value}"}, timeout=2)
    text = f"{type(caught.value).__name__}: {caught.value}"
    assert SECRET_PART in text                        # what the review found: the escaped token
    masked = scrub_error(text, Secret(value))
    assert SECRET_PART not in masked and "second-line" not in masked
    assert "Bearer ***" in masked


@pytest.mark.parametrize("value", HOSTILE)
def test_get_price_with_a_hostile_token_neither_leaks_nor_raises(listener, value):
    resp = get_price(_settings(listener), Secret(value), "600519.SH", attempts=1)
    assert resp.status is None and resp.transport_error
    assert SECRET_PART not in resp.transport_error
    assert "cannot be sent in a header" in resp.transport_error


@pytest.mark.parametrize("value", HOSTILE)
def test_header_problem_names_the_kind_never_the_value(value):
    said = header_problem(value)
    assert said and SECRET_PART not in said


def test_header_problem_accepts_ordinary_tokens():
    assert header_problem("tw_operator-test.0123456789_ABC+/=") is None


def test_scrub_error_masks_any_bearer_value_and_keeps_the_rest():
    s = Secret("abc")
    assert scrub_error("ConnectError: Bearer zzz refused", s) == "ConnectError: Bearer *** refused"
    assert scrub_error("ConnectError: [Errno 111] Connection refused", s) == "ConnectError: [Errno 111] Connection refused"
