import copy

from twilight_ops.builders.layout import layout
from twilight_ops.builders import compose as compose_cmd
from twilight_ops.builders import files
from twilight_ops.config import DEFAULTS, load_settings
from twilight_ops.executor import render


def lay():
    return layout(load_settings(copy.deepcopy(DEFAULTS)), "/home/ops")


def test_layout_expands_home():
    lo = lay()
    assert lo.compose_file == "/home/ops/twilight/source/deploy/compose.yml"
    assert lo.warehouse == "/home/ops/twilight/data/warehouse.duckdb"
    assert lo.lock_dir == "/home/ops/twilight/cutover/lock"
    assert lo.journal_path("v0.3.0-w4-cutover") == "/home/ops/twilight/cutover/journal-v0.3.0-w4-cutover.jsonl"
    assert lo.legacy_journal_path("v0.3.0-w4-cutover") == "/home/ops/twilight/cutover/journal-v0.3.0-w4-cutover.json"


def test_compose_ps_text():
    assert render(compose_cmd.compose_ps(lay())) == (
        "docker compose -f /home/ops/twilight/source/deploy/compose.yml ps --all --format json"
    )


def test_compose_up_sets_version_through_env_argv():
    assert render(compose_cmd.compose_up(lay(), "v0.3.0-w4-cutover", 90)) == (
        "env TWILIGHT_VERSION=v0.3.0-w4-cutover docker compose -f /home/ops/twilight/source/deploy/compose.yml"
        " up -d --wait --wait-timeout=90 backend"
    )


def test_logs_and_exec():
    assert render(compose_cmd.compose_logs(lay())).endswith("logs backend --tail=200 --no-color")
    assert render(compose_cmd.compose_exec_python(lay())).endswith("exec -T backend python3 -")


def test_lock_primitives():
    lo = lay()
    assert render(files.mkdir_atomic(lo.lock_dir)) == "mkdir -- /home/ops/twilight/cutover/lock"
    assert render(files.remove_lock(lo)) == "rm -rf -- /home/ops/twilight/cutover/lock"


def test_render_quotes_hostile_values():
    assert render(["echo", "$(id)", "a b;c", "x'y"]) == "echo '$(id)' 'a b;c' 'x'\"'\"'y'"


def test_render_refuses_shell_text():
    import pytest
    with pytest.raises(TypeError):
        render("rm -rf ~")


def test_git_builders_exact_text():
    from twilight_ops.builders import git

    assert render(git.rev_parse("origin/main")) == "git rev-parse --verify --quiet 'origin/main^{commit}'"
    assert render(git.fetch("origin", "main")) == "git fetch --quiet --tags origin main"
    assert render(git.show_file("origin/main", "scripts/install-skill.sh")) == "git show origin/main:scripts/install-skill.sh"
    assert render(git.status_porcelain("skill/stock-research/")) == "git status --porcelain -- skill/stock-research/"
    assert render(git.rev_list_count("main..origin/main")) == "git rev-list --count main..origin/main"


def test_hermes_builders_exact_text():
    from twilight_ops.builders import hermes

    assert render(hermes.install_skill()) == "bash scripts/install-skill.sh"
    assert render(hermes.skills_list()) == "hermes skills list"
    assert render(hermes.chat("What is the price of 999999.SH?", skill="stock-research")) == (
        "hermes chat -s stock-research -Q -q 'What is the price of 999999.SH?'")
    assert render(hermes.gateway_status()) == "hermes gateway status"
    assert render(hermes.gateway_restart(("/opt/h/bin/hermes",))) == "/opt/h/bin/hermes gateway restart"


def test_hermes_restart_chat_template_and_env_exact_text():
    from twilight_ops.builders import hermes

    assert render(hermes.restart(("hermes", "gateway", "restart"))) == "hermes gateway restart"
    assert render(hermes.restart(("systemctl", "--user", "restart", "hermes-gateway"))) == "systemctl --user restart hermes-gateway"
    assert render(hermes.skills_list(("/opt/h/bin/hermes",))) == "/opt/h/bin/hermes skills list"
    prompt = "What is the current price of 贵州茅台 (600519)?"
    assert render(hermes.agent_chat(("hermes", "chat", "-q", "{prompt}"), prompt)) == (
        "hermes chat -q 'What is the current price of 贵州茅台 (600519)?'")
    # one element holds {prompt}; the rest (braces included) is left as it is; a quote stays inside its argument
    assert hermes.agent_chat(("agent", "--fmt={x}", "--ask=Q: {prompt}"), "it's $(id)") == [
        "agent", "--fmt={x}", "--ask=Q: it's $(id)"]
    assert hermes.hermes_env("/h", ("/opt/bin",), "/usr/bin:/bin") == {"HERMES_HOME": "/h", "PATH": "/opt/bin:/usr/bin:/bin"}
    assert hermes.hermes_env(None, (), "/usr/bin") == {}


def test_free_space_is_posix_df_in_kib_and_its_available_column_is_read_from_real_output():
    from pathlib import Path

    from twilight_ops.builders import files

    assert files.free_space("/home/deploy/twilight/cutover") == ["df", "-P", "-k", "--", "/home/deploy/twilight/cutover"]
    data = Path(__file__).resolve().parents[1] / "data" / "captured"
    root = (data / "df-P-k-root.txt").read_text()
    assert files.parse_free_kib(root) == int(root.splitlines()[1].split()[3])
    assert files.parse_free_kib((data / "df-P-k-full-tmpfs.txt").read_text()) == 0
    wrapped = "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/mapper/very-long-name\n  100 40 60 40% /srv\n"
    assert files.parse_free_kib(wrapped) == 60
    assert files.parse_free_kib("") is None and files.parse_free_kib("df: /x: No such file or directory\n") is None


def test_queued_appends_run_in_a_real_sh_before_the_command_which_keeps_its_own_stdin(tmp_path):
    """files.with_appends: each append takes exactly its bytes from the front of stdin (head -c), its
    directory made when missing; the command then reads the rest; hostile names stay names."""
    import subprocess

    first, second = tmp_path / "a b" / "x; $(touch pwned).log", tmp_path / "y.log"
    second.write_bytes(b"kept\n")
    line = files.with_appends([(str(first), 4), (str(second), 6)], render(["cat"]))
    r = subprocess.run(["sh", "-c", line], input=b"one\n`two`\nthe command's own stdin", capture_output=True, cwd=tmp_path)
    assert (r.returncode, r.stdout) == (0, b"the command's own stdin")
    assert first.read_bytes() == b"one\n" and second.read_bytes() == b"kept\n`two`\n"
    assert not (tmp_path / "pwned").exists()


def test_a_failed_queued_append_stops_before_the_command_and_names_its_index(tmp_path):
    import subprocess

    (tmp_path / "file").write_text("a file, not a directory")
    ran = tmp_path / "ran"
    line = files.with_appends([(str(tmp_path / "ok.log"), 2), (str(tmp_path / "file" / "x.log"), 2)],
                              render(["touch", str(ran)]))
    r = subprocess.run(["sh", "-c", line], input=b"a\nb\n", capture_output=True)
    assert r.returncode == files.APPEND_FAILED
    assert r.stderr.decode().strip().splitlines()[-1] == files.APPEND_FAILED_MARK + "1 failed"
    assert (tmp_path / "ok.log").read_bytes() == b"a\n" and not ran.exists()


def test_queued_appends_want_absolute_paths():
    import pytest

    with pytest.raises(ValueError):
        files.with_appends([("relative.log", 1)], "true")
