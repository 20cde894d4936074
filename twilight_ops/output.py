"""Console output and the one place where errors become exit codes."""
from __future__ import annotations

import functools
import json
import sys
from typing import Any, Callable

from invoke.exceptions import Exit
from rich.console import Console
from rich.markup import escape

from .errors import TwilightError

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
    sys.stdout.flush()


def operation(fn: Callable) -> Callable:
    """Task body wrapper: expected failures → one line on stderr + exit code; no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TwilightError as e:
            err_console.print(f"[bold red]error:[/] {escape(e.line())}", markup=True, highlight=False)
            raise Exit(code=e.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("interrupted: stopped cleanly; re-run the task to resume")
            raise Exit(code=130) from None

    return wrapper
