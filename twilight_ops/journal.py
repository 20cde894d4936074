"""The cutover journal: one per version, held once per run, an append-only event log on disk.

Steps carry start/end, outcome, evidence; `facts` hold what a rollback needs
(pre-cutover image digest, snapshot path and sha256, …).  A run loads a version's journal
once (JournalStore.held: the Target hands every phase the same object) and each save
appends only what changed (journal_log: one JSON line per step record or fact) to the local
copy under the state dir (fsync) and, at the end of each top-level step or batch, to the
mirror under ~/twilight/cutover/ on tvps (one append command), so a rollback still works if the
laptop loses its copy.  The copies merge by event id; a line cut short by kill -9 is dropped
and reported.  Journals written before the log (one JSON object, `.json`) are converted on
first load and kept beside.  Secrets never enter: values are plain JSON, a Secret refuses to
serialise, and registered secrets are scrubbed from every line.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from .clock import iso, now_utc
from . import journal_log, validate
from .builders import files
from .builders.layout import Layout
from .errors import BadInput, TwilightError, Unreachable, mark_step
from .executor import Executor
from .secret import Secret, scrub



def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Secret):
        raise TypeError("a Secret cannot be written to the journal")
    if isinstance(obj, Path):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


@dataclasses.dataclass
class Step:
    name: str
    started_at: str
    ended_at: str | None = None
    outcome: str = "running"        # running | ok | failed | red | skipped | unreachable | interrupted
    # unreachable: a part did not answer (tvps, its docker, the registry …): nothing is known against the release
    # interrupted: Ctrl-C or another signal stopped it; both are INCOMPLETE for the decision, and resumable
    evidence: dict[str, Any] = dataclasses.field(default_factory=dict)
    note: str = ""


@dataclasses.dataclass
class Journal:
    version: str
    host: str
    operator: str
    created_at: str
    updated_at: str
    facts: dict[str, Any] = dataclasses.field(default_factory=dict)
    steps: list[Step] = dataclasses.field(default_factory=list)
    log: "Log | None" = dataclasses.field(default=None, repr=False, compare=False)   # the events behind it (JournalStore)

    # -- queries ----------------------------------------------------------
    def last(self, name: str) -> Step | None:
        for step in reversed(self.steps):
            if step.name == name:
                return step
        return None

    def done(self, name: str) -> bool:
        step = self.last(name)
        return step is not None and step.outcome == "ok"

    # -- the state as one object (reports, --json, tests) ------------------
    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "host": self.host, "operator": self.operator,
                "created_at": self.created_at, "updated_at": self.updated_at,
                "facts": self.facts, "steps": [dataclasses.asdict(s) for s in self.steps]}

    def to_json(self, *secrets: Secret | None) -> str:
        text = json.dumps(self.to_dict(), indent=2, sort_keys=False, default=_json_default)
        return scrub(text, *secrets)

    @classmethod
    def from_json(cls, text: str) -> "Journal":
        """A journal written before the event log (one JSON object); ValueError/TypeError for anything
        that is not one (its version is validated: it becomes a local file name)."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"a journal is an object, not a {type(data).__name__}")
        steps = data.pop("steps", [])
        if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
            raise ValueError("its steps are not a list of objects")
        data.pop("log", None)
        journal = cls(steps=[Step(**s) for s in steps], **data)
        validate.journal_version(journal.version, "its version")
        if not isinstance(journal.updated_at, str) or not isinstance(journal.facts, dict):
            raise ValueError("its updated_at or facts have the wrong type")
        return journal


CUT_OFF = ("unreachable", "interrupted")


def cut_off(e: BaseException) -> str:
    """How a step that raised ends: unreachable (a part did not answer), interrupted (Ctrl-C, a signal,
    anything not ours), else failed (a check failed: evidence against what the step did)."""
    if isinstance(e, Unreachable):
        return "unreachable"
    return "failed" if isinstance(e, TwilightError) else "interrupted"


