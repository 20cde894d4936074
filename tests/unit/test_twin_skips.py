"""Issue 8 §12: skipped twin tests are counted at the end and fail a run that requires the twin."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO

SAMPLE = textwrap.dedent('''
    import pytest

    @pytest.fixture
    def twin():
        pytest.skip("the twin needs root (its own dockerd and a dedicated account)")

    @pytest.mark.twin
    def test_through_the_twin(twin):
        assert twin

    @pytest.mark.twin
    def test_also_through_the_twin(twin):
        assert twin

    def test_pure():
        assert 1 + 1 == 2
''')


def run_sample(tmp_path, **env: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    twin: through the staging twin\n")
    base = {k: v for k, v in os.environ.items() if k not in ("CI", "TWILIGHT_REQUIRE_TWIN")}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.twin_skips", "-q", "-p", "no:cacheprovider",
                           "--rootdir", str(tmp_path), str(tmp_path / "test_sample.py")],
                          cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**base, "PYTHONPATH": str(REPO), **env})


def test_skips_are_counted_with_their_reason(tmp_path):
    r = run_sample(tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 of 2 twin tests SKIPPED" in r.stdout
    assert "2 skipped: the twin needs root" in r.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="the rule applies where the twin can run: as root")
@pytest.mark.parametrize("env", [{"CI": "true"}, {"TWILIGHT_REQUIRE_TWIN": "1"}])
def test_a_skip_fails_the_run_when_the_twin_is_required(tmp_path, env):
    r = run_sample(tmp_path, **env)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "this run FAILS" in r.stdout
