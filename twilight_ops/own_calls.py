"""The tool's own /price calls, so that preflight's no_traffic does not count them as clients.

    record_call(settings, start, end, code, status, attempts)   api.get_price, after every call it sent
    record_prompt(settings, start, end, codes, check)           agent_smoke.ask_all, around every Hermes prompt
    read(settings, since) -> [OwnCall]                          what preflight leaves out
    match(rows, calls, slack_s) -> (indexes, by_kind)           pure: which audit rows are the tool's own
    leave_out(rows, calls, slack_s) -> LeftOut                  pure: the rows without them (preflight)
    to_wire(calls, shift_s) / from_wire(items)                  the monitor probe's `own` parameter

The monitor probe (monitor/probe.py) runs match() inside the backend container: build_probe_script
ships this module with it (monitor/bundle.py), so §3 and the §2 guard leave out exactly what
preflight leaves out.  Stdlib only, for that reason.

The record is one append-only JSON-lines file per host under the state dir,
`<state_dir>/own-calls/<host>.jsonl`: one line per call (O_APPEND, never rewritten). Times
are the tool's clock (clock.now_utc with clock_offset_seconds), the same clock the monitor
probe's window uses and the one the twin's backend stamps audit rows with.

Matching. The backend stamps an audit row while it serves the request, so on one clock the
row's ts lies inside the call's start..end. SLACK_S (2 s) either side covers the skew
between the operator's clock and tvps's (NTP keeps it well under 100 ms) and a backend that
stamps the row just after answering. An API call absorbs at most one row per HTTP attempt
it made (a transport retry can reach the server twice); an agent prompt absorbs every row
for its codes inside its window (the agent may call /price more than once per prompt, on the
tool's behalf). A code matches case-insensitively, and for agent prompts also by its number
alone (`600519` for `600519.SH`), since the agent chooses the form it sends. A record that
cannot be written is skipped silently: its call then counts as traffic (the safe side).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

SLACK_S = 2.0
TAIL_BYTES = 1 << 20          # the last 1 MiB holds thousands of calls: far more than a traffic window


@dataclasses.dataclass(frozen=True)
class OwnCall:
    kind: str                  # "api" (get_price) | "agent" (a Hermes prompt)
    start: dt.datetime         # aware, UTC
    end: dt.datetime
    codes: tuple[str, ...]
    status: int | None = None
    attempts: int = 1
    check: str = ""

    def covers(self, ts: dt.datetime, slack_s: float = SLACK_S) -> bool:
        slack = dt.timedelta(seconds=slack_s)
        return self.start - slack <= ts <= self.end + slack

    def matches_code(self, code: str | None) -> bool:
        if code is None:
            return False
        got = code.strip().upper()
        for c in self.codes:
            want = c.strip().upper()
            if got == want or (self.kind == "agent" and got.split(".")[0] == want.split(".")[0]):
                return True
        return False

    def to_json(self) -> dict:
        out: dict[str, Any] = {"kind": self.kind, "start": _iso(self.start), "end": _iso(self.end), "codes": list(self.codes)}
        if self.kind == "api":
            out.update(status=self.status, attempts=self.attempts)
        if self.check:
            out["check"] = self.check
        return out


@dataclasses.dataclass(frozen=True)
class LeftOut:
    kept: tuple[tuple[dt.datetime | None, str | None], ...]     # the rows that count as traffic
    left_out: int
    by_kind: dict[str, int]


def _iso(at: dt.datetime) -> str:
    return at.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")


def parse_instant(value: object) -> dt.datetime | None:
    """An ISO timestamp ('Z' or an offset; more than 6 fractional digits cut) as aware UTC; None if not one."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    if "." in text:            # docker prints nanoseconds; fromisoformat takes at most 6 digits
        head, _, rest = text.partition(".")
        digits = "".join(ch for ch in rest if ch.isdigit())
        zone = rest[len(digits):]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    try:
        at = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if at.tzinfo is None:       # the probe's naive UTC
        at = at.replace(tzinfo=dt.timezone.utc)
    return at.astimezone(dt.timezone.utc)


# ---------------------------------------------------------------- the record

def record_path(settings) -> Path:
    return Path(settings.state_dir) / "own-calls" / f"{settings.host}.jsonl"


def _append(settings, call: OwnCall) -> None:
    path = record_path(settings)
    line = (json.dumps(call.to_json(), separators=(",", ":"), sort_keys=True) + "\n").encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)      # one write of one short line: appends from two processes do not interleave
        finally:
            os.close(fd)
    except OSError:
        pass                        # unrecorded: preflight counts this call as traffic (the safe side)


def record_call(settings, start: dt.datetime, end: dt.datetime, code: str, status: int | None, attempts: int = 1) -> None:
    _append(settings, OwnCall("api", start, end, (code,), status, max(1, int(attempts))))


def record_prompt(settings, start: dt.datetime, end: dt.datetime, codes: Sequence[str], check: str) -> None:
    _append(settings, OwnCall("agent", start, end, tuple(codes), check=check))


