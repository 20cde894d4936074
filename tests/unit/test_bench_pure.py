"""Pure parts of bench/: the downtime benchmark's longest gap between good answers, and the
summary that names every figure of issue 22 (also those no benchmark measured in this run)."""
from __future__ import annotations

import sys

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
import downtime_bench  # noqa: E402
import run  # noqa: E402


def test_longest_gap_is_between_good_answers_and_counts_the_edges():
    samples = [(0.0, 1.0, True), (0.0, 2.0, False), (0.0, 5.0, True), (0.0, 6.0, True)]
    assert downtime_bench.longest_gap(samples, 0.5, 7.0) == 4.0            # 1.0 → 5.0, the failure inside
    assert downtime_bench.longest_gap([], 0.0, 3.0) == 3.0                # no good answer at all
    assert downtime_bench.longest_gap([(0.0, 9.0, True)], 0.0, 3.0) == 3.0  # outside the window: not counted


def test_the_summary_names_every_figure_and_says_what_was_not_measured():
    rows = run.figures({})
    names = " | ".join(r[0] for r in rows)
    for figure in ("make bench", "inv smoke", "inv monitor", "inv rollback", "healthy → deploy noticed"):
        assert figure in names, figure
    assert dict((r[0], r[1]) for r in rows)["healthy → deploy noticed"] == "not measured"
    assert rows[0][1] == "every benchmark ran"
    assert run.figures({"deploy_bench.py": 1})[0][1] == "could not run: deploy_bench.py"
    assert run.figures({"deploy_bench.py": run.MISSED})[0][1] == "every benchmark ran"
