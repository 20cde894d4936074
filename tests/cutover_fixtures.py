"""Fixtures of the twin modules that run whole cutovers (test_cutover_twin, test_cutover_red_flags_twin,
test_link_twin).  A module imports the ones it uses by name (pytest registers imported fixtures).

One twin reset per test: `fresh` resets before its test only, and `reset_after_module` once after
the module's last test, so the next module on this worker finds no cutover, lock or fault.  A
test that calls rehearse.run_scenario (which resets first) uses `scenario_twin`: no reset of its own.
"""
from __future__ import annotations

import pytest

from twilight_ops.remote import SSHExecutor
from twilight_ops.twin import rehearse

SHORT_TTL = 6


@pytest.fixture(scope="module")
def reset_after_module(twin, twin_settings):
    """The twin back to before any cutover once the module is done (its tests each start from a reset)."""
    yield twin
    rehearse.reset(twin, twin_settings)


@pytest.fixture(scope="module")
def short_cache_ttl(twin, twin_settings):
    """The quote cache TTL 6 s on both sides (backend and tool) for the module: while the Shanghai
    market is open, agent-smoke's cache check waits out TTL + slack twice, ≈ 2 min with the
    production 60 s; the check itself is the same (test_agent_twin covers it at an OPEN time)."""
    from twilight_ops.twin import control

    with SSHExecutor(twin_settings) as ex:
        control.set_cache_ttl(ex, twin_settings, SHORT_TTL, twin.invoke_yaml)
    yield
    with SSHExecutor(twin_settings) as ex:
        control.set_cache_ttl(ex, twin_settings, None, twin.invoke_yaml)


@pytest.fixture
def fresh(reset_after_module, twin_settings):
    """A reset twin: v0.2.0 running, W4 untagged and unpublished, no journal and no fault."""
    rehearse.reset(reset_after_module, twin_settings)
    return reset_after_module


@pytest.fixture
def scenario_twin(reset_after_module):
    """The twin for a test that runs rehearse.run_scenario, which resets it first."""
    return reset_after_module
