"""Build the monitoring probe script, and run it on a local DuckDB file.

`build_probe_script(params)` is pure: probe.py's text with its PARAMS line
replaced by `PARAMS = json.loads('<json>')` — the parameters travel as one
Python string literal (repr of ASCII JSON), so no value is ever formatted into
code or SQL. The remote wiring (phases/monitor.py) sends the result on stdin:

    argv  = ("docker", "compose", "-f", compose_file, "exec", "-T", service, "python3", "-")
    res   = t.ssh.run(argv, stdin=build_probe_script(params), check=False)
    m     = interpret(res)                        # Metrics, or a domain error

`run_local()` runs the very same probe code for `--db FILE` in this process (probe.main on a thread,
its query interrupted past the timeout): no new interpreter and no new `import duckdb` per round.
"""
from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import functools
import io
import json
import posixpath
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence

from .. import validate
from ..errors import BadInput, CheckFailed
from .metrics import parse_probe_json

PARAMS_MARKER = 'PARAMS: "dict[str, Any] | None" = None  # @@PARAMS@@ replaced by build_probe_script()'
PROBE_FILE = Path(__file__).with_name("probe.py")


@dataclasses.dataclass(frozen=True)
class ProbeParams:
    db_path: str                      # absolute path as the probe's process sees it
    hours: float
    now_utc: dt.datetime              # aware; the caller's clock (twilight_ops.clock.now_utc)
    copy_dir: str | None = None       # where a locked file is copied; None = the temp dir there
    local: bool = False               # read_via "local-file" instead of "direct"
    liquid_codes: tuple[str, ...] = ()
    copy_attempts: int = 5
    copy_backoff_s: float = 0.05
    top_n: int = 50
    rows_limit: int = 0               # > 0: also the newest rows_limit (ts, ts_code) pairs of the window
    own: tuple[dict[str, Any], ...] = ()   # the tool's own calls (own_calls.to_wire): left out of the metrics

    def to_wire(self) -> dict[str, Any]:
        """Validated JSON-ready parameters (BadInput on anything wrong)."""
        hours = validate.hours(self.hours)
        if not isinstance(self.now_utc, dt.datetime) or self.now_utc.utcoffset() is None:
            raise BadInput(f"now_utc {self.now_utc!r} has no UTC offset", "pass an aware datetime, e.g. clock.now_utc()")
        for what, path in (("db path", self.db_path), ("copy dir", self.copy_dir)):
            if path is not None and (not isinstance(path, str) or not posixpath.isabs(path) or "\x00" in path):
                raise BadInput(f"{what} {path!r} is not an absolute path", "give the path as the probe's process sees it")
        codes = [validate.ts_code(c, "liquid code") for c in self.liquid_codes]
        return {
            "db_path": self.db_path,
            "hours": hours,
            "now_utc": self.now_utc.astimezone(dt.timezone.utc).isoformat(timespec="microseconds"),
            "copy_dir": self.copy_dir,
            "local": bool(self.local),
            "liquid_codes": codes,
            "copy_attempts": validate.positive_int(self.copy_attempts, "copy_attempts", 20),
            "copy_backoff_s": float(self.copy_backoff_s),
            "top_n": validate.positive_int(self.top_n, "top_n", 1000),
            "rows_limit": 0 if not self.rows_limit else validate.positive_int(self.rows_limit, "rows_limit", 10_000),
            **({"own": [dict(c) for c in self.own]} if self.own else {}),
        }


UNBOUND = "PARAMS = None"


@functools.lru_cache(maxsize=2)
def probe_source(compact: bool) -> str:
    """probe.py with its PARAMS line as `PARAMS = None` (exactly once).

    compact: docstrings and comments dropped (ast round trip) — half the bytes
    sent per round; the code itself is unchanged.
    """
    text = PROBE_FILE.read_text(encoding="utf-8")
    if text.count(PARAMS_MARKER) != 1:
        raise RuntimeError(f"{PROBE_FILE} must contain the PARAMS marker line exactly once")
    text = text.replace(PARAMS_MARKER, UNBOUND)
    if compact:
        text = _strip_docstrings(text)
    if sum(line == UNBOUND for line in text.splitlines()) != 1:
        raise RuntimeError(f"{PROBE_FILE}: cannot find the PARAMS line after compaction")
    return text


def _strip_docstrings(source: str) -> str:
    """The source without docstrings and comments (an ast round trip, ≈ 25 ms a file).  The result is
    kept in the user's cache under the hash of the source and this Python's version, so a run builds
    it once per change of the probe, not once per process (issue 22: `inv monitor`'s own cost)."""
    import hashlib
    import os

    key = hashlib.sha256(f"{sys.version_info[:2]}\0{source}".encode("utf-8")).hexdigest()[:32]
    kept = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "twilight-ops" / "probe" / f"{key}.py"
    try:
        return kept.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        pass
    text = _compacted(source)
    try:
        kept.parent.mkdir(parents=True, exist_ok=True)
        tmp = kept.with_name(f".{kept.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, kept)
    except OSError:
        pass                                    # a read-only home: compacted again next time
    return text


def _compacted(source: str) -> str:
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree) + "\n"


PROBE_MODULE = "twilight_ops.monitor.probe"
OWN_CALLS_FILE = Path(__file__).parent.parent / "own_calls.py"


