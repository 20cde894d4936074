"""docker compose and docker argv on tvps."""
from __future__ import annotations

from typing import Sequence

from .layout import Layout


def compose(lay: Layout, *args: str, version: str | None = None) -> list[str]:
    """`docker compose -f <compose_file> ARGS`, with TWILIGHT_VERSION set via env(1).

    TWILIGHT_VERSION is not a secret, so passing it through env(1) in argv is fine;
    secrets never travel this way.
    """
    argv = ["docker", "compose", "-f", lay.compose_file, *args]
    if version is not None:
        argv = ["env", f"TWILIGHT_VERSION={version}", *argv]
    return argv


def compose_ps(lay: Layout) -> list[str]:
    return compose(lay, "ps", "--all", "--format", "json")


def compose_logs(lay: Layout, tail: int = 200) -> list[str]:
    return compose(lay, "logs", lay.service, f"--tail={int(tail)}", "--no-color")


def compose_pull(lay: Layout, version: str) -> list[str]:
    return compose(lay, "pull", lay.service, version=version)


def compose_up(lay: Layout, version: str, wait_timeout: int = 120) -> list[str]:
    return compose(lay, "up", "-d", "--wait", f"--wait-timeout={int(wait_timeout)}", lay.service, version=version)


def compose_up_detached(lay: Layout, version: str) -> list[str]:
    """`up -d` of the one service; the health gate is ours (short polls, progress), not --wait."""
    return compose(lay, "up", "-d", "--no-deps", lay.service, version=version)


def compose_exec_python(lay: Layout) -> list[str]:
    """Run a Python script fed on stdin inside the backend container (no tty)."""
    return compose(lay, "exec", "-T", lay.service, "python3", "-")


# `sh -c` program of compose_exec_cached_python: $1 the body's sha256, $2 its path, then the compose argv.
# A body that is absent or not that content (a torn upload, an edit) says so and exits 86: nothing ran.
CACHED_RUN = ('printf "%s  %s\\n" "$1" "$2" | sha256sum -c --status - 2>/dev/null'
              ' || { echo "twilight-ops: probe body not on tvps" >&2; exit 86; }; '
              'body="$2"; shift 2; cat -- "$body" - | "$@"')
NOT_CACHED = 86


def compose_exec_cached_python(lay: Layout, body_path: str, sha256: str) -> list[str]:
    """The kept probe body, then this round's line from stdin, into `python3 -` in the backend
    container (no tty): `sh -c CACHED_RUN sh SHA PATH docker compose … exec -T backend python3 -`."""
    return ["sh", "-c", CACHED_RUN, "sh", sha256, body_path, *compose_exec_python(lay)]


# `sh -c` program of service_facts: $1 the compose file.  The three reads of the running services in one
# command (one round trip, not three): `compose ps --all --format json`, then `docker inspect` of the
# containers it lists, then `docker image inspect` of their images, each printed after a marker line
# (`::twilight-ops ps|inspect|images`; no JSON line can start so), `::twilight-ops end` when all went.
# The ids are the hex of compose's `"ID":"…"` and of the containers' `"Image": "sha256:…"`, nothing
# else of the output reaches a command line.  A part that fails prints `::twilight-ops failed PART`
# and the script exits with that part's status (its stderr is the last on the channel): the caller
# names that part's own command, as three separate commands would have failed (facts.failed_command).
SERVICE_FACTS = (
    "m=::twilight-ops; "
    'out=$(docker compose -f "$1" ps --all --format json) || { rc=$?; echo "$m failed ps"; exit $rc; }; '
    'echo "$m ps"; printf "%s\\n" "$out"; '
    """ids=$(printf "%s\\n" "$out" | grep -oE '"ID": ?"[0-9a-f]+"' | cut -d'"' -f4); """
    '[ -n "$ids" ] || { echo "$m end"; exit 0; }; '
    'out=$(docker inspect --type container $ids) || { rc=$?; echo "$m failed inspect"; exit $rc; }; '
    'echo "$m inspect"; printf "%s\\n" "$out"; '
    """imgs=$(printf "%s\\n" "$out" | grep -oE '"Image": ?"sha256:[0-9a-f]{64}"' | cut -d'"' -f4 | sort -u); """
    '[ -n "$imgs" ] || { echo "$m end"; exit 0; }; '
    'out=$(docker image inspect $imgs) || { rc=$?; echo "$m failed images"; exit $rc; }; '
    'echo "$m images"; printf "%s\\n" "$out"; echo "$m end"'
)


def service_facts(lay: Layout) -> list[str]:
    """compose ps + docker inspect + docker image inspect in one command (SERVICE_FACTS): `sh -c PROGRAM sh FILE`."""
    return ["sh", "-c", SERVICE_FACTS, "sh", lay.compose_file]


def docker_inspect(ids: Sequence[str]) -> list[str]:
    return ["docker", "inspect", "--type", "container", *ids]


def docker_image_inspect(refs: Sequence[str]) -> list[str]:
    return ["docker", "image", "inspect", *refs]


# `sh -c` program of health_watch: $1 the container (id or name), $2 the bound in seconds.
# It reads the state (`state STATUS HEALTH`) and returns at once unless the container is running
# with its healthcheck still starting; then it blocks on `docker events --since <the container's
# StartedAt>` (docker's own clock, taken before the state was read: an event between the read and
# the subscription is replayed, never lost) filtered to that container and health_status/die/restart,
# and returns on the first event (`event NANOS ACTION`; after anything but healthy, the state again).
# docker events runs in the background into a fifo and is killed once its first line is read: a
# pipeline into `head -1` would wait for docker events' next write.  The last line says how it
# ended: `quiet` (the bound passed), `gone` (no such container: the caller polls compose) or
# `events-failed RC` (docker events could not run: the caller polls).
HEALTH_WATCH = (
    "fmt='{{.Id}} {{.State.StartedAt}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}'; "
    "bound=$2; "
    'st=$(docker inspect --type container --format "$fmt" "$1" 2>/dev/null) || { echo gone; exit 0; }; '
    "set -- $st; "
    'echo "state $3 $4"; '
    '[ "$3 $4" = "running starting" ] || exit 0; '
    'd=$(mktemp -d) && mkfifo "$d/ev" || { echo "events-failed fifo"; exit 0; }; '
    "trap 'rm -rf \"$d\"' EXIT; "
    'timeout "$bound" docker events --since "$2" --filter "container=$1" --filter event=health_status'
    " --filter event=die --format '{{.TimeNano}} {{.Action}}' >\"$d/ev\" 2>\"$d/err\" & "
    "pid=$!; "
    'if IFS= read -r line <"$d/ev"; then '
    'kill "$pid" 2>/dev/null; echo "event $line"; '
    'case $line in *"health_status: healthy") exit 0;; esac; '
    'st=$(docker inspect --type container --format "$fmt" "$1" 2>/dev/null) || { echo gone; exit 0; }; '
    'set -- $st; echo "state $3 $4"; exit 0; '
    "fi; "
    'wait "$pid"; rc=$?; '
    '[ "$rc" = 124 ] && echo quiet || echo "events-failed $rc"'
)


def health_watch(container: str, bound_s: float) -> list[str]:
    """One blocking look at a container's health (HEALTH_WATCH): `sh -c PROGRAM sh CONTAINER BOUND`."""
    return ["sh", "-c", HEALTH_WATCH, "sh", container, f"{max(0.1, float(bound_s)):.1f}"]
