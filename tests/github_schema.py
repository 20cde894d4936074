"""GitHub's published response schemas (tests/data/github, from @octokit/openapi) as JSON Schema.

    validate(path_template, body)   -> list of error lines ([] = the body fits the 200 response schema)
    example(name)                   -> one official example body (pull-request, pull-request-simple-items, …)

The description is OpenAPI 3.0: `nullable: true` beside a type (or an enum, or a lone
`$ref`/`allOf`) means null is allowed too.  `to_json_schema` rewrites exactly that, and
nothing else, so jsonschema's Draft 7 validator can check the bodies.
"""
from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data" / "github"

PULLS = "/repos/{owner}/{repo}/pulls"                  # an array of pull-request-simple
PULL = "/repos/{owner}/{repo}/pulls/{pull_number}"
CHECK_RUNS = "/repos/{owner}/{repo}/commits/{ref}/check-runs"
WORKFLOW_RUNS = "/repos/{owner}/{repo}/actions/runs"
WORKFLOW_RUN = "/repos/{owner}/{repo}/actions/runs/{run_id}"


def to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema → JSON Schema: `nullable: true` becomes an allowed null."""
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True:
        if "type" in out:
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = [*types, "null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [{"type": "null"}, out]}
    return out


@lru_cache(maxsize=1)
def _document() -> dict:
    return json.loads((DATA / "openapi-trimmed.json").read_text())


@lru_cache(maxsize=8)
def _validator(path_template: str):
    import jsonschema

    doc = _document()
    root = {"components": to_json_schema(doc["components"]),
            **to_json_schema(copy.deepcopy(doc["responses"][path_template]["schema"]))}
    jsonschema.Draft7Validator.check_schema(root)
    return jsonschema.Draft7Validator(root)


def validate(path_template: str, body: Any) -> list[str]:
    errors = sorted(_validator(path_template).iter_errors(body), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message[:200]}" for e in errors]


def example(name: str) -> Any:
    return copy.deepcopy(json.loads((DATA / "examples.json").read_text())["examples"][name]["value"])
