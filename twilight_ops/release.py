"""Which release a run is for, fixed before anything connects (issue 25).

    choose(explicit, in_progress, configured) -> Release(version, why)      pure
    in_progress(journal_dir) -> str | None                                   the local journal copies

In order: an explicit `--version`; else the cutover in progress (an `inv cutover` whose journal
records a start and no finish, no rollback and no close-out); else `twilight.release` (default
v0.3.0-w4-cutover, the runbook's release).  An explicit `--version` that differs from a cutover
in progress is refused (BadInput, exit 2): one run at a time, and a typo must not start a second.
Only the local journal copies are read, so the choice needs no connection.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from . import runbook, validate
from .errors import BadInput
from .runbook import Fact

DEFAULT_RELEASE = "v0.3.0-w4-cutover"

EXPLICIT = "--version"
IN_PROGRESS = "cutover in progress"
CONFIG_DEFAULT = "config default"
CONFIGURED = "config twilight.release"


@dataclasses.dataclass(frozen=True)
class Release:
    version: str
    why: str          # EXPLICIT | IN_PROGRESS | CONFIG_DEFAULT | CONFIGURED

    def describe(self) -> str:
        return f"release: {self.version} ({self.why})"


def choose(explicit: str | None, in_progress: str | None, configured: str, *,
           default: str = DEFAULT_RELEASE) -> Release:
    """The release of this run (pure): explicit > in progress > configured; a conflict is BadInput."""
    if explicit:
        if in_progress and explicit != in_progress:
            raise BadInput(f"--version {explicit} is not the cutover in progress ({in_progress}); nothing was touched",
                           f"drop --version to work on {in_progress}, or finish it first "
                           f"(inv cutover --version {in_progress} --resume)")
        return Release(explicit, EXPLICIT)
    if in_progress:
        return Release(in_progress, IN_PROGRESS)
    return Release(configured, CONFIG_DEFAULT if configured == default else CONFIGURED)


def is_in_progress(facts: dict) -> bool:
    """A journal's facts say an `inv cutover` started and has not finished (pure): it may have
    stopped (NO-GO, a failed tag-push), be waiting for confirmation, or have been cut off."""
    st = facts.get(Fact.CUTOVER)
    if not isinstance(st, dict) or not st.get("started_at"):
        return False
    return not (st.get("finished_at") or facts.get(Fact.ROLLED_BACK) or facts.get(Fact.CLOSEOUT))


def in_progress(journal_dir: Path) -> str | None:
    """The version of the cutover in progress among the local journal copies (the latest started
    when, from older runs, there is more than one); None when there is none.  A file that is not
    a readable journal is passed over here: the task that loads it says what is wrong with it."""
    from .journal import local_copies, read_copy

    found: list[tuple[str, str]] = []
    for path in local_copies(journal_dir):
        try:
            journal = read_copy(path)
        except (OSError, ValueError, TypeError, RecursionError, BadInput):
            continue
        if journal.version == validate.UNKNOWN_VERSION or path.stem != journal.version:
            continue
        if is_in_progress(journal.facts):
            found.append((str(runbook.cutover_state(journal.facts).get("started_at")), journal.version))
    return max(found)[1] if found else None
