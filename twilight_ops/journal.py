"""The cutover journal: one per version, written atomically, mirrored to tvps.

Steps carry start/end, outcome, evidence; `facts` hold what a rollback needs
(pre-cutover image digest, snapshot path and sha256, …).  The local copy lives
under the state dir; the mirror under ~/twilight/cutover/ on tvps, so a rollback
still works if the laptop loses its copy.  Secrets never enter: values are plain
JSON, and a Secret refuses to serialise.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from .clock import iso, now_utc
from . import validate
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

    # -- queries ----------------------------------------------------------
    def last(self, name: str) -> Step | None:
        for step in reversed(self.steps):
            if step.name == name:
                return step
        return None

    def done(self, name: str) -> bool:
        step = self.last(name)
        return step is not None and step.outcome == "ok"

    # -- (de)serialisation ------------------------------------------------
    def to_json(self, *secrets: Secret | None) -> str:
        text = json.dumps(dataclasses.asdict(self), indent=2, sort_keys=False, default=_json_default)
        return scrub(text, *secrets)

    @classmethod
    def from_json(cls, text: str) -> "Journal":
        """ValueError/TypeError for anything that is not a journal (its version is validated:
        it becomes a local file name)."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"a journal is an object, not a {type(data).__name__}")
        steps = data.pop("steps", [])
        if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
            raise ValueError("its steps are not a list of objects")
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


class JournalStore:
    """Loads and saves one version's journal: local file + mirror on tvps."""

    def __init__(self, state_dir: Path, host: str, lay: Layout, ex: Executor | None):
        self.local_dir = local_dir(state_dir, host)
        self.lay = lay
        self.ex = ex
        self.secrets: list[Secret] = []
        self._remote_dir_ready = False

    def local_path(self, version: str) -> Path:
        # a version can come from tvps (lock holder, journal mirror): never a path outside local_dir
        return self.local_dir / f"{validate.journal_version(version)}.json"

    def load(self, version: str) -> Journal | None:
        """The newer of the local copy and the tvps mirror; None if neither exists."""
        found: list[Journal] = []
        lp = self.local_path(version)
        if lp.exists():
            found.append(self._parse(lp.read_bytes(), str(lp), version))
        if self.ex is not None:
            try:
                remote = self.lay.journal_path(version)
                found.append(self._parse(self.ex.read_file(remote), f"the tvps mirror {remote}", version))
            except FileNotFoundError:
                pass
        if not found:
            return None
        return max(found, key=lambda j: (j.updated_at, len(j.steps)))

    @staticmethod
    def _parse(data: bytes, where: str, version: str) -> Journal:
        try:
            journal = Journal.from_json(data.decode("utf-8"))
        except (ValueError, TypeError, RecursionError, BadInput) as e:  # UnicodeDecodeError is a ValueError
            why = e.message if isinstance(e, BadInput) else (str(e) or type(e).__name__)
            raise BadInput(f"journal at {where} is unreadable: {why[:200]}",
                           "move it aside and re-run; the other copy is used") from None
        if journal.version != version:
            raise BadInput(f"journal at {where} is for {journal.version}, not {version}", "move it aside and re-run")
        return journal

    def save(self, journal: Journal) -> None:
        journal.updated_at = iso(now_utc())
        data = journal.to_json(*self.secrets).encode()
        atomic_write(self.local_path(journal.version), data)
        if self.ex is not None:
            if not self._remote_dir_ready:  # a fresh tvps has no ~/twilight/cutover yet
                self.ex.run(files.mkdir_p(self.lay.cutover_dir))
                self._remote_dir_ready = True
            self.ex.write_file(self.lay.journal_path(journal.version), data, mode=0o600)

    @contextlib.contextmanager
    def step(self, journal: Journal, name: str) -> Iterator[Step]:
        """Record a step: saved as running, then ok, or failed with the error line.  An error or
        Ctrl-C escaping it is marked with the step's name (errors.step_of: "in flight")."""
        step = Step(name=name, started_at=iso(now_utc()))
        journal.steps.append(step)
        try:
            self.save(journal)      # inside: a Ctrl-C while the mirror is written still ends the step
            yield step
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
            self.save(journal)

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
        """Versions with a journal mirrored on tvps."""
        if self.ex is None:
            return []
        r = self.ex.run(files.list_dir(self.lay.cutover_dir), check=False)
        names = r.stdout.split() if r.ok else []
        found = (n[len("journal-"):-len(".json")] for n in names if n.startswith("journal-") and n.endswith(".json"))
        return sorted(v for v in found if v == validate.UNKNOWN_VERSION or validate.VERSION_RE.fullmatch(v))   # names from tvps are printed
