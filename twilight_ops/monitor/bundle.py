"""Ship several real modules into `python3 -` as one script (pure).

A script sent on stdin to the backend container cannot import twilight_ops (it is not installed
there).  bundle() carries each module's own source as a string literal and a five-line loader
that registers it in sys.modules under its dotted name (parents as empty packages) before running
it, so the modules import each other with their ordinary absolute imports, exactly as they do
here under mypy and the tests; then the entry code runs.  Nothing is glued into another
module's text, and no value is formatted into code: sources and parameters travel as repr()
literals.
"""
from __future__ import annotations

from typing import Sequence

LOADER = '''import sys as _sys, types as _types
def _module(name, source):
    for i in range(1, name.count(".") + 1):
        _sys.modules.setdefault(name.rsplit(".", i)[0], _types.ModuleType(name.rsplit(".", i)[0])).__path__ = []
    mod = _sys.modules[name] = _types.ModuleType(name)
    mod.__file__ = "<bundled " + name + ">"
    exec(compile(source, mod.__file__, "exec"), mod.__dict__)
'''


def bundle(modules: Sequence[tuple[str, str]], entry: str) -> str:
    """The script: the loader, each (dotted name, source) in order (a module after those it imports), the entry."""
    return LOADER + "".join(f"_module({name!r}, {source!r})\n" for name, source in modules) + entry
