"""The twin's delaying relay (twin/relay.py): real sockets on loopback, an echo server behind it.

A connect + one request/answer through the relay costs at least two RTTs (the handshake's RTT,
then the request's); bytes arrive whole and in order.  Lower bounds only: never a timing flake.
"""
from __future__ import annotations

import socket
import socketserver
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from twilight_ops.twin import procs, relay


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def echo_port():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def round_trip(port: int, payload: bytes) -> tuple[float, bytes]:
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := s.recv(65536):
            got += chunk
    return time.monotonic() - t0, got


def test_route_parse_and_due():
    assert relay.Route.parse("4000=127.0.0.1:22") == relay.Route(4000, "127.0.0.1", 22)
    assert str(relay.Route.parse("4000=127.0.0.1:22")) == "4000=127.0.0.1:22"
    with pytest.raises(ValueError):
        relay.Route.parse("4000:22")
    assert relay.due(read_at=1.0, open_at=3.0, half=0.5) == 3.5   # held until the far side is there
    assert relay.due(read_at=5.0, open_at=3.0, half=0.5) == 5.5


def test_the_relay_daemon_delays_a_connect_and_one_round_trip_by_at_least_two_rtts(tmp_path: Path, echo_port: int):
    listen = procs.free_port()
    rtt_ms = 200
    pid = relay.start(tmp_path, rtt_ms, [relay.Route(listen, "127.0.0.1", echo_port)])
    try:
        assert relay.running_pid(tmp_path) == pid
        payload = bytes(range(256)) * 2000                        # 512 KB: many chunks, order kept
        took, got = round_trip(listen, payload)
        assert got == payload
        assert took >= 2 * rtt_ms / 1000
        direct, _ = round_trip(echo_port, b"x")
        assert direct < took                                       # the delay is the relay's
    finally:
        assert relay.stop(tmp_path) == pid
    assert relay.running_pid(tmp_path) is None
    assert not procs.pid_alive(pid)


def test_a_relay_that_cannot_listen_is_one_clear_error(tmp_path: Path):
    from twilight_ops.errors import TwilightError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(TwilightError, match="relay did not start"):
            relay.start(tmp_path, 100, [relay.Route(port, "127.0.0.1", 1)], timeout=3)
    assert relay.running_pid(tmp_path) is None


def test_bad_route_on_the_command_line_exits_2():
    r = subprocess.run([sys.executable, "-m", "twilight_ops.twin.relay", "--pidfile", "/dev/null", "--rtt-ms", "1",
                        "--map", "nonsense"], capture_output=True, text=True)
    assert r.returncode == 2
    assert "invalid parse value" in r.stderr or "nonsense" in r.stderr
