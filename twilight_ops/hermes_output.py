"""What the real Hermes Agent CLI (0.19) prints, read by pure parsers (docs/agent.md).

    skill_rows(text)          `hermes skills list`: the table's rows as {column: cell}
    skill_state(text, name)   "enabled" | "disabled" | other Status | "listed" (no Status column) | None
    gateway_state(text)       `hermes gateway status`: "none" | "manual" | "service"
    front_matter(text)        a SKILL.md's front matter, read the way Hermes reads it
    front_matter_problem(text, name)   why Hermes would not know the skill by `name`, or None
    agent_failure(answer)     the line of an answer that is Hermes reporting its own failure, or None

Captured real output lives in tests/data/captured/hermes-*.txt.
"""
from __future__ import annotations

import re
from typing import Any

_TABLE_SPLIT = re.compile(r"\s*[│┃|]\s*")

# Hermes 0.19 puts these in place of an answer when the model or provider failed
# (agent/conversation_loop.py, agent/chat_completion_helpers.py) and still exits 0.
FAILURE_PREFIXES = (
    "API call failed after",
    "Invalid API response after",
    "Billing or credits exhausted",
    "Request payload too large",
    "Context length exceeded",
    "Model generated invalid tool call",
    "I reached the iteration limit",
    "I reached the maximum iterations",
    "I apologize, but I encountered an error while processing the model response",
    "I apologize, but I encountered repeated errors",
    "Operation interrupted: waiting for model response",
)


def _cells(line: str) -> list[str]:
    inner = line.strip().strip("│┃|").strip()
    return [c.strip() for c in _TABLE_SPLIT.split(inner)]


def skill_rows(text: str) -> list[dict[str, str]]:
    """Rows of the `skills list` table (rich box drawing: a `┃ Name ┃ … ┃ Status ┃` header,
    `│ cell │ … │` rows). Plain `name  description` lines (no table) give {"Name": first word}."""
    header: list[str] | None = None
    rows: list[dict[str, str]] = []
    for line in text.splitlines():
        s = line.strip()
        if not s:
            continue
        if header is None and s.startswith(("┃", "|")) and "Name" in s:
            header = _cells(s)
            continue
        if header is not None and s.startswith(("│", "|")):
            cells = _cells(s)
            if len(cells) == len(header) and any(cells):
                rows.append(dict(zip(header, cells)))
    if header is None:     # no header: a frameless `name  description` list, or rows alone
        for line in text.splitlines():
            s = line.strip()
            first = _cells(s)[0] if s.startswith(("│", "|")) else (line.split() or [""])[0]
            if first and not line.startswith((" ", "\t")) and re.fullmatch(r"[\w.-]+", first):
                rows.append({"Name": first})
    return rows


def skill_state(text: str, name: str) -> str | None:
    """The Status of skill `name` in `skills list` ("enabled", "disabled", …), "listed" when the
    output has no Status column, None when it is not listed."""
    for row in skill_rows(text):
        if row.get("Name") == name:
            status = row.get("Status")
            return status.lower() if status else "listed"
    return None


def gateway_state(text: str) -> str:
    """`hermes gateway status`: "none" (no gateway runs, no service installed), "manual" (a
    foreground gateway, not a service), else "service" (a systemd/launchd/Windows service)."""
    if "Running manually" in text:
        return "manual"
    if "Gateway is not running" in text:
        return "none"
    return "service"


def gateway_pids(text: str) -> list[int]:
    m = re.search(r"Gateway is running \(PID: ([\d, ]+)\)", text)
    return [int(p) for p in re.findall(r"\d+", m.group(1))] if m else []


def front_matter(text: str) -> dict[str, Any] | None:
    """The front matter as Hermes 0.19 reads it (agent/skill_utils.parse_frontmatter): a leading
    BOM dropped, a `---` fence, YAML up to the next `---` line; None when there is none."""
    import yaml

    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.startswith("---"):
        return None
    end = re.search(r"\n---\s*\n", text[3:])
    if not end:
        return None
    block = text[3:end.start() + 3]
    try:
        parsed = yaml.safe_load(block)
    except yaml.YAMLError:
        parsed = None
    if isinstance(parsed, dict):
        return parsed
    out: dict[str, Any] = {}
    for line in block.strip().split("\n"):       # Hermes' own fallback for malformed YAML
        if ":" in line:
            key, value = line.split(":", 1)
            out[key.strip()] = value.strip()
    return out


def front_matter_problem(text: str, name: str) -> str | None:
    """Why Hermes would list the skill only under its folder name, or without a description."""
    meta = front_matter(text)
    if meta is None:
        return "SKILL.md has no front matter (a leading --- block with name and description)"
    problems = []
    if str(meta.get("name", "")).strip() != name:
        problems.append(f"its name is {meta.get('name')!r}, not {name!r}" if meta.get("name") else "it has no name")
    if not str(meta.get("description", "")).strip():
        problems.append("it has no description")
    return ("SKILL.md front matter: " + "; ".join(problems)) if problems else None


def agent_failure(answer: str) -> str | None:
    """The line where Hermes reports that it could not answer (model/provider error), or None.
    `(empty)` alone is Hermes' own placeholder for an empty answer."""
    stripped = answer.strip()
    if not stripped or stripped == "(empty)":
        return stripped or "(no answer)"
    for line in stripped.splitlines():
        if line.strip().startswith(FAILURE_PREFIXES):
            return line.strip()[:300]
    return None
