"""Issue 8 §12: host-key rejection and "hostile input refused before any connection",
without the twin (so `pytest -m "not twin"` catches RejectPolicy swapped for AutoAddPolicy
or a validator dropped).  The server is a real SSH server on loopback, in-process."""
from __future__ import annotations

import paramiko
import pytest

from tests.conftest import inv
from tests.nowhere import CountingListener, write_config
from tests.sshserver import LoopbackSSHServer, client_files
from twilight_ops.config import DEFAULTS, load_settings
from twilight_ops.errors import HostKeyRejected
from twilight_ops.remote import SSHExecutor


@pytest.fixture
def server():
    s = LoopbackSSHServer()
    yield s
    s.close()


def _executor(tmp_path, server, known_hosts: str) -> SSHExecutor:
    ssh_config, kh = client_files(tmp_path, server.port, known_hosts)
    settings = load_settings(dict(DEFAULTS, ssh_config=str(ssh_config), known_hosts=str(kh),
                                  connect_attempts="3", connect_timeout="5"))
    return SSHExecutor(settings)


def test_a_known_host_key_connects(tmp_path, server):
    """The positive control: with the right key recorded, the same server is accepted."""
    ex = _executor(tmp_path, server, server.known_hosts_line())
    try:
        ex.open()
        assert ex.conn.is_connected
    finally:
        ex.close()


def test_an_unknown_host_key_is_refused_and_not_retried(tmp_path, server):
    ex = _executor(tmp_path, server, "")
    with pytest.raises(HostKeyRejected, match="is not in"):
        ex.open()
    ex.close()
    assert server.connections == 1          # a host-key failure is never retried


def test_a_changed_host_key_is_refused(tmp_path, server):
    other = paramiko.ECDSAKey.generate()
    ex = _executor(tmp_path, server, server.known_hosts_line(other))
    with pytest.raises(HostKeyRejected, match="CHANGED"):
        ex.open()
    ex.close()
    assert server.connections == 1


def test_every_hop_gets_reject_policy(tmp_path, server):
    ex = _executor(tmp_path, server, "")
    for hop in ex._hops:
        assert isinstance(hop.client._policy, paramiko.RejectPolicy)


@pytest.fixture
def listener():
    lst = CountingListener()
    yield lst
    lst.close()


@pytest.mark.parametrize("args", [
    ("smoke", "--version", "../../x/PWNED"),
    ("smoke", "--version", "v٠.٣.٠"),
    ("smoke", "--code", "٦٠٠٥١٩.SH"),
    ("lock", "--acquire", "--version", "v0.3.0;rm -rf ~"),
    ("lock", "--acquire", "--version", "v0.3.0", "--reason", "x\x9b31m"),
    ("monitor", "--hours", "١"),
    ("diagnose", "--hours", "0"),
])
def test_hostile_input_is_refused_before_any_connection(tmp_path, listener, args):
    r = inv(*args, cfg=write_config(tmp_path, listener.port))
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    assert listener.attempts == 0, "a connection was attempted"
