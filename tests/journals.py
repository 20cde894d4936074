"""How tests read a run's journal: the local copy or the tvps mirror folded into one dict
(the shape the journal had when it was one JSON object: version, facts, steps …)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from twilight_ops.journal import read_copy


def local_path(settings: Any, version: str) -> Path:
    return settings.state_dir / "journals" / settings.host / f"{version}.jsonl"


def mirror_path(twin: Any, version: str) -> Path:
    return twin.remote_root / "cutover" / f"journal-{version}.jsonl"


def read(path: Path) -> dict:
    return read_copy(path).to_dict()


def local(settings: Any, version: str) -> dict:
    return read(local_path(settings, version))


def mirror(twin: Any, version: str) -> dict:
    return read(mirror_path(twin, version))
