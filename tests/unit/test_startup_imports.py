"""Issue 22: what a start-up imports (behaviour, not timing).  The task modules import only what defines
the tasks (names, help, flags); fabric, paramiko, httpx, jsonschema, duckdb, rich and the phases are
imported in the task bodies that use them.  Each check runs in a fresh interpreter."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY = {"fabric", "paramiko", "httpx", "jsonschema", "duckdb", "rich"}
W4_OK = REPO / "tests" / "data" / "envelopes" / "w4_ok.json"

# the real `inv` program in this process, then the modules it left loaded (written to a file: stdout is the task's)
PROBE = """
import json, sys
from invoke.main import program
out, sys.argv = sys.argv[1], ["inv", *sys.argv[2:]]
code = 0
try:
    program.run(sys.argv)
except SystemExit as e:
    code = e.code or 0
with open(out, "w") as fh:
    json.dump({"code": code, "modules": sorted(sys.modules)}, fh)
"""


def loaded_by(code: str) -> list[str]:
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def inv_loads(tmp_path: Path, *args: str) -> tuple[int, list[str], str]:
    out = tmp_path / "modules.json"
    r = subprocess.run([sys.executable, "-c", PROBE, str(out), *args], cwd=REPO, capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL, env={**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")})
    assert out.exists(), r.stderr
    got = json.loads(out.read_text())
    return got["code"], got["modules"], r.stdout


def heavy(modules: list[str]) -> list[str]:
    return sorted({m.split(".")[0] for m in modules} & HEAVY)


def test_importing_the_tasks_imports_no_heavy_package():
    modules = loaded_by("import json, sys, twilight_ops.tasks; print(json.dumps(sorted(sys.modules)))")
    assert heavy(modules) == []
    assert not [m for m in modules if m.startswith("twilight_ops.phases")]
    # Invoke's defaults come from the generated literal, not from config.py's dataclasses
    assert "twilight_ops.config_defaults" in modules and "twilight_ops.config" not in modules


def test_inv_list_and_a_task_s_help_import_no_heavy_package(tmp_path):
    for args in (("--list",), ("--help", "smoke"), ("--help", "cutover")):
        code, modules, stdout = inv_loads(tmp_path, *args)
        assert code == 0 and stdout.strip(), args
        assert heavy(modules) == [], args
        assert "twilight_ops.config" not in modules, args


def test_smoke_json_does_not_import_rich(tmp_path):
    code, modules, stdout = inv_loads(tmp_path, "smoke", "--from-file", str(W4_OK), "--json")
    assert code == 0 and json.loads(stdout)["verdict"] == "green"
    assert "rich" not in heavy(modules)
    assert "jsonschema" in heavy(modules)             # the envelope was validated
    # the screen verdict is rich's
    code, modules, stdout = inv_loads(tmp_path, "smoke", "--from-file", str(W4_OK))
    assert code == 0 and "GREEN" in stdout
    assert "rich" in heavy(modules)


def test_the_envelope_module_imports_jsonschema_only_to_validate():
    modules = loaded_by("import json, sys; from twilight_ops import envelope; "
                        "assert envelope.classify_text('{\"value\": 1, \"metric\": \"close\"}') == 'legacy'; "
                        "print(json.dumps(sorted(sys.modules)))")
    assert "jsonschema" not in heavy(modules)
