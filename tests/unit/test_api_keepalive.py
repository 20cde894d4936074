"""Issue 22: a run's /price calls share one pooled connection (keep-alive) instead of a TCP (and TLS)
handshake each; a real HTTP/1.1 server on loopback counts the connections it accepted."""
from __future__ import annotations

import http.server
import threading

import pytest

from twilight_ops.api import close_clients, get_price
from twilight_ops.config import DEFAULTS, load_settings
from twilight_ops.secret import Secret


class _Counting(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"          # keep-alive, as the real API (nginx) answers
    connections = 0

    def setup(self) -> None:
        type(self).connections += 1
        super().setup()

    def do_GET(self) -> None:
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server():
    _Counting.connections = 0
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def test_three_price_calls_are_one_connection_and_a_closed_pool_starts_a_new_one(server, tmp_path):
    settings = load_settings(dict(DEFAULTS, api_base=f"http://127.0.0.1:{server}", http_timeout="5",
                                  state_dir=str(tmp_path)))
    token = Secret("test-token")
    for code in ("600519.SH", "000001.SZ", "600519.SH"):
        assert get_price(settings, token, code, attempts=1).status == 200
    assert _Counting.connections == 1
    close_clients()                                   # what exit does
    assert get_price(settings, token, "600519.SH", attempts=1).status == 200
    assert _Counting.connections == 2
    close_clients()