def build_probe_script(params: ProbeParams, *, compact: bool = True) -> str:
    """probe.py with PARAMS bound; the exact text sent to `python3 -`.  With own calls to leave out,
    own_calls.py travels with it (bundle.py: both registered under their dotted names, then the
    probe's main runs), so the probe matches rows by the very rule preflight uses."""
    wire = json.dumps(params.to_wire(), sort_keys=True, ensure_ascii=True, allow_nan=False)
    lines = probe_source(compact).splitlines(keepends=True)
    text = "".join(f"PARAMS = json.loads({wire!r})\n" if line.rstrip("\n") == UNBOUND else line for line in lines)
    if not params.own:
        return text
    from .bundle import bundle

    own_src = OWN_CALLS_FILE.read_text(encoding="utf-8")
    own_src = _strip_docstrings(own_src) if compact else own_src
    entry = f"_sys.exit(_sys.modules[{PROBE_MODULE!r}].main(_sys.modules[{PROBE_MODULE!r}].PARAMS))\n"
    return bundle([("twilight_ops.own_calls", own_src), (PROBE_MODULE, text)], entry)


# ---------------------------------------------------------------- kept on tvps (issue 22)
#
# The probe with own_calls.py is ≈ 20-35 KB; sent every round it was most of a monitor round's bytes.
# cached_body() is that bundle without its parameters, kept on tvps under its content hash
# (Layout.probe_path); a round sends only tail_line(params) on stdin, and tvps runs
# `cat BODY - | docker compose exec -T backend python3 -` once sha256sum has checked BODY
# (builders/compose.compose_exec_cached_python; phases/monitor.run_probe uploads it when absent).


@functools.lru_cache(maxsize=1)
def cached_body() -> str:
    """The probe and own_calls.py as one bundle, PARAMS unbound: run by the tail line that follows it."""
    from .bundle import bundle

    own_src = _strip_docstrings(OWN_CALLS_FILE.read_text(encoding="utf-8"))
    return bundle([("twilight_ops.own_calls", own_src), (PROBE_MODULE, probe_source(True))], "")


@functools.lru_cache(maxsize=1)
def body_sha256() -> str:
    import hashlib

    return hashlib.sha256(cached_body().encode("utf-8")).hexdigest()


def tail_line(params: ProbeParams) -> str:
    """The one line a round sends after the kept body: the probe's main on these parameters (a repr()
    literal of ASCII JSON, as in build_probe_script: no value is formatted into code)."""
    wire = json.dumps(params.to_wire(), sort_keys=True, ensure_ascii=True, allow_nan=False)
    return (f"_sys.exit(_sys.modules[{PROBE_MODULE!r}].main(__import__('json').loads({wire!r})))\n")


def run_local(
    db_path: str | Path,
    hours: float,
    now: dt.datetime,
    *,
    liquid_codes: Sequence[str] = (),
    copy_dir: str | None = None,
    timeout_s: float = 600.0,
    rows_limit: int = 0,
) -> dict[str, Any]:
    """Run the probe on a local DuckDB file in this process (run_in_process); its JSON as a dict.

    Raises the probe's domain error (BadInput / Unreachable / CheckFailed).
    """
    params = ProbeParams(
        db_path=str(Path(db_path).expanduser().absolute()),
        hours=hours,
        now_utc=now,
        copy_dir=copy_dir,
        local=True,
        liquid_codes=tuple(liquid_codes),
        rows_limit=rows_limit,
    )
    out, exited = run_in_process(params.to_wire(), timeout_s, str(db_path))
    return parse_probe_json(out, exited=exited, stderr="")


def run_in_process(wire: dict[str, Any], timeout_s: float, what: str, out: io.StringIO | None = None) -> tuple[str, int]:
    """probe.main in this process, on a thread of its own: (its one JSON line, its exit code).  The
    same code tvps runs from stdin, without a new interpreter and a new `import duckdb` each round
    (≈ 0.1 s; issue 22).  Past timeout_s, or on Ctrl-C, the query is interrupted (DuckDB's
    interrupt()) and CheckFailed says so; the thread gets 5 s to wind down."""
    from . import probe

    buf = out if out is not None else io.StringIO()     # `out`: where a test reads what an interrupted probe said
    opened: list[Any] = []
    stop = threading.Event()
    exit_code: list[int] = []

    def on_connect(con: Any) -> None:
        opened.append(con)
        if stop.is_set():           # opened after the timeout: no query on it
            raise probe.ProbeError("interrupted", f"stopped after {timeout_s:g} s", probe.EXIT_UNREADABLE)

    worker = threading.Thread(target=lambda: exit_code.append(probe.main(wire, out=buf, on_connect=on_connect)),
                              name="twilight-probe", daemon=True)
    worker.start()
    try:
        worker.join(timeout_s)
    except BaseException:
        _interrupt(stop, opened, worker)
        raise
    if worker.is_alive():
        _interrupt(stop, opened, worker)
        raise CheckFailed(f"the monitor probe ran longer than {timeout_s:g} s on {what}", "try a shorter --hours")
    return buf.getvalue(), exit_code[0] if exit_code else probe.EXIT_INTERNAL


def _interrupt(stop: threading.Event, opened: list[Any], worker: threading.Thread, wind_down_s: float = 5.0) -> None:
    """Stop the probe's query: interrupt() its connections until the thread ends (a query that had not
    started when one interrupt came is stopped by the next), wind_down_s at most."""
    stop.set()
    deadline = time.monotonic() + wind_down_s
    while worker.is_alive() and time.monotonic() < deadline:
        for con in list(opened):
            try:
                con.interrupt()
            except Exception:       # closed already
                pass
        worker.join(0.05)
