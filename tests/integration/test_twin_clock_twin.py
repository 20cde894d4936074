"""tvps's clock in the twin: libfaketime is in an SSH session's processes only while there is an
offset (~/.twin-clock), read before each command, so one open connection follows a clock change;
with no offset nothing is preloaded (libfaketime would cost every clock call of every process)."""
from __future__ import annotations

import time

import pytest

from twilight_ops.twin import control, sshd

pytestmark = pytest.mark.twin

PROBE = ["sh", "-c", 'echo "${LD_PRELOAD:-none}"; date +%s.%N']


def tvps_clock(ex) -> tuple[str, float]:
    """(what LD_PRELOAD a command on tvps gets, tvps's clock minus this machine's, seconds)."""
    preload, stamp = ex.run(PROBE).stdout.split()
    return preload, float(stamp) - time.time()


def test_libfaketime_only_while_there_is_an_offset_and_one_connection_follows_a_change(twin, ex, twin_settings):
    try:
        control.set_clock(ex, twin_settings, 0.0, twin.invoke_yaml)
        preload, off = tvps_clock(ex)
        assert preload == "none" and abs(off) < 2, (preload, off)

        control.set_clock(ex, twin_settings, 0.0, twin.invoke_yaml, skew_seconds=-600.0)
        preload, off = tvps_clock(ex)                      # the same connection (and request loop)
        assert preload == str(sshd.LIBFAKETIME) and abs(off + 600) < 5, (preload, off)

        control.set_clock(ex, twin_settings, 0.0, twin.invoke_yaml)
        preload, off = tvps_clock(ex)
        assert preload == "none" and abs(off) < 2, (preload, off)
    finally:
        control.set_clock(ex, twin_settings, 0.0, twin.invoke_yaml)

