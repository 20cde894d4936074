"""free_port picks listening ports below the kernel's ephemeral range (pure parts, then a real bind)."""
from __future__ import annotations

import socket

from twilight_ops.twin import procs


def test_ephemeral_low_reads_the_first_number(tmp_path):
    f = tmp_path / "range"
    f.write_text("32768\t60999\n")
    assert procs.ephemeral_low(f) == 32768
    f.write_text("garbage\n")
    assert procs.ephemeral_low(f) == 32768
    assert procs.ephemeral_low(tmp_path / "missing") == 32768


def test_listen_ports_stay_below_the_range_and_above_the_privileged_ports():
    assert procs.listen_ports(32768) == range(20768, 32768)
    assert procs.listen_ports(5000) == range(1024, 5000)
    assert len(procs.listen_ports(1024)) == 0


def test_free_port_is_bindable_and_outside_the_ephemeral_range():
    low = procs.ephemeral_low()
    for _ in range(20):
        port = procs.free_port()
        assert port in procs.listen_ports(low)
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
