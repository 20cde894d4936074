"""Guard for Invoke's runtime config file (`inv -f FILE`, or INVOKE_RUNTIME_CONFIG).

Invoke skips a missing `-f` file without a word (the run then targets tvps on the
defaults) and answers a YAML error with its own traceback.  Invoke loads that file
only after it has imported the task collection, so `check_cli()` runs when the
collection is imported: it finds the path the same way Invoke will (its own core
argument parser, then the env var) and refuses a missing, unreadable or malformed
file with one line and exit 2, before anything connects.

    runtime_path(argv, environ) -> str | None     the file Invoke will load
    problem(path) -> str | None                   what is wrong with it, one line
    check_cli(argv=None, environ=None)            both, for the `inv` CLI: exit 2 on a problem
"""
from __future__ import annotations

import json
import os
import sys
from typing import Mapping, Sequence

import yaml

FIX = {
    "-f": "fix the file given to -f (e.g. -f .twin/invoke.yaml) or drop -f to target tvps on purpose",
    "INVOKE_RUNTIME_CONFIG": "fix the file INVOKE_RUNTIME_CONFIG names or unset it to target tvps on purpose",
}
_KIND = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}
_PROGRAMS = ("inv", "invoke")


def runtime_path(argv: Sequence[str], environ: Mapping[str, str]) -> tuple[str, str] | None:
    """(path, where it came from) of the runtime config Invoke will load for this argv, or None."""
    from invoke import Program
    from invoke.parser import Parser, ParserContext

    try:
        ctx = ParserContext(args=Program().core_args())
        parsed = Parser(initial=ctx, ignore_unknown=True).parse_argv(list(argv[1:]))
        value = parsed[0].args["config"].value
    except Exception:  # Invoke will report an unparsable command line itself
        value = None
    if value is not None:
        return value, "-f"
    env = environ.get("INVOKE_RUNTIME_CONFIG")
    return (env, "INVOKE_RUNTIME_CONFIG") if env else None


def problem(path: str, source: str = "-f") -> str | None:
    """One line naming what is wrong with the runtime config file, or None."""
    p = os.path.expanduser(path)
    if not os.path.exists(p):
        return f"config file {path!r} ({source}) does not exist"
    if not os.path.isfile(p):
        return f"config file {path!r} ({source}) is not a file"
    suffix = os.path.splitext(p)[1].lstrip(".")
    if suffix not in ("yaml", "yml", "json", "py"):
        return f"config file {path!r} ({source}) is not .yaml, .yml, .json or .py"
    try:
        with open(p, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as e:
        return f"config file {path!r} ({source}) cannot be read: {e.strerror or e}"
    except UnicodeDecodeError:
        return f"config file {path!r} ({source}) is not UTF-8 text"
    if suffix == "py":
        return None
    try:
        data = json.loads(text) if suffix == "json" else yaml.safe_load(text)
    except (yaml.YAMLError, ValueError, RecursionError) as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        return f"config file {path!r} ({source}) is not valid {suffix.upper()}{where}"
    if data is None:
        return None
    if not isinstance(data, dict):
        return f"config file {path!r} ({source}) holds {_KIND.get(type(data), type(data).__name__)}, not a mapping of settings"
    section = data.get("twilight")
    if section is not None and not isinstance(section, dict):
        return f"config file {path!r} ({source}): `twilight:` is {_KIND.get(type(section), type(section).__name__)}, not a mapping of settings"
    return None


def check_cli(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> None:
    """For the `inv` CLI only: refuse a bad runtime config with one line and exit 2."""
    argv = sys.argv if argv is None else argv
    environ = os.environ if environ is None else environ
    if not argv or not _is_invoke(argv[0]):
        return
    found = runtime_path(argv, environ)
    if found is None:
        return
    line = problem(*found)
    if line is not None:
        sys.stderr.write(f"error: {line} — {FIX[found[1]]}\n")
        sys.stderr.flush()
        raise SystemExit(2)


def _is_invoke(program: str) -> bool:
    base = os.path.basename(program)
    if base in _PROGRAMS:
        return True
    return base == "__main__.py" and os.path.basename(os.path.dirname(program)) == "invoke"
