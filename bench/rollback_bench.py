"""Rollback benchmark: `inv rollback --yes` against a plain shell script that sends the same
remote commands over one OpenSSH ControlMaster connection, with the same waits (issue 22:
target ≤ 1.05×).

    .venv/bin/python bench/rollback_bench.py --twin /var/tmp/twilight-ops/bench [--reps 3]

Each rep, from the same starting point (twin.reset → preflight → deploy v0.3.0-w4-cutover,
untimed): (a) the tool, `inv rollback --version V --yes`, timed, with TWILIGHT_TRACE set so
it records every command and file operation it made; (b) the starting point again; (c) a
bash script generated from that trace, timed: each tvps command as `ssh -S ctl tvps <argv>`
(stdin from a file), sftp reads/writes/appends as `cat`, the health gate's repeated
`compose ps` as `until … grep healthy; do sleep 0.5; done` (the tool's poll), local commands
(git, install-skill.sh, hermes) as they ran, and the post-rollback /price call with curl.
The script opens its ControlMaster inside the timed part, as the tool opens its connection.
The script's own /price call is recorded as the benchmark's (own_calls), so the next start
point's preflight does not count it as client traffic (it did: "1 client /price call").
Prints both times and the ratio; writes bench/out/rollback.json.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
OUT = ROOT / "bench" / "out"
V = "v0.3.0-w4-cutover"
TARGET = 1.05     # issue 22 (issue 12 asked ≤ 1.15×)

MISSED = 3   # ran to the end, a figure missed its target (bench/run.py: reported, not a failure)


def inv(twin: Path, *args: str, cfg: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    argv = [str(Path(sys.executable).with_name("inv")), *(["-f", str(twin / "invoke.yaml")] if cfg else []), *args]
    r = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if r.returncode:
        raise SystemExit(f"{' '.join(args[:2])} failed: {r.stderr.strip()[-400:]}")
    return r


def start_point(twin: Path) -> None:
    inv(twin, "twin.reset", "--dir", str(twin), cfg=False)
    inv(twin, "preflight", "--version", V)
    inv(twin, "tag-push", "--version", V)
    inv(twin, "deploy", "--version", V, "--yes")


def is_poll(argv: list[str]) -> bool:
    return "compose" in argv and "ps" in argv and "--format" in argv


def is_health_watch(argv: list[str]) -> bool:
    from twilight_ops.builders.compose import HEALTH_WATCH

    return argv[:3] == ["sh", "-c", HEALTH_WATCH] and len(argv) == 6


def script_from_trace(trace: list[dict], ssh_config: str, ctl: str, blobs: Path, api_base: str, code: str,
                      service: str = "backend") -> str:
    ssh = f"ssh -F {shlex.quote(ssh_config)} -S {shlex.quote(ctl)} -o ControlMaster=auto -o ControlPersist=120 tvps"
    lines = ["#!/usr/bin/env bash", "set -euo pipefail", f"SSH=({ssh})", "TOK="]
    n = 0

    def blob(data: str | None) -> str:
        nonlocal n
        if not data:
            return "</dev/null"
        n += 1
        path = blobs / f"{n}.bin"
        path.write_bytes(base64.b64decode(data))
        return f"<{shlex.quote(str(path))}"

    i = 0
    compose_file = ""
    while i < len(trace):
        e = trace[i]
        if e["side"] == "tvps" and e["op"] == "run":
            argv = e["argv"]
            if argv[:3] == ["docker", "compose", "-f"]:
                compose_file = argv[3]
            if is_poll(argv) and i + 1 < len(trace) and trace[i + 1].get("argv") == argv:
                while i + 1 < len(trace) and trace[i + 1].get("argv") == argv:
                    i += 1                               # the tool's polls → one loop with the same wait
                remote = shlex.quote(shlex.join(argv))
                lines.append(f"until \"${{SSH[@]}}\" {remote} </dev/null | grep -q '\"Health\":\"healthy\"'; do sleep 0.5; done")
            elif is_health_watch(argv) and compose_file:
                # the tool's container is gone by now: the replay watches the container its own `up` made
                # (the same events-based command; before, it watched the recorded id, saw `gone` at once and
                # skipped the whole health wait, ≈ 2 s the script never waited)
                lookup = shlex.join(["docker", "compose", "-f", compose_file, "ps", "-q", service])
                lines.append(f"CID=$(\"${{SSH[@]}}\" {shlex.quote(lookup)} </dev/null)")
                remote = shlex.join(argv[:4])
                lines.append(f"\"${{SSH[@]}}\" {shlex.quote(remote)} \"$CID\" {shlex.quote(argv[5])} </dev/null >/dev/null || true")
            else:
                lines.append(f"\"${{SSH[@]}}\" {shlex.quote(shlex.join(argv))} {blob(e.get('stdin'))} >/dev/null || true")
        elif e["side"] == "tvps" and e["op"] == "read":
            if e["path"].endswith("operator-test"):
                lines.append(f"TOK=$(\"${{SSH[@]}}\" cat -- {shlex.quote(e['path'])} </dev/null)")
            else:
                lines.append(f"\"${{SSH[@]}}\" cat -- {shlex.quote(e['path'])} </dev/null >/dev/null 2>&1 || true")
        elif e["side"] == "tvps" and e["op"] in ("write", "append"):
            shell = 'cat > "$1.tmp" && mv "$1.tmp" "$1"' if e["op"] == "write" else 'cat >> "$1"'
            remote = shlex.join(["sh", "-c", shell, "sh", e["path"]])
            lines.append(f"\"${{SSH[@]}}\" {shlex.quote(remote)} {blob(e.get('data'))}")
        elif e["side"] == "local" and e["op"] == "run":
            env = " ".join(f"{k}={shlex.quote(v)}" for k, v in (e.get("env") or {}).items())
            cd = f"cd {shlex.quote(e['cwd'])} && " if e.get("cwd") else ""
            lines.append(f"( {cd}env {env} {shlex.join(e['argv'])} {blob(e.get('stdin'))} >/dev/null 2>&1 ) || true")
        i += 1
    lines.append(f"curl -s -H \"Authorization: Bearer $TOK\" {shlex.quote(api_base + '/price?code=' + code)} >/dev/null")
    lines.append('"${SSH[@]}" -O exit 2>/dev/null || true')
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--twin", type=Path, default=Path("/var/tmp/twilight-ops/bench"))
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    from twilight_ops.twin import build

    inv(args.twin, "twin.up", "--dir", str(args.twin), cfg=False)
    from twilight_ops.twin import ci_release
    from twilight_ops.twin.state import load_or_new

    ci_release.ensure_published(load_or_new(args.twin), V)     # published by the twin's CI
    settings = build.settings_for(args.twin / "invoke.yaml")
    tool_s, script_s = [], []
    try:
        for _ in range(args.reps):
            start_point(args.twin)
            with tempfile.TemporaryDirectory() as tmp:
                trace = Path(tmp) / "trace.jsonl"
                t0 = time.perf_counter()
                inv(args.twin, "rollback", "--version", V, "--yes", "--reason", "bench", env={"TWILIGHT_TRACE": str(trace)})
                tool_s.append(time.perf_counter() - t0)
                events = [json.loads(line) for line in trace.read_text().splitlines()]
                start_point(args.twin)
                blobs = Path(tmp) / "blobs"
                blobs.mkdir()
                script = Path(tmp) / "rollback.sh"
                script.write_text(script_from_trace(events, str(settings.ssh_config), str(Path(tmp) / "ctl"), blobs,
                                                    settings.api_base, settings.smoke_code))
                from common import mark_own_traffic, now

                mark_from = now(args.twin)
                t0 = time.perf_counter()
                r = subprocess.run(["bash", str(script)], capture_output=True, text=True)
                script_s.append(time.perf_counter() - t0)
                mark_own_traffic(args.twin, mark_from, now(args.twin), check="bench-replay")   # its curl /price
                if r.returncode:
                    raise SystemExit(f"the replay script failed: {r.stderr[-400:]}")
    finally:
        inv(args.twin, "twin.reset", "--dir", str(args.twin), cfg=False)
    tool, shell = statistics.median(tool_s), statistics.median(script_s)
    ratio = tool / shell
    print(f"inv rollback --yes      median {tool:.2f} s  ({', '.join(f'{x:.2f}' for x in tool_s)})")
    print(f"ControlMaster script    median {shell:.2f} s  ({', '.join(f'{x:.2f}' for x in script_s)})")
    print(f"ratio {ratio:.2f}× — target ≤ {TARGET}×: {'met' if ratio <= TARGET else 'NOT met'}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "rollback.json").write_text(json.dumps({"tool_s": tool_s, "script_s": script_s, "ratio": ratio}, indent=2) + "\n")
    return 0 if ratio <= TARGET else MISSED


if __name__ == "__main__":
    sys.exit(main())
