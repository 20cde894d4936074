"""§2.3 decided from evidence: what the warehouse became since T+00:00, and what a rollback does
with it (pure).

    changes(evidence) -> [Change]          tables/columns/types/indexes/storage version, then → now
    plan(evidence, since) -> DataPlan      "schema unchanged since T+00:00 → keep the warehouse (0 rows
                                           at risk)" or "schema changed: … → a restore would drop N rows …"
    choose(plan, restore_db, keep_db) -> "keep" | "restore" | "verify-then-decide"
    after_verify(plan, legacy_ok, keep_db) -> "keep" | "restore" | "refused"

The evidence is monitor/schema.py's JSON, read in a one-off container on tvps while the backend
runs: {"now": {"tables", "indexes"}, "then": {…}, "since": {table: {"rows", "first", "last"}},
"storage": {"now", "then"}}.
"""
from __future__ import annotations

import dataclasses
from typing import Any

KEEP, RESTORE, VERIFY, REFUSED = "keep", "restore", "verify-then-decide", "refused"


@dataclasses.dataclass(frozen=True)
class Change:
    table: str
    what: str            # table-added table-dropped column-added column-dropped column-retyped index-… storage
    detail: str

    def line(self) -> str:
        return f"`{self.table}` {self.detail}" if self.table else self.detail


@dataclasses.dataclass(frozen=True)
class DataPlan:
    changed: bool
    changes: tuple[Change, ...]
    rows_at_risk: int                    # rows written since T+00:00 that a restore would drop
    first: str | None
    last: str | None
    per_table: tuple[tuple[str, int], ...]
    since: str

    def line(self) -> str:
        if not self.changed:
            return (f"schema unchanged since T+00:00 ({self.since}) → keep the warehouse "
                    f"({self.rows_at_risk} rows at risk)")
        what = "; ".join(c.line() for c in self.changes[:4]) + (f"; +{len(self.changes) - 4} more" if len(self.changes) > 4 else "")
        window = f" (first {self.first}, last {self.last})" if self.first else ""
        return (f"schema changed since T+00:00: {what} → a restore would drop {rows(self.rows_at_risk)} "
                f"written since T+00:00{window}")

    def to_json(self) -> dict[str, Any]:
        return {"changed": self.changed, "changes": [dataclasses.asdict(c) for c in self.changes],
                "rows_at_risk": self.rows_at_risk, "first": self.first, "last": self.last,
                "per_table": dict(self.per_table), "since": self.since, "line": self.line()}


def rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def from_json(data: dict[str, Any]) -> DataPlan:
    """A plan as to_json() wrote it (a resumed rollback reads its data-plan step back)."""
    return DataPlan(bool(data.get("changed")),
                    tuple(Change(str(c.get("table", "")), str(c.get("what", "")), str(c.get("detail", "")))
                          for c in data.get("changes") or []),
                    int(data.get("rows_at_risk") or 0), data.get("first"), data.get("last"),
                    tuple(sorted((str(k), int(v)) for k, v in (data.get("per_table") or {}).items())),
                    str(data.get("since") or ""))


def _columns(side: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {name: {c: ty for c, ty in t.get("columns", [])} for name, t in (side.get("tables") or {}).items()}


def changes(evidence: dict[str, Any]) -> list[Change]:
    then, now = _columns(evidence.get("then") or {}), _columns(evidence.get("now") or {})
    out: list[Change] = []
    for table in sorted(now.keys() - then.keys()):
        out.append(Change(table, "table-added", "is a new table"))
    for table in sorted(then.keys() - now.keys()):
        out.append(Change(table, "table-dropped", "was dropped"))
    for table in sorted(then.keys() & now.keys()):
        before, after = then[table], now[table]
        gone, new = [c for c in before if c not in after], [c for c in after if c not in before]
        if len(gone) == len(new) == 1 and before[gone[0]] == after[new[0]]:
            out.append(Change(table, "column-renamed", f"column `{gone[0]}` renamed to `{new[0]}`"))
            continue
        out += [Change(table, "column-dropped", f"lost column `{c}` ({before[c]})") for c in gone]
        out += [Change(table, "column-added", f"gained column `{c}` ({after[c]})") for c in new]
        out += [Change(table, "column-retyped", f"column `{c}` {before[c]} → {after[c]}")
                for c in before if c in after and before[c] != after[c]]
    idx_then = {tuple(i[:2]): i[2] for i in (evidence.get("then") or {}).get("indexes", [])}
    idx_now = {tuple(i[:2]): i[2] for i in (evidence.get("now") or {}).get("indexes", [])}
    out += [Change(t, "index-added", f"gained index `{n}`") for t, n in sorted(idx_now.keys() - idx_then.keys())]
    out += [Change(t, "index-dropped", f"lost index `{n}`") for t, n in sorted(idx_then.keys() - idx_now.keys())]
    storage = evidence.get("storage") or {}
    if storage.get("then") is not None and storage.get("now") is not None and storage["then"] != storage["now"]:
        out.append(Change("", "storage", f"storage version {storage['then']} → {storage['now']}"))
    return out


def plan(evidence: dict[str, Any], since: str) -> DataPlan:
    found = changes(evidence)
    rows = {name: int(r.get("rows") or 0) for name, r in (evidence.get("since") or {}).items()}
    firsts = [r["first"] for r in (evidence.get("since") or {}).values() if r.get("rows") and r.get("first")]
    lasts = [r["last"] for r in (evidence.get("since") or {}).values() if r.get("rows") and r.get("last")]
    return DataPlan(bool(found), tuple(found), sum(rows.values()), min(firsts) if firsts else None,
                    max(lasts) if lasts else None, tuple(sorted((k, v) for k, v in rows.items() if v)), since)


def choose(p: DataPlan, restore_db: bool, keep_db: bool) -> str:
    """Before the image rolls back: restore now (--restore-db), keep (schema unchanged), or roll the
    image back and decide from §2.4's verification (a changed schema, with or without --keep-db)."""
    if restore_db:
        return RESTORE
    if not p.changed:
        return KEEP
    return VERIFY          # --keep-db too: after the check, a v0.2.0 that cannot read it ends red (after_verify)


def after_verify(p: DataPlan, legacy_ok: bool, keep_db: bool) -> str:
    """The schema changed and the image is rolled back: keep the warehouse if v0.2.0 is healthy and
    its legacy smoke green (it reads it), else restore; --keep-db refuses the restore (ends red)."""
    if legacy_ok:
        return KEEP
    return REFUSED if keep_db else RESTORE
