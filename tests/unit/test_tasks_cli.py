"""The operator-facing surface: every task has a one-line summary and help for every argument."""
import inspect

from twilight_ops.tasks import ns

EXPECTED = {"status", "lock", "config", "smoke", "monitor", "diagnose",
            "hermes-reinstall", "agent-smoke",
            "twin.up", "twin.down", "twin.status", "twin.fault", "twin.clock", "twin.load", "twin.seed"}


def all_tasks():
    for name in ns.task_names:
        yield name, ns[name]


def test_operator_tasks_exist():
    assert EXPECTED <= set(ns.task_names)


def test_every_task_has_a_one_line_summary():
    for name, task in all_tasks():
        doc = inspect.getdoc(task.body) or ""
        first = doc.splitlines()[0] if doc else ""
        assert first.strip(), f"{name} has no summary"
        assert len(first) <= 120, f"{name}: summary too long"


def test_every_argument_has_help():
    for name, task in all_tasks():
        params = [p for p in inspect.signature(task.body).parameters if p != "c"]
        missing = [p for p in params if p not in task.help]
        assert not missing, f"{name}: no help for {missing}"


def test_config_defaults_are_registered_under_twilight():
    assert ns.configuration()["twilight"]["host"] == "tvps"


def test_no_task_default_makes_invoke_cast_cli_values():
    """An int/float default makes Invoke cast `--x abc` itself and crash with a traceback."""
    for name, task in all_tasks():
        for p in inspect.signature(task.body).parameters.values():
            if p.name == "c" or p.default is inspect.Parameter.empty:
                continue
            assert p.default is None or isinstance(p.default, (str, bool)), (
                f"{name} --{p.name} default {p.default!r} must be str, bool or None")
