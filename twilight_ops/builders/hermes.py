"""install-skill.sh and the Hermes Agent CLI on the operator's machine."""
from __future__ import annotations

from typing import Sequence


def install_skill(script: str = "scripts/install-skill.sh") -> list[str]:
    """`bash scripts/install-skill.sh`, run in the local twilight-drive repo."""
    return ["bash", script]


def skills_list(hermes: Sequence[str] = ("hermes",)) -> list[str]:
    return [*hermes, "skills", "list"]


def chat(prompt: str, hermes: Sequence[str] = ("hermes",), skill: str | None = None) -> list[str]:
    """`hermes chat [-s SKILL] -q PROMPT`: one prompt, answered without interaction."""
    return [*hermes, "chat", *(["-s", skill] if skill else []), "-q", prompt]
