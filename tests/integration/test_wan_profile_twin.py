"""Issue 22 item 1: a WAN profile for the twin.  `inv twin.up --rtt 200` puts the relay in front of
sshd, the registry and the API: the operator's ssh config, api_base and registry_api point at it,
and a connect + one request through each costs at least two RTTs (lower bounds only: a functional
check of the delay, never a timing flake).  `inv twin.up` without --rtt takes it away again."""
from __future__ import annotations

import subprocess
import time

import httpx
import pytest

from tests.conftest import TWIN_DIR, error_lines, inv
from twilight_ops.twin import build, procs, relay
from twilight_ops.twin.state import load_or_new

pytestmark = pytest.mark.twin

RTT_MS = 200


def ssh_true(ssh_config: str) -> float:
    t0 = time.monotonic()
    r = subprocess.run(["ssh", "-F", ssh_config, "-o", "BatchMode=yes", "tvps", "true"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return time.monotonic() - t0


def one_get(url: str) -> float:
    t0 = time.monotonic()
    with httpx.Client(timeout=30) as c:
        c.get(url)                                       # any answer: the link is what is measured
    return time.monotonic() - t0


def test_twin_up_rtt_relays_ssh_registry_and_api_with_the_delay_and_without_it_again(twin):
    up = inv("twin.up", "--dir", str(TWIN_DIR), "--rtt", str(RTT_MS), timeout=900)
    try:
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
        st = load_or_new(TWIN_DIR)
        assert st.rtt_ms == RTT_MS and set(st.relay_ports) == {"ssh", "api", "registry"}
        pid = relay.running_pid(TWIN_DIR)
        assert pid is not None and procs.pid_alive(pid)
        assert build.status(TWIN_DIR)["relay"] == {"rtt_ms": RTT_MS, "ports": st.relay_ports, "pid": pid}
        settings = build.settings_for(st.invoke_yaml)
        assert settings.api_base == f"http://127.0.0.1:{st.relay_ports['api']}"
        assert f"Port {st.relay_ports['ssh']}\n" in (st.ssh_dir / "ssh_config").read_text()
        floor = 2 * RTT_MS / 1000
        assert ssh_true(str(settings.ssh_config)) >= floor          # the real sshd, its host key checked
        assert one_get(settings.api_base + "/health") >= floor
        assert one_get(f"http://127.0.0.1:{st.relay_ports['registry']}/v2/") >= floor
        smoke = inv("smoke", "--json", "--expect", "legacy", cfg=st.invoke_yaml, timeout=300)  # the tool, across the "sea"
        assert smoke.returncode == 0, smoke.stdout[-2000:] + smoke.stderr[-2000:]
    finally:
        back = inv("twin.up", "--dir", str(TWIN_DIR), timeout=900)
    assert back.returncode == 0, back.stdout[-2000:] + back.stderr[-2000:]
    st = load_or_new(TWIN_DIR)
    assert st.rtt_ms == 0 and relay.running_pid(TWIN_DIR) is None and not procs.pid_alive(pid)
    assert build.settings_for(st.invoke_yaml).api_base == f"http://127.0.0.1:{st.api_port}"
    assert f"Port {st.ssh_port}\n" in (st.ssh_dir / "ssh_config").read_text()
    ssh_true(str(st.ssh_dir / "ssh_config"))


@pytest.mark.parametrize("rtt", ["abc", "-5", "2.5", "99999"])
def test_a_bad_rtt_is_one_line_and_exit_2(twin, rtt):
    r = inv("twin.up", "--dir", str(TWIN_DIR), "--rtt", rtt, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert len(error_lines(r.stderr.strip())) <= 2 and "--rtt" in r.stderr and "Traceback" not in r.stderr
