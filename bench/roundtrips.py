"""Round trips per phase, from a TWILIGHT_TRACE file (twilight_ops/trace.py).

    .venv/bin/python bench/roundtrips.py TRACE.jsonl [--prefix cutover:]

Each wire record costs at least one round trip on its link: an SSH connect (several, counted
as one here), a channel (an exec of its own, the request loop's one channel, the sftp subsystem),
a request on the request loop, an SFTP request, an HTTP request.  The executor's note that the
loop did not start (`ssh fallback`) is not a round trip.
Phase boundaries come from the trace itself: at the end of each top-level step the journal
appends its events to the mirror on tvps (one traced `append` whose data holds the step
records), so a step named `<prefix><phase>` that ended in such an append closes that phase;
the records since the previous boundary are that phase's.  Records after the last boundary
are "after"; with no boundary at all everything is "run".
"""
from __future__ import annotations

import base64
import collections
import json
import sys
from pathlib import Path
from typing import Iterable

KINDS = ("connect", "channel", "request", "sftp", "http")


def kind(rec: dict) -> str | None:
    """The round-trip kind of one trace record, None for the executors' own (non-wire) records."""
    side, op = rec.get("side"), rec.get("op")
    if side == "ssh":
        return op if op in ("connect", "channel", "request") else None
    if side in ("sftp", "http"):
        return side
    return None


def ended_steps(rec: dict, prefix: str) -> list[str]:
    """Phases (names without `prefix`) whose end this record carries: a mirror append of journal events."""
    if rec.get("side") != "tvps" or rec.get("op") != "append" or "journal" not in str(rec.get("path", "")):
        return []
    out = []
    for line in base64.b64decode(rec.get("data") or "").decode("utf-8", "replace").splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        step = ev.get("step") if isinstance(ev, dict) and ev.get("kind") == "step" else None
        if isinstance(step, dict) and str(step.get("name", "")).startswith(prefix) and step.get("ended_at"):
            out.append(str(step["name"])[len(prefix):])
    return out


def per_phase(records: Iterable[dict], prefix: str = "cutover:") -> dict[str, collections.Counter]:
    """{phase: Counter(kind → n, "total" → n)}, phases in the order they ended, then "after"."""
    phases: dict[str, collections.Counter] = {}
    pending: collections.Counter = collections.Counter()
    for rec in records:
        k = kind(rec)
        if k is not None:
            pending[k] += 1
            pending["total"] += 1
        for phase in ended_steps(rec, prefix):
            phases.setdefault(phase, collections.Counter()).update(pending)
            pending = collections.Counter()
    if pending:
        phases["after" if phases else "run"] = pending
    return phases


def totals(phases: dict[str, collections.Counter]) -> collections.Counter:
    out: collections.Counter = collections.Counter()
    for c in phases.values():
        out.update(c)
    return out


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def table(phases: dict[str, collections.Counter]) -> str:
    rows = [f"{'phase':<18} {'total':>6} " + " ".join(f"{k:>8}" for k in KINDS)]
    for name, c in [*phases.items(), ("= all", totals(phases))]:
        rows.append(f"{name:<18} {c['total']:>6} " + " ".join(f"{c[k]:>8}" for k in KINDS))
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: bench/roundtrips.py TRACE.jsonl [--prefix cutover:]", file=sys.stderr)
        return 2
    prefix = argv[argv.index("--prefix") + 1] if "--prefix" in argv else "cutover:"
    print(table(per_phase(read(Path(argv[0])), prefix)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
