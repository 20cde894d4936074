"""The journal on disk: an append-only log of events, one JSON object per line (pure).

    {"id": "…", "seq": 7, "at": "2026-…Z", "kind": "journal", "version", "host", "operator", "created_at"}
    {"id": "…", "seq": 8, "at": "…", "kind": "step", "sid": "…", "step": {name, started_at, ended_at, outcome, evidence, note}}
    {"id": "…", "seq": 9, "at": "…", "kind": "fact", "key": "pre_digest", "value": …}     ("deleted": true drops it)

A step event carries the step's whole record as it is at that moment (its start, then its end);
a fact event one fact's value.  The state is a fold over the events in (seq, at, id) order: the
last record of a step or fact wins, steps keep the order of their first event.  Nothing depends
on where a line sits in a file, so the local copy and the tvps mirror merge by event id (a copy
that missed events gets them appended), never "the newer file wins".  A line that does not parse
(a write cut by kill -9) is dropped and reported, never fatal.

parse(data)            -> Parsed(events, torn, ends_clean)
merge(*event_lists)    -> the union by id, in fold order
fold(events, version)  -> (header, steps: list[(sid, dict)], facts: dict, updated_at)
from_old(dict)         -> events of a journal written before the log (one JSON object per file)
"""
from __future__ import annotations

import dataclasses
import json
import secrets
from typing import Any, Iterable

KINDS = ("journal", "step", "fact")


@dataclasses.dataclass(frozen=True)
class Parsed:
    events: list[dict[str, Any]]
    torn: list[str]              # one line per dropped line: where and what it began with
    ends_clean: bool             # the data is empty or ends with a newline (else the next append starts one)


def new_id() -> str:
    return secrets.token_hex(8)


def line(event: dict[str, Any], default: Any = None) -> str:
    return json.dumps(event, sort_keys=False, separators=(",", ":"), default=default) + "\n"


def _event(obj: Any) -> dict[str, Any] | None:
    if not isinstance(obj, dict) or obj.get("kind") not in KINDS:
        return None
    if not isinstance(obj.get("id"), str) or not isinstance(obj.get("seq"), int) or not isinstance(obj.get("at"), str):
        return None
    kind = obj["kind"]
    if kind == "step":
        step = obj.get("step")
        if not (isinstance(obj.get("sid"), str) and isinstance(step, dict) and isinstance(step.get("name"), str)
                and isinstance(step.get("started_at"), str) and isinstance(step.get("evidence", {}), dict)):
            return None
    if kind == "fact" and not isinstance(obj.get("key"), str):
        return None
    return obj


def parse(data: bytes, where: str = "the journal") -> Parsed:
    """Every line that is an event; a line that is not (torn, or not ours) is reported and dropped."""
    events: list[dict[str, Any]] = []
    torn: list[str] = []
    lines = data.split(b"\n")
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            ev = _event(json.loads(raw.decode("utf-8")))
        except (ValueError, RecursionError):      # UnicodeDecodeError is a ValueError
            ev = None
        if ev is None:
            last = n == len(lines)
            torn.append(f"{where} line {n}{' (the last, cut short)' if last else ''}: "
                        f"{raw[:60].decode('utf-8', 'replace')!r} dropped")
            continue
        events.append(ev)
    return Parsed(events, torn, not data or data.endswith(b"\n"))


def order(event: dict[str, Any]) -> tuple[int, str, str]:
    return (event["seq"], event["at"], event["id"])


def merge(*lists: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for events in lists:
        for ev in events:
            seen.setdefault(ev["id"], ev)
    return sorted(seen.values(), key=order)


@dataclasses.dataclass
class Folded:
    header: dict[str, Any]
    steps: list[tuple[str, dict[str, Any]]]
    facts: dict[str, Any]
    updated_at: str


STEP_FIELDS = ("name", "started_at", "ended_at", "outcome", "evidence", "note")


def fold(events: Iterable[dict[str, Any]]) -> Folded:
    header: dict[str, Any] = {}
    steps: dict[str, dict[str, Any]] = {}
    facts: dict[str, Any] = {}
    updated = ""
    for ev in sorted(events, key=order):
        updated = max(updated, ev["at"])
        if ev["kind"] == "journal":
            header = {k: ev.get(k) for k in ("version", "host", "operator", "created_at")}
        elif ev["kind"] == "step":
            rec = {k: ev["step"][k] for k in STEP_FIELDS if k in ev["step"]}
            steps[ev["sid"]] = rec                      # dicts keep the order of the first event
        elif ev.get("deleted"):
            facts.pop(ev["key"], None)
        else:
            facts[ev["key"]] = ev.get("value")
    return Folded(header, list(steps.items()), facts, updated)


def from_old(data: dict[str, Any]) -> list[dict[str, Any]]:
    """A journal written before the log, as events (its steps, then its facts), stamped with its own times."""
    at = str(data.get("updated_at") or data.get("created_at") or "")
    out: list[dict[str, Any]] = [{"id": new_id(), "seq": 0, "at": str(data.get("created_at") or at), "kind": "journal",
                                  **{k: data.get(k) for k in ("version", "host", "operator", "created_at")}}]
    for step in data.get("steps") or []:
        out.append({"id": new_id(), "seq": len(out), "at": str(step.get("ended_at") or step.get("started_at") or at),
                    "kind": "step", "sid": new_id(), "step": step})
    for key, value in (data.get("facts") or {}).items():
        out.append({"id": new_id(), "seq": len(out), "at": at, "kind": "fact", "key": key, "value": value})
    return out
