"""install-skill.sh and the Hermes Agent CLI on the operator's machine."""
from __future__ import annotations

from typing import Sequence


def install_skill(script: str = "scripts/install-skill.sh") -> list[str]:
    """`bash scripts/install-skill.sh`, run in the local twilight-drive repo."""
    return ["bash", script]


def skills_list(hermes: Sequence[str] = ("hermes",)) -> list[str]:
    return [*hermes, "skills", "list"]


def chat(prompt: str, hermes: Sequence[str] = ("hermes",), skill: str | None = None) -> list[str]:
    """`hermes chat [-s SKILL] -Q -q PROMPT`: one prompt, answered without interaction, the answer alone."""
    return [*hermes, "chat", *(["-s", skill] if skill else []), "-Q", "-q", prompt]


def restart(command: Sequence[str]) -> list[str]:
    """The configured restart command (runbook T+00:25: "or whatever the operator's actual restart command is")."""
    return list(command)


def gateway_status(hermes: Sequence[str] = ("hermes",)) -> list[str]:
    """`hermes gateway status`: is a messaging gateway running, as a service or in the foreground."""
    return [*hermes, "gateway", "status"]


def gateway_restart(hermes: Sequence[str] = ("hermes",)) -> list[str]:
    """`hermes gateway restart`: restarts an installed gateway service (with none installed it would
    run the gateway in the foreground and never return: only used when a service is installed)."""
    return [*hermes, "gateway", "restart"]


PROMPT = "{prompt}"


def agent_chat(template: Sequence[str], prompt: str) -> list[str]:
    """The configured agent command with the prompt as (part of) one argument, never shell text.

    Only the literal `{prompt}` is replaced (no str.format: braces in the rest stay as they are)."""
    return [arg.replace(PROMPT, prompt) if PROMPT in arg else arg for arg in template]


def hermes_env(home: str | None, path_dirs: Sequence[str], inherited_path: str) -> dict[str, str]:
    """Env for Hermes commands: HERMES_HOME when configured, PATH with the configured dirs first.
    Never a secret (the agent reads its own credentials)."""
    env: dict[str, str] = {}
    if home:
        env["HERMES_HOME"] = home
    if path_dirs:
        env["PATH"] = ":".join([*path_dirs, *([inherited_path] if inherited_path else [])])
    return env
