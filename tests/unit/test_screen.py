"""screen.Lines (a wait is one line: in place on a terminal, every 10 s plus the last in a log) and
health.cause (the backend log's error lines the failed gate shows first)."""
from __future__ import annotations

import io

from rich.console import Console

from twilight_ops.health import cause
from twilight_ops.screen import WAIT_OVER, Lines, Waiting


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def log_console() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=False, width=120, soft_wrap=True), buf


def test_in_a_log_a_wait_prints_one_line_every_10_s_and_the_last():
    con, buf = log_console()
    clock = Clock()
    say = Lines(con, clock=clock)
    say("compose up -d backend (v0.3.0-w4-cutover) …")
    for i in range(61):                         # 30 s of polls every 0.5 s
        clock.now = i * 0.5
        say(Waiting(f"waiting for backend: running, health starting … {clock.now:.1f}s"))
    say(WAIT_OVER)
    say("backend healthy after 30.2 s")
    assert buf.getvalue().splitlines() == [
        "compose up -d backend (v0.3.0-w4-cutover) …",
        "waiting for backend: running, health starting … 0.0s",
        "waiting for backend: running, health starting … 10.0s",
        "waiting for backend: running, health starting … 20.0s",
        "waiting for backend: running, health starting … 30.0s",     # the last one, once
        "backend healthy after 30.2 s",
    ]


def test_in_a_log_the_last_wait_line_comes_before_the_next_plain_line():
    con, buf = log_console()
    clock = Clock()
    say = Lines(con, clock=clock)
    for i in range(5):
        clock.now = i
        say(Waiting(f"waiting … {i}s"))
    say("error: backend not healthy within 4 s")
    assert buf.getvalue().splitlines() == ["waiting … 0s", "waiting … 4s", "error: backend not healthy within 4 s"]


def test_on_a_terminal_a_wait_is_one_line_in_place():
    buf = io.StringIO()
    con = Console(file=buf, force_terminal=True, width=100)
    say = Lines(con)
    with say:
        for i in range(200):
            say(Waiting(f"waiting for backend: running, health starting … {i / 2:.1f}s"))
        say("backend healthy after 99.5 s")
    out = buf.getvalue()
    assert out.count("\n") < 10                                      # not 200 appended lines
    assert out.rstrip().endswith("backend healthy after 99.5 s")
    assert say._status is None                                       # the live line ended


def test_the_waiting_marker_is_a_plain_str_for_other_sinks():
    seen: list[str] = []
    seen.append(Waiting("waiting … 1s"))
    assert seen == ["waiting … 1s"] and isinstance(seen[0], str)


# the twin backend's own lines as `docker compose logs backend` prints them (never-healthy, restart-loop)
NEVER_HEALTHY = """\
backend-1  | 2026-12-07T12:40:01.123+00:00 INFO twilight backend v0.3.0-w4-cutover listening on :8000
backend-1  | 2026-12-07T12:40:01.125+00:00 ERROR lifespan startup incomplete: provider chain not ready (twin fault never-healthy)
backend-1  | 2026-12-07T12:40:03.201+00:00 INFO GET /healthz 503
backend-1  | 2026-12-07T12:40:05.207+00:00 INFO GET /healthz 503
"""
RESTART_LOOP = """\
backend-1  | 2026-12-07T12:41:00.001+00:00 FATAL lifespan startup failed: AuditLog flush thread died (twin fault restart-loop); exiting 1
backend-1  | 2026-12-07T12:41:02.001+00:00 FATAL lifespan startup failed: AuditLog flush thread died (twin fault restart-loop); exiting 1
backend-1  | Traceback (most recent call last):
backend-1  |   File "/srv/twilight/app.py", line 1009, in main
backend-1  | RuntimeError: flush thread died
"""


def test_cause_is_the_logs_last_error_lines_without_the_compose_prefix():
    assert cause(NEVER_HEALTHY) == ["2026-12-07T12:40:01.125+00:00 ERROR lifespan startup incomplete: provider chain "
                                    "not ready (twin fault never-healthy)"]
    got = cause(RESTART_LOOP)
    assert got == ["2026-12-07T12:41:02.001+00:00 FATAL lifespan startup failed: AuditLog flush thread died "
                   "(twin fault restart-loop); exiting 1", "RuntimeError: flush thread died"]


def test_cause_is_empty_when_the_log_names_no_error():
    assert cause("backend-1  | INFO GET /healthz 200\n") == []
    assert cause("") == []
