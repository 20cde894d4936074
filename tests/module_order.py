"""Longest modules first, for `make test`'s xdist workers (`--dist loadfile`).

loadfile hands each worker whole modules in collection order (with `--no-loadscope-reorder`, as
`make test` runs it; without it xdist sorts modules by their number of tests), two queued per
worker, the next one as a module ends.  Collected alphabetically, the longest twin modules could start last and one
worker would run alone at the end; ordered longest first (a greedy longest-processing-time
schedule) the workers end close together.  The weights are the seconds each module took in a
measured run (tests/module_weights.json, written by `python tests/module_order.py JUNIT.xml`
from a `pytest --junitxml` run); a module not in the file weighs one second per test.  Only the
order of modules changes: a module's tests keep their order and run on one worker.
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import pytest

WEIGHTS = Path(__file__).with_name("module_weights.json")


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def longest_first(nodeids: list[str], weights: dict[str, float]) -> list[int]:
    """Indexes of `nodeids` reordered module by module, heaviest module first (pure).  A module
    keeps its tests' order; modules of equal weight keep their collection order."""
    members: dict[str, list[int]] = defaultdict(list)
    for i, nodeid in enumerate(nodeids):
        members[module_of(nodeid)].append(i)

    def weight(module: str) -> float:
        return weights.get(module, float(len(members[module])))

    order = sorted(members, key=lambda m: -weight(m))       # sorted() is stable: ties keep collection order
    return [i for m in order for i in members[m]]


def load_weights(path: Path = WEIGHTS) -> dict[str, float]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    order = longest_first([item.nodeid for item in items], load_weights())
    items[:] = [items[i] for i in order]


def weights_from_junit(xml: Path) -> dict[str, float]:
    """{module path: seconds} from a junit XML report (setup + call + teardown of each test)."""
    import xml.etree.ElementTree as ET

    repo = Path(__file__).resolve().parents[1]
    out: dict[str, float] = defaultdict(float)
    for case in ET.parse(xml).getroot().iter("testcase"):
        parts = case.get("classname", "").split(".")          # tests.unit.test_x[.TestClass]
        paths = ["/".join(parts[:n]) + ".py" for n in range(len(parts), 0, -1)]
        path = next((p for p in paths if (repo / p).is_file()), paths[0])
        out[path] += float(case.get("time") or 0)
    return {k: round(v, 1) for k, v in sorted(out.items(), key=lambda kv: -kv[1])}


if __name__ == "__main__":
    WEIGHTS.write_text(json.dumps(weights_from_junit(Path(sys.argv[1])), indent=1) + "\n")
    print(f"wrote {WEIGHTS}")
