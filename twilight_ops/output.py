"""Console output and the one place where errors become exit codes.

rich is imported on first use, so `inv --list` does not pay for it.  Both consoles have
emoji off; text that is not the tool's own is printed with markup=False or as rich Text.
"""
from __future__ import annotations

import functools
import json
import re
import sys
from typing import Any, Callable, Iterable

from invoke.exceptions import Exit

from .errors import TwilightError


class _LazyConsole:
    """A rich Console made on first use (stdout or stderr)."""

    def __init__(self, stderr: bool):
        self._stderr = stderr
        self._console: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            self._console = make_console(stderr=self._stderr)
        return getattr(self._console, name)

    def print(self, *objects: Any, **kwargs: Any) -> None:
        """A plain line that carries a command to paste is never broken by rich (the terminal wraps
        it, and a copy stays one command): a line break in a pasted command runs half of it."""
        if len(objects) == 1 and isinstance(objects[0], str) and pasteable(objects[0]):
            kwargs.setdefault("soft_wrap", True)
        self.__getattr__("print")(*objects, **kwargs)


@functools.cache
def _command() -> re.Pattern[str]:
    """Compiled on first use (≈ 0.4 ms that `inv --list` need not pay)."""
    return re.compile(r"(^|[\s`'(])(inv (-f \S+ )?[a-z][\w.-]*|git (-C \S+ )?(push|tag|fetch|pull|checkout|switch|reset|revert|log|diff|show|status|ls-remote|stash))( |$)")


def pasteable(line: str) -> bool:
    """The line holds an `inv …` (or `git …`: the tag a rollback leaves) command for the operator to copy (pure)."""
    return bool(_command().search(line))


def make_console(*, stderr: bool = False, file: Any = None, width: int | None = None,
                 terminal: bool | None = None) -> Any:
    """The tool's rich Console.  On a terminal plain lines wrap at spaces (rich folds only a token longer
    than the width); in a log or a pipe they are never wrapped (soft wrap): the terminal or the file
    viewer shows them whole, never split mid-word.  emoji=False: rich would turn `:up:` in
    `deploy#1:up: ok` (a step name) into an emoji, even with markup=False."""
    from rich.console import Console

    con = Console(stderr=stderr, file=file, width=width, force_terminal=terminal, highlight=False, emoji=False)
    con.soft_wrap = not con.is_terminal
    return con


console: Any = _LazyConsole(stderr=False)
err_console: Any = _LazyConsole(stderr=True)


def progress_lines() -> Any:
    """A task's progress sink on stderr (screen.Lines): a wait is one line in place on a terminal, one
    line every 10 s in a log; use it as a context manager so the live line ends with the task."""
    from .screen import Lines

    return Lines(err_console)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
    sys.stdout.flush()


def dry_run(c: Any) -> bool:
    """Invoke's `--dry` (run.dry).  Invoke would answer every command with empty output, so a
    task that changes anything prints its plan instead and never runs a phase under it."""
    try:
        return bool(c.config.run.dry)
    except AttributeError:
        return False


def print_plan(title: str, steps: Iterable[str]) -> None:
    console.print(f"{title} (--dry: nothing is run, nothing connects):", markup=False)
    for n, step in enumerate(steps, 1):
        console.print(f"{n:>2}. {step}", markup=False, highlight=False)


def finish(results: Iterable[Any]) -> None:
    """End a task with the one reducer's exit code (results.exit_code over CheckResults)."""
    from .results import exit_code

    code = exit_code(results)
    if code:
        raise Exit(code=code)


def operation(fn: Callable) -> Callable:
    """Task body wrapper: expected failures → one line on stderr + exit code; no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TwilightError as e:
            from rich.markup import escape

            err_console.print(f"[bold red]error:[/] {escape(e.line())}", markup=True, highlight=False)
            raise Exit(code=e.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("interrupted: stopped cleanly; re-run the task to resume")
            raise Exit(code=130) from None

    return wrapper
