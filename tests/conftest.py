"""Shared fixtures.  `twin` brings up the real staging twin once per session."""
from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
# Under /var/tmp: the twin account must traverse every ancestor of its home, which a
# checkout under a private directory (mode 700) would not allow.
_TAG = __import__("hashlib").sha256(str(REPO).encode()).hexdigest()[:6]
TWIN_DIR = Path(os.environ.get("TWILIGHT_TEST_TWIN", f"/var/tmp/twilight-ops/test-{_TAG}"))


@pytest.fixture(scope="session")
def twin():
    if os.geteuid() != 0:
        pytest.skip("the twin needs root (its own dockerd and a dedicated account)")
    from twilight_ops.twin import build

    state = build.up(TWIN_DIR, say=lambda line: print(line, file=sys.stderr))
    yield state
    build.down(TWIN_DIR, say=lambda line: None)
    # twin.down must leave no process and no mount behind (checked on every session)
    left = leftovers_of(TWIN_DIR)
    assert not left, f"twin.down left behind: {left}"


def leftovers_of(base: Path) -> list[str]:
    from twilight_ops.twin import dockerd

    found = list(dockerd.leftovers(base))
    needle = str(base)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if needle in cmdline and state != "Z":
            found.append(f"process {entry.name}: {cmdline[:120]}")
    mounts = Path("/proc/self/mountinfo").read_text()
    found += [f"mount {line.split()[4]}" for line in mounts.splitlines() if needle in line.split()[4]]
    return sorted(set(found))


@pytest.fixture(scope="session")
def twin_settings(twin):
    from twilight_ops.config import DEFAULTS, load_settings

    raw = copy.deepcopy(DEFAULTS)
    raw.update(yaml.safe_load(twin.invoke_yaml.read_text())["twilight"])
    return load_settings(raw)


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
