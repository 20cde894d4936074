"""How waits and long text look on the operator's screen (issue 21, items 2 and 7).

    Waiting(line)          a progress line of a wait (str): shown in place, not appended; Waiting("") ends the wait
    Lines(console)         the one sink for a task's progress lines (stderr): a wait is ONE line updated in
                           place on a terminal (rich status) and, in a log or a pipe, one line every 10 s
                           plus the last; any other line is printed as it comes and ends the wait
    table(title, columns, rows)  a rich Table that drops the columns empty in every row; a status column
                           never wraps, the others wrap at spaces (the widest, the evidence, gives way first)

rich is imported on first use (tasks import this module inside their bodies, `inv --list` stays fast).
Plain lines fold at spaces: the consoles (output.make_console) wrap at word boundaries on a terminal
and split only a token longer than the width; in a log they do not wrap at all.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Sequence


class Waiting(str):
    """A wait's progress line (`waiting for backend: running, health starting … 1.2s`).  Every sink
    takes it as a str; Lines shows it in place.  Waiting("") says the wait is over (nothing printed)."""


WAIT_OVER = Waiting("")

EVERY_S = 10.0      # in a log: at most one progress line this often


class Lines:
    """A task's progress sink: `say(line)` prints; `say(Waiting(line))` updates the wait's one line."""

    def __init__(self, console: Any, every_s: float = EVERY_S, clock: Callable[[], float] = time.monotonic):
        self.console = console
        self.every_s = every_s
        self.clock = clock
        self._status: Any = None
        self._pending = ""              # the last progress line a log has not seen yet
        self._printed_at: float | None = None

    def __call__(self, line: str) -> None:
        if isinstance(line, Waiting):
            if line:
                self.wait(line)
            else:
                self.settle()
            return
        self.settle()
        self._print(line)

    def wait(self, line: str) -> None:
        if self.console.is_terminal:
            from rich.text import Text

            from .sanitize import printable

            text = Text(printable(line))        # progress carries remote text (CI, compose): never markup
            if self._status is None:
                self._status = self.console.status(text)
                self._status.start()
            else:
                self._status.update(text)
            return
        now = self.clock()
        if self._printed_at is None or now - self._printed_at >= self.every_s:
            self._print(line)
            self._printed_at, self._pending = now, ""
        else:
            self._pending = line

    def settle(self) -> None:
        """The wait is over: the live line goes away; a log gets the last progress line it missed."""
        if self._status is not None:
            self._status.stop()
            self._status = None
        if self._pending:
            self._print(self._pending)
        self._pending, self._printed_at = "", None

    def heading(self, line: str) -> None:
        """A phase's heading: bold, on a line of its own (ends a wait like any plain line)."""
        from rich.text import Text

        self.settle()
        self.console.print(Text(line, style="bold"))

    def _print(self, line: str) -> None:
        self.console.print(line, markup=False, highlight=False)

    def __enter__(self) -> "Lines":
        return self

    def __exit__(self, *exc: object) -> None:
        self.settle()


@dataclasses.dataclass(frozen=True)
class Column:
    header: str
    no_wrap: bool = False       # a short word (a status): never wrapped, never shrunk
    justify: str = "left"
    max_width: int | None = None    # a label or a hint: wraps at spaces beyond this, so the evidence keeps the width


def table(title: Any, columns: Sequence[Column], rows: Sequence[Sequence[Any]], **options: Any) -> "Fitted":
    """A rich renderable table of `rows` (cells: str or rich Text).  A column empty in every row is left
    out.  At the console's width the labels and hints (max_width) and the statuses (no_wrap) take what
    they need, up to their cap, and the evidence (the other columns) the rest: it wraps at spaces; only
    a token longer than its column is folded."""
    from rich.text import Text

    def plain(cell: Any) -> str:
        return str(cell.plain if isinstance(cell, Text) else cell)

    keep = [i for i in range(len(columns)) if not rows or not all(not plain(r[i]).strip() for r in rows)]
    cols = [columns[i] for i in keep]
    cells = [[r[i] if isinstance(r[i], Text) else Text(str(r[i])) for i in keep] for r in rows]
    return Fitted(title, cols, cells, options)


@dataclasses.dataclass
class Fitted:
    """screen.table's result: the rich Table is built when the console's width is known."""
    title: Any
    columns: list[Column]
    rows: list[list[Any]]
    options: dict[str, Any]

    def widths(self, max_width: int) -> list[tuple[int | None, int | None]]:
        """Each column's (min, max) width at this console width (pure): a capped column (a label, a hint)
        takes at most its cap and a fifth of the width; the evidence columns share what is left."""
        def longest(i: int) -> int:
            return max([len(line) for r in self.rows for line in r[i].plain.splitlines()] + [len(self.columns[i].header)])

        def word(i: int) -> int:
            return max([len(w) for r in self.rows for w in r[i].plain.split()] + [len(self.columns[i].header)])

        fixed = {i: min(longest(i), c.max_width, max(word(i), max_width // 5)) if c.max_width else longest(i)
                 for i, c in enumerate(self.columns) if c.no_wrap or c.max_width}
        free = [i for i in range(len(self.columns)) if i not in fixed]
        left = max_width - sum(fixed.values()) - (3 * len(self.columns) + 1)       # padding and borders
        share = max(16, left // len(free)) if free else 0
        return [(None, fixed[i]) if i in fixed else (min(share, longest(i)), None) for i in range(len(self.columns))]

    def build(self, max_width: int) -> Any:
        from rich.table import Table

        tab = Table(title=self.title, title_justify="left", **self.options)
        for col, (least, most) in zip(self.columns, self.widths(max_width)):
            tab.add_column(col.header, no_wrap=col.no_wrap, overflow="ellipsis" if col.no_wrap else "fold",
                           justify=col.justify, min_width=least,   # type: ignore[arg-type]
                           max_width=None if col.no_wrap else most)
        for r in self.rows:
            tab.add_row(*r)
        return tab

    def __rich_console__(self, console: Any, options: Any) -> Any:
        yield self.build(options.max_width)