def new_journal(version: str, host: str, operator: str) -> Journal:
    t = iso(now_utc())
    return Journal(version=version, host=host, operator=operator, created_at=t, updated_at=t)


def local_dir(state_dir: Path, host: str) -> Path:
    """Where this machine keeps its journal copies for one host."""
    return state_dir / "journals" / host


@dataclasses.dataclass
class Log:
    """What this process knows of one journal's events, and which of them each copy holds."""
    events: list[dict[str, Any]] = dataclasses.field(default_factory=list)   # fold order
    written: dict[str, str] = dataclasses.field(default_factory=dict)        # "step:<sid>" | "fact:<key>" | "journal" -> JSON
    sids: dict[int, tuple[Step, str]] = dataclasses.field(default_factory=dict)
    next_seq: int = 0
    local_ids: set[str] = dataclasses.field(default_factory=set)
    remote_ids: set[str] = dataclasses.field(default_factory=set)
    local_clean: bool = True          # the local file ends with a newline (else the next append starts one)
    remote_clean: bool = True
    remote_exists: bool = False
    remote_rewrite: bytes | None = None   # the mirror held lines that are not events: kept aside, then rewritten
    torn: list[str] = dataclasses.field(default_factory=list)


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=_json_default)


def _plain(value: Any) -> Any:
    """The value as JSON gives it back (keys in their order), so the held journal equals a reloaded one."""
    return json.loads(json.dumps(value, default=_json_default))


def pending(journal: Journal) -> list[dict[str, Any]]:
    """The events for what changed in `journal` since its log last saw it (pure but for the log's
    bookkeeping): the header once, each step whose record changed, each fact set or dropped."""
    log = journal.log if journal.log is not None else Log()
    journal.log = log
    at = iso(now_utc())
    out: list[dict[str, Any]] = []

    def add(key: str, rec: str, event: dict[str, Any]) -> None:
        out.append({"id": journal_log.new_id(), "seq": log.next_seq + len(out), "at": at, **event})
        log.written[key] = rec

    header = {"version": journal.version, "host": journal.host, "operator": journal.operator, "created_at": journal.created_at}
    rec = _canon(header)
    if log.written.get("journal") != rec:
        add("journal", rec, {"kind": "journal", **header})
    for step in journal.steps:
        known = log.sids.get(id(step))
        sid = known[1] if known is not None and known[0] is step else journal_log.new_id()
        log.sids[id(step)] = (step, sid)
        record = dataclasses.asdict(step)
        rec = _canon(record)
        if log.written.get(f"step:{sid}") != rec:       # compared sorted, written in the order the phase gave it
            add(f"step:{sid}", rec, {"kind": "step", "sid": sid, "step": _plain(record)})
    for key, value in journal.facts.items():
        rec = _canon(value)
        if log.written.get(f"fact:{key}") != rec:
            add(f"fact:{key}", rec, {"kind": "fact", "key": key, "value": _plain(value)})
    for key in [k for k in log.written if k.startswith("fact:") and k[5:] not in journal.facts]:
        out.append({"id": journal_log.new_id(), "seq": log.next_seq + len(out), "at": at, "kind": "fact",
                    "key": key[5:], "deleted": True})
        del log.written[key]
    log.next_seq += len(out)
    log.events.extend(out)
    if out:
        journal.updated_at = at
    return out


def _from_events(version: str, events: list[dict[str, Any]], where: str) -> Journal:
    """The journal the events fold to, its log knowing each step and fact as written."""
    folded = journal_log.fold(events)
    head = folded.header
    if head.get("version") != version:
        raise BadInput(f"journal at {where} is for {str(head.get('version'))[:80]}, not {version}", "move it aside and re-run")
    log = Log(events=journal_log.merge(events), next_seq=max((e["seq"] for e in events), default=-1) + 1)
    journal = Journal(version=version, host=str(head.get("host") or ""), operator=str(head.get("operator") or ""),
                      created_at=str(head.get("created_at") or ""), updated_at=folded.updated_at, log=log)
    _adopt_fold(journal, folded)
    return journal


