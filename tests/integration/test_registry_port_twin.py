"""The twin registry comes back on its own port after a stop (CI flake of 2026-12-08).

The registry's port is in image references, the .env and the compose.yml committed in the twin's
origin.  A test that stops the registry (an outage fault) and starts it again used to move it to a
new port whenever the old one was taken for a moment, so the next `twin.up` wrote a compose.yml
that differed from the committed one (`git status` on tvps' checkout: ` M deploy/compose.yml`).
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import threading

import pytest

from twilight_ops.twin import procs
from twilight_ops.twin.registry import start_registry, stop_registry

pytestmark = [pytest.mark.twin,
              pytest.mark.skipif(not shutil.which("docker-registry"), reason="needs docker-registry")]


def hold(port: int) -> socket.socket:
    """A listener on `port` (the stopped registry's), or the test fails saying who has it."""
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ok = procs.wait_until(lambda: _bound(holder, port), 5, f"port {port} free after the registry stopped")
    if ok is None:
        who = subprocess.run(["ss", "-tanp", f"sport = :{port}"], capture_output=True, text=True).stdout
        holder.close()
        pytest.fail(f"port {port} still taken 5 s after the registry stopped:\n{who}")
    holder.listen()
    return holder


def _bound(s: socket.socket, port: int) -> bool:
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        return False
    return True


def test_a_restarted_registry_waits_for_its_port_and_keeps_it(tmp_path):
    first = start_registry(tmp_path)
    try:
        port = first.port
        assert port in procs.listen_ports(procs.ephemeral_low())
        stop_registry(tmp_path)
        holder = hold(port)                              # someone else has the port for 1.5 s
        release = threading.Timer(1.5, holder.close)
        release.start()
        again = start_registry(tmp_path)
        release.join()
        assert again.port == port and not again.reused and again.pid != first.pid
        assert again.ready_seconds >= 1.0                # it waited for the port, it did not move
    finally:
        stop_registry(tmp_path)
