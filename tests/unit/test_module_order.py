"""tests/module_order.py: the modules' order for the xdist workers (pure parts)."""
from __future__ import annotations

from pathlib import Path

from tests.module_order import load_weights, longest_first, weights_from_junit


def test_heaviest_module_first_and_each_module_keeps_its_tests_in_order():
    ids = ["a.py::t1", "a.py::t2", "b.py::t1", "c.py::t1", "c.py::t2", "c.py::t3"]
    order = [ids[i] for i in longest_first(ids, {"b.py": 50.0, "a.py": 10.0})]
    assert order == ["b.py::t1", "a.py::t1", "a.py::t2", "c.py::t1", "c.py::t2", "c.py::t3"]   # c: 3 tests, 3 s


def test_modules_of_equal_weight_keep_their_collection_order():
    ids = ["x.py::t", "y.py::t", "z.py::t"]
    assert longest_first(ids, {}) == [0, 1, 2]


def test_every_test_is_kept_once():
    ids = [f"m{i % 4}.py::t{i}" for i in range(20)]
    out = longest_first(ids, {"m2.py": 9.0})
    assert sorted(out) == list(range(20)) and ids[out[0]].startswith("m2.py")


def test_weights_from_a_junit_report_sum_per_module_and_resolve_classes(tmp_path: Path):
    xml = tmp_path / "j.xml"
    xml.write_text('<testsuites><testsuite>'
                   '<testcase classname="tests.unit.test_module_order" name="a" time="1.5"/>'
                   '<testcase classname="tests.unit.test_module_order" name="b" time="2"/>'
                   '<testcase classname="tests.unit.test_module_order.TestX" name="c" time="0.5"/>'
                   '</testsuite></testsuites>')
    assert weights_from_junit(xml) == {"tests/unit/test_module_order.py": 4.0}


def test_a_missing_or_broken_weights_file_weighs_nothing(tmp_path: Path):
    assert load_weights(tmp_path / "none.json") == {}
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2")
    assert load_weights(bad) == {}


def test_the_checked_in_weights_name_modules_that_exist():
    root = Path(__file__).resolve().parents[2]
    weights = load_weights()
    assert weights and all((root / m).is_file() for m in weights), [m for m in weights if not (root / m).is_file()]
