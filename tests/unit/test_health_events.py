"""The health wait's events round (issue 22): the command's exact text, what its printed lines
mean (recorded from the twin's docker 20.10.24 through compose.health_watch), and how the wait
judges them: healthy, lost (stop at once) or still starting."""
from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from twilight_ops import facts, health
from twilight_ops.builders import compose as compose_cmd
from twilight_ops.executor import render

CAPTURED = Path(__file__).resolve().parents[1] / "data" / "captured"
CID = "2800b25248de"


def read(name: str) -> str:
    return (CAPTURED / f"health-watch-{name}-v20.10.24.txt").read_text()


def test_the_events_round_is_one_sh_program_with_its_values_as_arguments():
    argv = compose_cmd.health_watch(CID, 2)
    assert argv[:2] == ["sh", "-c"] and argv[2] == compose_cmd.HEALTH_WATCH
    assert argv[3:] == ["sh", CID, "2.0"]                       # the values travel as $1 $2, never in the text
    assert shlex.split(render(argv)) == argv


def test_the_program_subscribes_from_dockers_own_clock_and_returns_on_the_first_event():
    p = compose_cmd.HEALTH_WATCH
    assert '--since "$2"' in p and "{{.State.StartedAt}}" in p      # the container's start, read with the state
    assert p.index("docker inspect") < p.index("docker events")     # state first; the replay covers the gap
    for f in ('--filter "container=$1"', "--filter event=health_status", "--filter event=die"):
        assert f in p
    assert "| head" not in p and 'kill "$pid"' in p                  # the first line ends it, not docker's next write
    assert 'timeout "$bound"' in p


def test_the_bound_is_never_below_a_tenth_of_a_second():
    assert compose_cmd.health_watch(CID, 0)[-1] == "0.1"
    assert compose_cmd.health_watch(CID, 1.234)[-1] == "1.2"


@pytest.mark.parametrize("name,ended,state,health_,event", [
    ("healthy-event", "event", "running", "starting", "health_status: healthy"),
    ("healthy-now", "state", "running", "healthy", ""),
    ("quiet", "quiet", "running", "starting", ""),
    ("die", "event", "exited", "unhealthy", "die"),
    ("gone", "gone", "", "", ""),
])
def test_recorded_rounds_parse(name, ended, state, health_, event):
    w = facts.parse_health_watch(read(name))
    assert (w.ended, w.state, w.health, w.event) == (ended, state, health_, event)


def test_an_event_keeps_dockers_time():
    assert facts.parse_health_watch(read("healthy-event")).event_ns == 1796657452362013108


@pytest.mark.parametrize("text", ["", "state running starting\nevents-failed 1\n", "Cannot connect to the Docker daemon\n",
                                  "state running starting\nevent notanumber die\n"])
def test_output_it_cannot_read_means_docker_events_failed(text):
    assert facts.parse_health_watch(text).ended == "events-failed"


def test_a_container_without_a_healthcheck_reads_as_health_none():
    w = facts.parse_health_watch("state running \n")
    assert (w.ended, w.state, w.health) == ("state", "running", "")


@pytest.mark.parametrize("name,meaning,why", [
    ("healthy-event", "healthy", ""),
    ("healthy-now", "healthy", ""),
    ("quiet", "starting", ""),
    ("die", "lost", "it will not turn healthy"),
])
def test_what_a_round_means_to_the_wait(name, meaning, why):
    row = health.watched(facts.parse_health_watch(read(name)), "backend", CID)
    assert row is not None and row.service == "backend" and row.container_id == CID
    assert health.meaning(row) == meaning and health.lost(row) == why


def test_a_restart_after_a_die_is_a_restart_loop():
    row = health.watched(facts.parse_health_watch("state running starting\nevent 1 die\nstate restarting \n"), "backend", CID)
    assert health.meaning(row) == "lost" and health.lost(row) == "a restart loop"
    assert health.describe(row) == "restarting, health none"


def test_an_unhealthy_event_stops_the_wait():
    text = "state running starting\nevent 2 health_status: unhealthy\nstate running unhealthy\n"
    row = health.watched(facts.parse_health_watch(text), "backend", CID)
    assert health.meaning(row) == "lost" and health.lost(row) == "it will not turn healthy"


@pytest.mark.parametrize("text", ["gone\n", "state running starting\nevents-failed 125\n", ""])
def test_nothing_to_judge_sends_the_wait_to_the_poll(text):
    assert health.watched(facts.parse_health_watch(text), "backend", CID) is None


def test_no_row_is_still_starting():
    assert health.meaning(None) == "starting"
