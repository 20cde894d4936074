"""The one plan a changing task shows before its first change, and the answer it asks for (pure).

    ChangePlan(action, target, running, version, commit, tags_on_commit, warnings).lines()
    naming_warning(version, tags_on_commit, known) -> str | None
    answer_problem(typed, version) -> str | None
    nothing_to_roll_back(...) -> str | None

`inv cutover`, `inv deploy` and `inv tag-push` print the plan and ask the operator to type the
version back (issue 21 item 1): a typo in the version then stops at the question, not at GO.
A version that is not a tag on the commit it will tag and does not follow the release naming
(vX.Y.Z, or vX.Y.Z-wN-name as v0.3.0-w4-cutover, and not a near miss of a release the project
names) gets a warning line in the plan.
"""
from __future__ import annotations

import dataclasses
import difflib
import re
from typing import Iterable

# The release names of the runbook: v0.2.0, v0.3.0-w4-cutover (a milestone wN and a word or two).
RELEASE_NAME = re.compile(r"v\d+\.\d+\.\d+(?:-w\d+(?:-[a-z]+)+)?")
NEAR_MISS = 0.8          # difflib ratio above which a different name reads as a typo of a known one


@dataclasses.dataclass(frozen=True)
class ChangePlan:
    action: str                  # "cutover" | "deploy" | "tag-push"
    target: str                  # tvps = user@host:port
    running: str                 # what tvps runs now ("v0.2.0 (sha256:…)"), or why it is not known
    version: str
    commit: str                  # the commit it will tag / whose tag it deploys ("" when not known)
    commit_why: str = ""         # where the commit comes from (the journal's cutover commit, origin/main, the tag)
    warnings: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        """The plan as plain lines (no markup): what will change, where, from what to what."""
        what = {"cutover": "tag, push, deploy and cut over", "deploy": "deploy", "tag-push": "tag and push"}
        at = f"{self.commit[:12]} ({self.commit_why})" if self.commit else f"not known yet ({self.commit_why or 'no commit'})"
        out = [f"plan: {self.action} {self.version}",
               f"  target    {self.target}",
               f"  runs now  {self.running}",
               f"  version   {self.version}: will {what.get(self.action, self.action)}",
               f"  commit    {at}"]
        out += [f"  warning   {w}" for w in self.warnings]
        return out


def naming_warning(version: str, tags_on_commit: Iterable[str], known: Iterable[str]) -> str | None:
    """A warning line when `version` is neither a tag on the commit nor a well-formed release name
    (the pattern, and no near miss of a release the project names: a typo); None otherwise (pure)."""
    if version in set(tags_on_commit):
        return None
    names = sorted({k for k in known if k and k != version and "-" in k})    # the milestone names, not plain vX.Y.Z
    close = difflib.get_close_matches(version, names, n=1, cutoff=NEAR_MISS)
    if close:
        return (f"{version} is not a tag on that commit and is one typo away from {close[0]}: "
                f"check the spelling (the runbook's release is {close[0]})")
    if not RELEASE_NAME.fullmatch(version):
        return (f"{version} is not a tag on that commit and does not follow the release naming "
                "(vX.Y.Z or vX.Y.Z-wN-name, e.g. v0.3.0-w4-cutover)")
    return None


def question(version: str) -> str:
    """The prompt: the version typed back (ends like every confirmation: 'to go on: ')."""
    return f"type the version ({version}) to go on: "


def answer_problem(typed: str | None, version: str) -> str | None:
    """None when the operator typed the version back; else what was wrong, one line (pure)."""
    if typed is None:
        return "no answer (end of input)"
    got = typed.strip()
    if got == version:
        return None
    if not got:
        return "nothing typed"
    return f"typed {got!r}, not {version}"


def nothing_to_roll_back(*, version: str, running_version: str | None, running_digest: str | None,
                         pre_digest: str | None, previous_version: str, deployed: bool, to_given: bool) -> str | None:
    """The line for a rollback that has nothing to undo (None: go on with the rollback) (pure).

    Nothing to undo when no --to was given, no deploy of `version` was attempted, and tvps runs the
    pre-cutover release: the journal's T+00:00 digest, or (without a journal) the configured
    previous release."""
    if to_given or deployed or not running_version:
        return None
    digest = (pre_digest or "").rpartition("@")[2]
    at_t0 = bool(digest) and (running_digest or "").rpartition("@")[2] == digest
    if at_t0 or (not pre_digest and running_version == previous_version):
        return f"nothing to roll back: tvps runs {running_version}, the pre-cutover release"
    return None
