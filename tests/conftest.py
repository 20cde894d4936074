"""Shared fixtures.  `twin` brings up the real staging twin once per session."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from tests.module_order import pytest_collection_modifyitems  # noqa: F401  longest modules first
from tests.twin_skips import (pytest_runtest_logreport, pytest_sessionfinish,  # noqa: F401  loud twin skips
                              pytest_terminal_summary)

# Property tests check behaviour, never speed (bench/ does): no per-example deadline, which a
# loaded 2-core CI machine would turn into a flaky failure.
hypothesis_settings.register_profile("twilight", deadline=None)
hypothesis_settings.load_profile("twilight")

REPO = Path(__file__).resolve().parents[1]
# Under /var/tmp: the twin account must traverse every ancestor of its home, which a
# checkout under a private directory (mode 700) would not allow.
_TAG = hashlib.sha256(str(REPO).encode()).hexdigest()[:6]
# Under pytest-xdist (make test: -n 2 --dist loadfile: a module's tests run in order on one worker)
# each worker has its own twin: its own account, dockerd, registry, sshd and ports.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
TWIN_DIR = Path(os.environ.get("TWILIGHT_TEST_TWIN", f"/var/tmp/twilight-ops/test-{_TAG}") + (f"-{_WORKER}" if _WORKER else ""))


@pytest.fixture(scope="session")
def twin():
    if os.geteuid() != 0:
        pytest.skip("the twin needs root (its own dockerd and a dedicated account)")
    from twilight_ops.twin import build

    state = build.up(TWIN_DIR, say=lambda line: print(line, file=sys.stderr))
    build.forget_cutovers(state)     # no journal, lock or snapshot from an earlier session
    from twilight_ops.twin import ci_release

    ci_release.reset_release(state, build.VERSIONS[1])   # W4 unpublished, as on a fresh clone: a module that
                                                         # needs it publishes it through the twin's CI
    from twilight_ops.remote import SSHExecutor
    from twilight_ops.twin import control

    settings = build.settings_for(state.invoke_yaml)
    with SSHExecutor(settings) as ex:                    # twin.up leaves a backend it finds (an earlier
        control.run_version(ex, settings, build.VERSIONS[0])   # session's W4): start from v0.2.0
    yield state
    build.down(TWIN_DIR, say=lambda line: None)
    # twin.down must leave no process and no mount behind (checked on every session)
    left = build.leftovers(TWIN_DIR)
    assert not left, f"twin.down left behind: {left}"


@pytest.fixture(scope="module", autouse=True)
def no_cutover_of_another_module(request):
    """A twin module starts with no journal, lock or snapshot left by the module before it on this
    worker: which module that is depends on xdist's schedule, and an unfinished deploy attempt
    left in a journal is resumed by the next deploy (it skips its pull, persist and up).  Runs
    before the module's own fixtures; modules that do not use the twin are left alone."""
    mine = [item for item in request.session.items if getattr(item, "module", None) is request.module]
    if any("twin" in item.fixturenames for item in mine):
        from twilight_ops.twin import build

        build.forget_cutovers(request.getfixturevalue("twin"))
    yield


@pytest.fixture(scope="session")
def twin_settings(twin):
    from twilight_ops.twin import build

    return build.settings_for(twin.invoke_yaml)


@pytest.fixture
def ex(twin_settings):
    from twilight_ops.remote import SSHExecutor

    with SSHExecutor(twin_settings) as e:
        yield e


def inv(*args: str, cfg: Path | None = None, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the real `inv` CLI from the repo root, as an operator would."""
    argv = [str(Path(sys.executable).with_name("inv"))]
    if cfg is not None:
        argv += ["-f", str(cfg)]
    argv += list(args)
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


def error_lines(stderr: str) -> list[str]:
    """stderr without the `target: …` line a task prints before it first reaches tvps."""
    return [line for line in stderr.splitlines() if not line.startswith("target: ")]
