"""The one way a task asks the operator before a change (stdin, a terminal only).

    ask(prompt) -> str | None                 one line typed, None at end of input
    interactive() -> bool                     stdin is a terminal
    yes(question, given)                      "type 'yes'": BadInput (exit 2, nothing changed) otherwise
    version_back(lines, version, given, say, when_not_a_terminal)   the plan, then the version typed back

A question is never asked without a terminal: a run in CI or a script either refuses (deploy,
rollback: exit 2, "re-run with --yes") or goes on as it did before the question existed
(`inv tag-push`; `inv cutover`, whose decision waits for confirmation anyway).
"""
from __future__ import annotations

import sys
from typing import Callable

from .change_plan import answer_problem, question
from .errors import BadInput

REFUSE, GO_ON = "refuse", "go-on"


def interactive() -> bool:
    return sys.stdin.isatty()


def ask(prompt: str) -> str | None:
    try:
        return input(prompt)
    except EOFError:
        return None


def yes(what: str, given: bool) -> None:
    """'type yes to go on' before `what`; --yes skips it; no terminal: refused."""
    if given:
        return
    if not interactive():
        raise BadInput(f"refusing to {what} without confirmation", "re-run with --yes")
    if (ask(f"{what}? type 'yes' to go on: ") or "").strip() != "yes":
        raise BadInput("not confirmed; nothing changed", "re-run and type yes, or pass --yes")


def version_back(lines: list[str], version: str, given: bool, say: Callable[[str], None],
                 when_not_a_terminal: str = REFUSE) -> str:
    """Show the plan; on a terminal ask for the version typed back.  Returns how it was confirmed
    ('--yes', 'typed the version', 'no terminal'); BadInput (exit 2, nothing changed) when refused."""
    for line in lines:
        say(line)
    if given:
        return "--yes"
    if not interactive():
        if when_not_a_terminal == GO_ON:
            return "no terminal"
        raise BadInput(f"refusing to change tvps for {version} without confirmation (no terminal to ask on)",
                       "re-run with --yes")
    problem = answer_problem(ask(question(version)), version)
    if problem:
        raise BadInput(f"not confirmed: {problem}; nothing changed",
                       f"re-run and type {version} exactly, or fix --version")
    return "typed the version"
