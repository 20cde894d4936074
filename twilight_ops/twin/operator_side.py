"""The twin's operator side: the Hermes Agent stand-in and its HERMES_HOME.

    <twin>/operator/bin/hermes                    twilight_ops/twin/hermes/hermes.py, shebang = this Python
    <twin>/operator/hermes-home/standin.json      {"api_base", "token_file", "timeout_seconds"}
    <twin>/operator/hermes-home/.operator-token   the operator token (mode 600), read by the stand-in
    <twin>/operator/hermes-home/skills/           where install-skill.sh puts skills
    <twin>/operator/hermes-home/standin-faults.json   the Hermes fault, if any (set_hermes_fault)
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ..errors import BadInput
from ..secret import Secret
from .state import TwinState

SOURCE = Path(__file__).with_name("hermes") / "hermes.py"
HERMES_FAULTS = ("skill_missing", "legacy_prompt", "price_unavailable", "verbose_wording", "verbose_wrong_date",
                 "verbose_unavailable")
FAULT_FILE = "standin-faults.json"


def _write(path: Path, data: str, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def install_hermes(st: TwinState, api_base: str, token: Secret, python: str = sys.executable) -> Path:
    """Install (or refresh) the stand-in and its config; skills and the fault file are left alone."""
    for d in (st.hermes_bin_dir, st.hermes_home / "skills", st.hermes_home / "logs"):
        d.mkdir(parents=True, exist_ok=True)
    source = SOURCE.read_text(encoding="utf-8")
    binary = st.hermes_bin_dir / "hermes"
    _write(binary, f"#!{python}\n" + source, 0o755)
    token_file = st.hermes_home / ".operator-token"
    _write(token_file, token.reveal() + "\n", 0o600)
    config = {"api_base": api_base, "token_file": str(token_file), "timeout_seconds": 10}
    _write(st.hermes_home / "standin.json", json.dumps(config, indent=2) + "\n", 0o644)
    return binary


def set_hermes_fault(hermes_home: Path, name: str | None) -> None:
    """Switch the stand-in's fault on (`name`) or off (None); read on every hermes command."""
    path = hermes_home / FAULT_FILE
    if name is None:
        path.unlink(missing_ok=True)
        return
    if name not in HERMES_FAULTS:
        raise BadInput(f"hermes fault {name!r} is unknown", "known: " + ", ".join(HERMES_FAULTS))
    if not hermes_home.is_dir():
        raise BadInput(f"no Hermes home at {hermes_home}", "run `inv twin.up` first")
    _write(path, json.dumps({"fault": name}) + "\n", 0o644)