def _adopt_fold(journal: Journal, folded: journal_log.Folded) -> None:
    """Make `journal` (the same object: phases hold it) show `folded`, keeping the Step objects of steps it knows."""
    log = journal.log
    assert log is not None
    by_sid = {sid: step for step, sid in log.sids.values()}
    steps: list[Step] = []
    for sid, rec in folded.steps:
        step = by_sid.get(sid)
        if step is None:
            step = Step(**rec)
        else:
            for k, v in rec.items():
                setattr(step, k, v)
        log.sids[id(step)] = (step, sid)
        log.written[f"step:{sid}"] = _canon(dataclasses.asdict(step))
        steps.append(step)
    journal.steps[:] = steps
    journal.facts.clear()
    journal.facts.update(folded.facts)
    for key in [k for k in log.written if k.startswith("fact:")]:
        del log.written[key]
    for key, value in folded.facts.items():
        log.written[f"fact:{key}"] = _canon(value)
    log.written["journal"] = _canon({"version": journal.version, "host": journal.host, "operator": journal.operator,
                                     "created_at": journal.created_at})
    journal.updated_at = max(journal.updated_at, folded.updated_at)


@dataclasses.dataclass
class _Copy:
    events: list[dict[str, Any]] | None     # None: no log file here
    torn: list[str]
    clean: bool
    raw: bytes = b""
    legacy: Journal | None = None           # a journal written before the log


