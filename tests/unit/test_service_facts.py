"""Issue 22 item 2: the running services' three reads (compose ps, docker inspect, docker image inspect)
as one command.  The builder's exact text; the program run by a real `sh` (LocalExecutor: a real
process) with a `docker` on PATH that replays output recorded from the twin's docker; the parser on
the whole command's output recorded from the twin; the same ServiceStatus rows as the three
separate reads give, and the same errors."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from twilight_ops import facts, health
from twilight_ops.builders import compose as compose_cmd
from twilight_ops.builders.layout import layout
from twilight_ops.config import DEFAULTS, load_settings
from twilight_ops.errors import RemoteCommandFailed
from twilight_ops.local import LocalExecutor

CAPTURED = Path(__file__).resolve().parents[1] / "data" / "captured"
REPO = "127.0.0.1:41481/lacatfly/twilight-drive"
PS = (CAPTURED / "compose-ps-v2.40.3.ndjson").read_text()
INSPECT = (CAPTURED / "docker-inspect-backend.json").read_text()
IMAGES = (CAPTURED / "docker-image-inspect-v0.2.0.json").read_text()
CID = "7dbe7ae74d9d"
IMAGE_ID = "sha256:51742b08efc6acfdf7d0cf3ab6f102be3f3b0be0ed2c8e1e0655e4798e446e27"

# a `docker` that answers each of the three reads from files in $REC (<part>.out, .err, .rc) and logs its argv
DOCKER = r"""#!/bin/sh
printf '%s\n' "$*" >> "$REC/argv.log"
case "$1" in
  compose) part=ps ;;
  inspect) part=inspect ;;
  image) part=images ;;
  *) echo "unexpected: docker $*" >&2; exit 99 ;;
