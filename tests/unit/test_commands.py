import copy

from twilight_ops import commands
from twilight_ops.config import DEFAULTS, load_settings
from twilight_ops.remote import render


def lay():
    return commands.layout(load_settings(copy.deepcopy(DEFAULTS)), "/home/ops")


def test_layout_expands_home():
    lo = lay()
    assert lo.compose_file == "/home/ops/twilight/source/deploy/compose.yml"
    assert lo.warehouse == "/home/ops/twilight/data/warehouse.duckdb"
    assert lo.lock_dir == "/home/ops/twilight/cutover/lock"
    assert lo.journal_path("v0.3.0-w4-cutover") == "/home/ops/twilight/cutover/journal-v0.3.0-w4-cutover.json"


def test_compose_ps_text():
    assert render(commands.compose_ps(lay())) == (
        "docker compose -f /home/ops/twilight/source/deploy/compose.yml ps --all --format json"
    )


def test_compose_up_sets_version_through_env_argv():
    assert render(commands.compose_up(lay(), "v0.3.0-w4-cutover", 90)) == (
        "env TWILIGHT_VERSION=v0.3.0-w4-cutover docker compose -f /home/ops/twilight/source/deploy/compose.yml"
        " up -d --wait --wait-timeout=90 backend"
    )


def test_logs_and_exec():
    assert render(commands.compose_logs(lay())).endswith("logs backend --tail=200 --no-color")
    assert render(commands.compose_exec_python(lay())).endswith("exec -T backend python3 -")


def test_lock_primitives():
    lo = lay()
    assert render(commands.mkdir_atomic(lo.lock_dir)) == "mkdir -- /home/ops/twilight/cutover/lock"
    assert render(commands.remove_lock(lo)) == "rm -rf -- /home/ops/twilight/cutover/lock"


def test_render_quotes_hostile_values():
    assert render(["echo", "$(id)", "a b;c", "x'y"]) == "echo '$(id)' 'a b;c' 'x'\"'\"'y'"


def test_render_refuses_shell_text():
    import pytest
    with pytest.raises(TypeError):
        render("rm -rf ~")