class JournalStore:
    """The run's journals: each loaded once and held (held()), every change appended as events to the
    local copy (fsync) and, at the end of each top-level step, to the mirror on tvps (one append command).
    Inside batch() (a cutover, a rollback) the mirror is written at flush() and when the batch ends."""

    def __init__(self, state_dir: Path, host: str, lay: Layout, ex: Executor | None,
                 warn: Callable[[str], None] | None = None):
        self.local_dir = local_dir(state_dir, host)
        self.lay = lay
        self.ex = ex
        self.secrets: list[Secret] = []
        self.warn = warn or (lambda line: print(line, file=sys.stderr, flush=True))
        self._held: dict[str, Journal] = {}
        self._depth = 0
        self._batch = 0
        self._mirror_failed: set[str] = set()

    # -- paths --------------------------------------------------------------
    def local_path(self, version: str) -> Path:
        # a version can come from tvps (lock holder, journal mirror): never a path outside local_dir
        return self.local_dir / f"{validate.journal_version(version)}.jsonl"

    def legacy_local_path(self, version: str) -> Path:
        return self.local_dir / f"{validate.journal_version(version)}.json"

    # -- reading ------------------------------------------------------------
    def held(self, version: str, *, fresh: bool = False, host: str = "", operator: str = "") -> Journal:
        """The run's one journal of `version`: loaded on first use (or new), then the same object for
        every phase.  fresh=True merges what other runs appended since (after taking the lock)."""
        journal = self._held.get(version)
        if journal is None:
            journal = self.load(version) or new_journal(version, host, operator)
            self._held[version] = journal
        elif fresh:
            self.refresh(journal)
        return journal

    def load(self, version: str) -> Journal | None:
        """Both copies, merged by event id; None if neither exists.  A copy that misses events gets them
        (the local one now, the mirror at the next flush); lines that are not events are reported."""
        local = self._read_local(version)
        remote = self._read_remote(version)
        if local.events is None and remote.events is None:
            legacies = [c.legacy for c in (local, remote) if c.legacy is not None]
            if not legacies:
                return None
            old = max(legacies, key=lambda j: (j.updated_at, len(j.steps)))
            journal = _from_events(version, journal_log.from_old(old.to_dict()), "the old journal")
            assert journal.log is not None
            self._write_local_whole(journal, b"")
            self.warn(f"journal of {version}: converted to an event log ({self.local_path(version).name}); "
                      f"the old file is kept beside it")
            return journal
        events = journal_log.merge(local.events or [], remote.events or [])
        where = f"{self.local_path(version)}" if local.events else f"the tvps mirror {self.lay.journal_path(version)}"
        journal = _from_events(version, events, where)
        log = journal.log
        assert log is not None
        log.local_ids = {e["id"] for e in local.events or []}
        log.remote_ids = {e["id"] for e in remote.events or []}
        log.local_clean, log.remote_clean = local.clean, remote.clean
        log.remote_exists = remote.events is not None
        log.torn = [*local.torn, *remote.torn]
        for line in log.torn:
            self.warn(f"journal of {version}: {line} (a write cut short; the rest of the journal is used)")
        if remote.torn:
            log.remote_rewrite = remote.raw
        if local.torn:
            self._write_local_whole(journal, local.raw)
        elif len(log.local_ids) < len(log.events):
            self._append_local(journal, [e for e in log.events if e["id"] not in log.local_ids])
        return journal

    def refresh(self, journal: Journal) -> None:
        """Merge into `journal` (the same object) the events other runs appended since it was loaded."""
        self.save(journal, mirror=False)
        log = journal.log
        assert log is not None
        local, remote = self._read_local(journal.version), self._read_remote(journal.version)
        known = {e["id"] for e in log.events}
        new = [e for e in [*(local.events or []), *(remote.events or [])] if e["id"] not in known]
        log.local_ids |= {e["id"] for e in local.events or []}
        log.remote_ids |= {e["id"] for e in remote.events or []}
        log.remote_exists = log.remote_exists or remote.events is not None
        if not new:
            return
        log.events = journal_log.merge(log.events, new)
        log.next_seq = max(log.next_seq, max(e["seq"] for e in new) + 1)
        _adopt_fold(journal, journal_log.fold(log.events))
        missing = [e for e in log.events if e["id"] not in log.local_ids]
        if missing:
            self._append_local(journal, missing)

    def _read_local(self, version: str) -> _Copy:
        path = self.local_path(version)
        if path.exists():
            return self._parse(path.read_bytes(), str(path), version)
        old = self.legacy_local_path(version)
        if old.exists():
            return _Copy(None, [], True, legacy=self._parse_legacy(old.read_bytes(), str(old), version))
        return _Copy(None, [], True)

    def _read_remote(self, version: str) -> _Copy:
        if self.ex is None:
            return _Copy(None, [], True)
        remote, old = self.lay.journal_path(version), self.lay.legacy_journal_path(version)
        try:                          # the log, else a journal written before the log: one read
            found, data = self.ex.read_first([remote, old])
        except FileNotFoundError:
            return _Copy(None, [], True)
        if found == 1:
            return _Copy(None, [], True, legacy=self._parse_legacy(data, f"the tvps mirror {old}", version))
        return self._parse(data, f"the tvps mirror {remote}", version)

    def _parse(self, data: bytes, where: str, version: str) -> _Copy:
        parsed = journal_log.parse(data, where)
        if not parsed.events and data.strip():
            # not one event in it: a journal written before the log under the new name, or not a journal
            return _Copy(None, [], True, legacy=self._parse_legacy(data, where, version))
        return _Copy(parsed.events, parsed.torn, parsed.ends_clean, raw=data)

    @staticmethod
    def _parse_legacy(data: bytes, where: str, version: str) -> Journal:
        try:
            journal = Journal.from_json(data.decode("utf-8"))
        except (ValueError, TypeError, RecursionError, BadInput) as e:  # UnicodeDecodeError is a ValueError
            why = e.message if isinstance(e, BadInput) else (str(e) or type(e).__name__)
            raise BadInput(f"journal at {where} is unreadable: {why[:200]}",
                           "move it aside and re-run; the other copy is used") from None
        if journal.version != version:
            raise BadInput(f"journal at {where} is for {journal.version}, not {version}", "move it aside and re-run")
        return journal

    # -- writing ------------------------------------------------------------
    def _text(self, events: list[dict[str, Any]]) -> bytes:
        return scrub("".join(journal_log.line(e, _json_default) for e in events), *self.secrets).encode()

    def _append_local(self, journal: Journal, events: list[dict[str, Any]]) -> None:
        log = journal.log
        assert log is not None
        path = self.local_path(journal.version)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = (b"" if log.local_clean else b"\n") + self._text(events)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        log.local_clean = True
        log.local_ids |= {e["id"] for e in events}

    def _write_local_whole(self, journal: Journal, damaged: bytes) -> None:
        """Write the whole log (first copy, or a copy with torn lines: those bytes are kept aside first)."""
        log = journal.log
        assert log is not None
        path = self.local_path(journal.version)
        if damaged:
            atomic_write(path.with_name(f"{path.name}.torn-{_stamp()}"), damaged)
        atomic_write(path, self._text(log.events))
        log.local_clean = True
        log.local_ids = {e["id"] for e in log.events}

    def save(self, journal: Journal, *, mirror: bool | None = None) -> None:
        """Append what changed to the local copy; to the mirror too when `mirror`, or by default
        outside any step and batch."""
        validate.journal_version(journal.version)
        new = pending(journal)
        if new:
            self._append_local(journal, new)
        self._held.setdefault(journal.version, journal)
        if mirror or (mirror is None and self._depth == 0 and self._batch == 0):
            self.flush(journal)

    def flush(self, journal: Journal) -> None:
        """Bring the tvps mirror up to date: one append (`cat >>`, one command) of the events it misses (or one atomic
        write when it has no log yet, or held lines that were not events)."""
        log = journal.log
        if self.ex is None or log is None:
            return
        missing = [e for e in log.events if e["id"] not in log.remote_ids]
        if not missing and log.remote_rewrite is None:
            return
        path = self.lay.journal_path(journal.version)
        if log.remote_rewrite is not None:
            self.ex.write_file(f"{path}.torn-{_stamp()}", log.remote_rewrite, mode=0o600)
        if not log.remote_exists or log.remote_rewrite is not None:
            # a fresh tvps has no ~/twilight/cutover yet: the write makes it (the same command)
            self.ex.write_file(path, self._text(log.events), mode=0o600, parents=not log.remote_exists)
            log.remote_ids = {e["id"] for e in log.events}
        else:
            data = (b"" if log.remote_clean else b"\n") + self._text(missing)
            self.ex.append_file(path, data)
            log.remote_ids |= {e["id"] for e in missing}
        log.remote_exists, log.remote_clean, log.remote_rewrite = True, True, None

    def flush_all(self, *, quiet: bool = False) -> None:
        """Every held journal's mirror brought up to date; quiet: a failure is one warning line, not an error
        (the local copy has every event, and the next run's first flush sends them)."""
        for journal in list(self._held.values()):
            if quiet and journal.version in self._mirror_failed:
                continue                        # said once; the link is not tried again on the way out
            try:
                lost = getattr(self.ex, "_lost", None) if quiet else None
                if lost is not None:             # the link is already given up: do not wait on it again
                    raise lost
                self.flush(journal)
            except BaseException as e:   # noqa: BLE001 - the run is ending; its own error (if any) is what counts
                # quiet: an error (or the Ctrl-C a dead link re-raises) is already on its way out; never replace it
                if not quiet:
                    raise
                self._mirror_failed.add(journal.version)
                log = journal.log
                n = len([e for e in log.events if e["id"] not in log.remote_ids]) if log else 0
                why = e.line() if isinstance(e, TwilightError) else ("the link was given up after Ctrl-C"
                                                                     if isinstance(e, KeyboardInterrupt) else type(e).__name__)
                self.warn(f"journal of {journal.version}: the tvps mirror misses {n} event(s) ({why[:160]}); "
                          "the local copy has them and the next run sends them")

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Steps inside write their mirror events at flush() and at the end (also when it raises)."""
        self._batch += 1
        ok = False
        try:
            yield
            ok = True
        finally:
            self._batch -= 1
            if self._batch == 0:
                self.flush_all(quiet=not ok)

    @contextlib.contextmanager
    def step(self, journal: Journal, name: str) -> Iterator[Step]:
        """Record a step: saved as running, then ok, or failed with the error line.  An error or
        Ctrl-C escaping it is marked with the step's name (errors.step_of: "in flight")."""
        step = Step(name=name, started_at=iso(now_utc()))
        journal.steps.append(step)
        self._depth += 1
        raised = True
        try:
            self.save(journal, mirror=False)      # inside: a Ctrl-C while it is written still ends the step
            yield step
            raised = False
        except TwilightError as e:
            mark_step(e, name)
            if step.outcome == "running":
                step.outcome = cut_off(e)
            step.note = step.note or e.line()
            raise
        except BaseException as e:
            mark_step(e, name)
            step.outcome = cut_off(e)
            step.note = step.note or f"interrupted: {type(e).__name__}"
            raise
        else:
            if step.outcome == "running":
                step.outcome = "ok"
        finally:
            step.ended_at = iso(now_utc())
            self._depth -= 1
            if not raised:
                self.save(journal)
            else:                                 # the step's error is what the run reports, never the mirror's
                self.save(journal, mirror=False)
                if self._depth == 0 and self._batch == 0:
                    self.flush_all(quiet=True)

    def once(self, journal: Journal, name: str, action: Callable[[Step], None], *,
             verify: Callable[[Step], bool] | None = None) -> tuple[Step, str]:
        """Run a side-effecting step once across re-runs; (step, how) with how one of
        "skipped" (an earlier run finished it), "verified" (an earlier run was cut off in it,
        or failed, and `verify` found its effect in place) or "ran".

        `action(step)` does the work and fills step.evidence; `verify(previous)` looks at
        the host (never at the journal alone) and says whether the effect is already there.
        """
        previous = journal.last(name)
        if previous is not None and previous.outcome == "ok":
            return previous, "skipped"
        if previous is not None and previous.outcome in ("running", "failed", *CUT_OFF) and verify is not None:
            with self.step(journal, name) as step:
                step.evidence["resumed_from"] = previous.started_at
                if verify(step):
                    step.note = f"found done after an interrupted run ({previous.outcome} at {previous.started_at})"
                    return step, "verified"
                action(step)
            return step, "ran"
        with self.step(journal, name) as step:
            action(step)
        return step, "ran"

    def list_remote(self) -> list[str]:
        """Versions with a journal mirrored on tvps (an event log, or an older single-object file)."""
        if self.ex is None:
            return []
        r = self.ex.run(files.list_dir(self.lay.cutover_dir), check=False)
        names = r.stdout.split() if r.ok else []
        found = {n[len("journal-"):].removesuffix(".jsonl").removesuffix(".json") for n in names
                 if n.startswith("journal-") and (n.endswith(".json") or n.endswith(".jsonl"))}
        return sorted(v for v in found if v == validate.UNKNOWN_VERSION or validate.VERSION_RE.fullmatch(v))   # names from tvps are printed


def read_copy(path: Path) -> Journal:
    """One local copy as it stands (an event log, or a journal from before the log), read only: nothing
    is converted or repaired.  ValueError/TypeError/BadInput for a file that is not a journal."""
    data = path.read_bytes()
    if path.suffix == ".jsonl":
        parsed = journal_log.parse(data, str(path))
        if parsed.events:
            version = str(journal_log.fold(parsed.events).header.get("version"))
            validate.journal_version(version, "its version")
            return _from_events(version, parsed.events, str(path))
    return Journal.from_json(data.decode("utf-8"))


def local_copies(directory: Path) -> list[Path]:
    """The journal files of one host's local dir: each version's event log, or its older file if it has none."""
    if not directory.is_dir():
        return []
    logs = sorted(directory.glob("*.jsonl"))
    stems = {p.stem for p in logs}
    return logs + [p for p in sorted(directory.glob("*.json")) if p.stem not in stems]


def _stamp() -> str:
    return now_utc().strftime("%Y%m%dT%H%M%SZ")