esac
[ -e "$REC/$part.out" ] && cat "$REC/$part.out"
[ -e "$REC/$part.err" ] && cat "$REC/$part.err" >&2
exit "$(cat "$REC/$part.rc" 2>/dev/null || echo 0)"
"""


def lay(compose_dir: str = "/home/ops"):
    return layout(load_settings(dict(DEFAULTS)), compose_dir)


@pytest.fixture
def docker(tmp_path):
    """(executor with the recorded `docker` first on PATH, the folder its answers come from)."""
    bin_dir, rec = tmp_path / "bin", tmp_path / "rec"
    bin_dir.mkdir()
    rec.mkdir()
    prog = bin_dir / "docker"
    prog.write_text(DOCKER)
    prog.chmod(prog.stat().st_mode | stat.S_IXUSR)
    (rec / "ps.out").write_text(PS)
    (rec / "inspect.out").write_text(INSPECT)
    (rec / "images.out").write_text(IMAGES)
    ex = LocalExecutor().child(env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "REC": str(rec)})
    return ex, rec


def three_reads(ps: str, inspect: str | None, images: str | None) -> list[facts.ServiceStatus]:
    """What the three separate reads gave (the parsers of each command, joined as read_services joined them)."""
    got = facts.ServiceFacts(facts.parse_compose_ps(ps), facts.parse_container_inspect(inspect) if inspect else {},
                             facts.parse_repo_digests(images) if images else {})
    return facts.service_statuses(got, REPO)


def test_the_builder_is_a_constant_program_with_the_compose_file_as_its_argument():
    argv = compose_cmd.service_facts(lay())
    assert argv == ["sh", "-c", compose_cmd.SERVICE_FACTS, "sh", "/home/ops/twilight/source/deploy/compose.yml"]
    assert "/home/ops" not in argv[2]
    assert facts.SERVICES.command(lay()) == argv and facts.SERVICES.timeout == 180.0


def test_one_command_runs_the_three_reads_with_the_ids_each_gave(docker):
    ex, rec = docker
    r = ex.run(compose_cmd.service_facts(lay()))
    assert (rec / "argv.log").read_text().splitlines() == [
        "compose -f /home/ops/twilight/source/deploy/compose.yml ps --all --format json",
        f"inspect --type container {CID}",
        f"image inspect {IMAGE_ID}"]
    got = facts.parse_service_facts(r.stdout)
    assert got.ended and not got.failed
    (svc,) = facts.service_statuses(got, REPO)
    assert svc == facts.ServiceStatus("backend", "running", "healthy", 0, f"{REPO}:v0.2.0", "v0.2.0",
                                      f"{REPO}@sha256:1a0109ee383732d1811bc504cde81e7de414a5a9131caa5228e425d728ea3e79")
    assert health.read_services(ex, lay(), REPO) == three_reads(PS, INSPECT, IMAGES) == [svc]


def test_no_container_is_no_service_and_no_further_read(docker):
    ex, rec = docker
    (rec / "ps.out").write_text("")
    assert health.read_services(ex, lay(), REPO) == [] == three_reads("", None, None)
    assert len((rec / "argv.log").read_text().splitlines()) == 1


def test_a_compose_file_path_with_shell_text_in_it_stays_one_argument(docker):
    ex, rec = docker
    odd = "/home/o p; $(touch pwned) 'q'"
    ex.child(cwd=rec).run(compose_cmd.service_facts(lay(odd)))
    assert (rec / "argv.log").read_text().splitlines()[0] == f"compose -f {odd}/twilight/source/deploy/compose.yml ps --all --format json"
    assert not (rec / "pwned").exists()


def test_docker_down_is_the_same_error_as_compose_ps_alone(docker):
    ex, rec = docker
    down = (CAPTURED / "compose-ps-dockerd-down-v2.40.3.txt").read_text()
    (rec / "ps.out").write_text("")
    (rec / "ps.err").write_text(down)
    (rec / "ps.rc").write_text("1")
    with pytest.raises(RemoteCommandFailed) as alone:
        r = ex.run(compose_cmd.compose_ps(lay()), check=False)
        raise RemoteCommandFailed(r.command, r.exited, r.stderr)
    with pytest.raises(RemoteCommandFailed) as one:
        health.read_services(ex, lay(), REPO)
    assert one.value.message == alone.value.message
    assert one.value.message.startswith("on tvps `docker compose -f /home/ops/twilight/source/deploy/compose.yml ps")
    assert one.value.message.endswith("Is the docker daemon running?") and one.value.exited == 1
    assert one.value.stderr == down


@pytest.mark.parametrize("part,argv", [
    ("inspect", f"docker inspect --type container {CID}"),
    ("images", f"docker image inspect {IMAGE_ID}"),
])
def test_a_later_part_that_fails_is_named_by_its_own_command(docker, part, argv):
    ex, rec = docker
    (rec / f"{part}.out").write_text("[]\n")
    (rec / f"{part}.err").write_text("Error: No such object: x\n")
    (rec / f"{part}.rc").write_text("1")
    with pytest.raises(RemoteCommandFailed) as e:
        health.read_services(ex, lay(), REPO)
    assert e.value.message == f"on tvps `{argv}` exited 1: Error: No such object: x"


def test_the_parser_reads_the_command_output_recorded_from_the_twin():
    text = (CAPTURED / "service-facts-healthy-v20.10.24.txt").read_text()
    got = facts.parse_service_facts(text)
    (svc,) = facts.service_statuses(got, got.ps[0].image.rsplit(":", 1)[0])
    assert (svc.service, svc.state, svc.health, svc.restart_count) == ("backend", "running", "healthy", 0)
    assert svc.repo_digest.split("@")[1].startswith("sha256:") and svc.version


def test_a_stopped_container_recorded_from_the_twin_keeps_its_row():
    got = facts.parse_service_facts((CAPTURED / "service-facts-stopped-v20.10.24.txt").read_text())
    (svc,) = facts.service_statuses(got, got.ps[0].image.rsplit(":", 1)[0])
    assert svc.state == "exited" and svc.health == "-" and svc.restart_count == 0 and svc.repo_digest


@pytest.mark.parametrize("text", [
    "::twilight-ops ps\n" + PS,                                   # stopped before the end line
    "::twilight-ops ps\n" + PS + "::twilight-ops inspect\n" + INSPECT,
])
def test_output_that_stopped_early_says_so(text):
    got = facts.parse_service_facts(text)
    assert not got.ended and not got.failed and got.ps


def test_an_unknown_marker_is_a_parse_error():
    with pytest.raises(facts.ParseError):
        facts.parse_service_facts("::twilight-ops what\n")