def _from_json(obj: object) -> OwnCall | None:
    if not isinstance(obj, dict):
        return None
    start, end = parse_instant(obj.get("start")), parse_instant(obj.get("end"))
    codes = obj.get("codes")
    kind = obj.get("kind")
    if start is None or end is None or kind not in ("api", "agent") or not isinstance(codes, list) \
            or not all(isinstance(c, str) for c in codes):
        return None
    attempts = obj.get("attempts", 1)
    status = obj.get("status")
    return OwnCall(kind, start, end, tuple(codes), status if isinstance(status, int) else None,
                   attempts if isinstance(attempts, int) and attempts > 0 else 1, str(obj.get("check") or ""))


def parse_lines(text: str) -> list[OwnCall]:
    """The record's lines; a torn or foreign line is skipped (its call then counts as traffic)."""
    out = []
    for line in text.splitlines():
        try:
            call = _from_json(json.loads(line))
        except ValueError:
            continue
        if call is not None:
            out.append(call)
    return out


def read(settings, since: dt.datetime) -> list[OwnCall]:
    """The recorded own calls that ended at or after `since` (the file's last TAIL_BYTES)."""
    path = record_path(settings)
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - TAIL_BYTES))
            data = fh.read()
    except OSError:          # none recorded, or unreadable: every audited call counts (the safe side)
        return []
    if size > TAIL_BYTES:
        data = data.split(b"\n", 1)[-1]          # the first line may be cut
    return [c for c in parse_lines(data.decode("utf-8", "replace")) if c.end >= since]


# ---------------------------------------------------------------- matching (pure)

def match(rows: Sequence[tuple[dt.datetime | None, str | None]], calls: Sequence[OwnCall],
          slack_s: float = SLACK_S) -> tuple[list[int], dict[str, int]]:
    """Which audit rows (ts, ts_code) are the tool's own: their indexes in `rows`, and how many per kind.

    Rows in time order; each goes to the API call (same code, ts within its window, attempts
    left) that ends first — the greedy choice that leaves out the most rows — else to an agent
    prompt covering it, else it is kept. A row without a ts or a code is always kept.
    preflight's no_traffic (through leave_out), the §3 monitor and the §2 guard (inside the
    monitor probe, shipped with it) all use this one rule."""
    api = sorted((c for c in calls if c.kind == "api"), key=lambda c: c.end)
    agent = sorted((c for c in calls if c.kind == "agent"), key=lambda c: c.end)
    room = [c.attempts for c in api]
    api_codes = [frozenset(x.strip().upper() for x in c.codes) for c in api]   # an api call matches its code exactly
    slack = dt.timedelta(seconds=slack_s)
    agent_stems = [frozenset(x.strip().upper().split(".")[0] for x in c.codes) for c in agent]  # a prompt: any market
    longest = max((c.end - c.start for c in api), default=dt.timedelta(0))
    agent_longest = max((c.end - c.start for c in agent), default=dt.timedelta(0))
    first = 0       # api[:first] ended (+ slack) before this row: before every later row too (rows in time order)
    agent_first = 0
    own: list[int] = []
    by_kind = {"api": 0, "agent": 0}
    far = dt.datetime.max.replace(tzinfo=dt.timezone.utc)
    for k in sorted(range(len(rows)), key=lambda k: rows[k][0] or far):
        ts, code = rows[k]
        if ts is None:
            continue
        while first < len(api) and api[first].end + slack < ts:
            first += 1
        got = code.strip().upper() if code is not None else None
        i = None
        for j in range(first, len(api)):     # the first call, in end order, with room that covers the row
            c = api[j]
            if c.end - longest - slack > ts:  # it and every later one start after the row: none covers it
                break
            if room[j] and got in api_codes[j] and c.start - slack <= ts <= c.end + slack:
                i = j
                break
        if i is not None:
            room[i] -= 1
            by_kind["api"] += 1
            own.append(k)
            continue
        while agent_first < len(agent) and agent[agent_first].end + slack < ts:
            agent_first += 1
        stem = got.split(".")[0] if got is not None else None
        for j in range(agent_first, len(agent)):   # any prompt covering the row, its code in any market
            c = agent[j]
            if c.end - agent_longest - slack > ts:
                break
            if stem in agent_stems[j] and c.start - slack <= ts <= c.end + slack:
                by_kind["agent"] += 1
                own.append(k)
                break
    return own, by_kind


def leave_out(rows: Iterable[tuple[dt.datetime | None, str | None]], calls: Sequence[OwnCall],
              slack_s: float = SLACK_S) -> LeftOut:
    """Split audit rows (ts, ts_code) into the tool's own and the rest (match(), kept rows in time order)."""
    far = dt.datetime.max.replace(tzinfo=dt.timezone.utc)
    ordered = sorted(rows, key=lambda r: r[0] or far)
    own, by_kind = match(ordered, calls, slack_s)
    mine = set(own)
    kept = tuple(r for k, r in enumerate(ordered) if k not in mine)
    return LeftOut(kept, len(own), by_kind)


def to_wire(calls: Sequence[OwnCall], shift_s: float = 0.0) -> list[dict]:
    """The calls as the monitor probe's `own` parameter, moved by shift_s seconds onto the audit log's
    clock (tvps's: + the measured skew)."""
    d = dt.timedelta(seconds=shift_s)
    return [dataclasses.replace(c, start=c.start + d, end=c.end + d).to_json() for c in calls]


def from_wire(items: Iterable[object]) -> list[OwnCall]:
    """The probe's side of to_wire (a malformed item is skipped: its rows then count as traffic)."""
    return [c for c in (_from_json(x) for x in items) if c is not None]
