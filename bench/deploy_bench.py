"""Deploy health-gate benchmark: from the container turning healthy to `inv deploy` noticing it.

    .venv/bin/python bench/deploy_bench.py --twin /var/tmp/twilight-ops/bench [--reps 5]

Target (issue 22): ≤ 0.1 s (issue 10 asked ≤ 1 s).  Needs root (it brings up its own twin there).  Each round:
v0.2.0 running and no cutover state (twin.reset), preflight, then `inv deploy` of
v0.3.0-w4-cutover; the latency is the deploy's `noticed_healthy_at` (journal, health-gate
step) minus the End time of the first passing probe in the container's healthcheck log
(`docker inspect` State.Health.Log).  Prints min / median / max, the time and the load average;
writes bench/out/deploy.json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out"
V = "v0.3.0-w4-cutover"
TARGET_S = 0.1     # issue 22 (issue 10 asked ≤ 1 s)

MISSED = 3   # ran to the end, a figure missed its target (bench/run.py: reported, not a failure)


def inv(twin: Path, *args: str, cfg: bool = True) -> subprocess.CompletedProcess:
    argv = [str(Path(sys.executable).with_name("inv")), *(["-f", str(twin / "invoke.yaml")] if cfg else []), *args]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=dict(os.environ))



def first_pass(health_log: list[dict], after: dt.datetime) -> dt.datetime | None:
    for entry in health_log:
        end = dt.datetime.fromisoformat(entry["End"][:26] + "+00:00")
        if entry.get("ExitCode") == 0 and end >= after:
            return end
    return None


def round_once(twin: Path) -> float:
    from twilight_ops import facts
    from twilight_ops.builders import compose as compose_cmd
    from twilight_ops.builders.layout import layout
    from twilight_ops.remote import SSHExecutor
    from twilight_ops.twin import build

    for argv in (("twin.reset", "--dir", str(twin)),):
        r = inv(twin, *argv, cfg=False)
        assert r.returncode == 0, r.stderr
    r = inv(twin, "preflight", "--version", V, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    r = inv(twin, "tag-push", "--version", V)          # the twin's CI publishes the image
    assert r.returncode == 0, r.stdout + r.stderr
    started = dt.datetime.now(dt.timezone.utc)
    r = inv(twin, "deploy", "--version", V, "--yes", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    settings = build.settings_for(twin / "invoke.yaml")
    from twilight_ops.journal import read_copy

    journal = read_copy(settings.state_dir / "journals" / settings.host / f"{V}.jsonl").to_dict()
    gate = [s for s in journal["steps"] if s["name"].endswith(":health-gate")][-1]
    noticed = dt.datetime.fromisoformat(gate["evidence"]["noticed_healthy_at"])
    with SSHExecutor(settings) as ex:
        lay = layout(settings, ex.home)
        ps = [s for s in facts.parse_compose_ps(ex.run(compose_cmd.compose_ps(lay)).stdout) if s.service == lay.service]
        doc = json.loads(ex.run(compose_cmd.docker_inspect([ps[0].container_id])).stdout)[0]
    healthy = first_pass(doc["State"]["Health"]["Log"], started)
    assert healthy is not None, "no passing probe after the deploy started"
    return (noticed - healthy).total_seconds()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--twin", type=Path, default=Path("/var/tmp/twilight-ops/bench"))
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    up = inv(args.twin, "twin.up", "--dir", str(args.twin), cfg=False)
    if up.returncode:
        print(up.stderr, file=sys.stderr)
        return 2
    from twilight_ops.twin import ci_release
    from twilight_ops.twin.state import load_or_new

    ci_release.ensure_published(load_or_new(args.twin), V)     # published by the twin's CI
    try:
        xs = [round_once(args.twin) for _ in range(args.reps)]
    finally:
        inv(args.twin, "twin.reset", "--dir", str(args.twin), cfg=False)
    med = statistics.median(xs)
    load = os.getloadavg()
    when = dt.datetime.now(dt.timezone.utc).isoformat(timespec="minutes")
    print(f"healthy → deploy noticed: min {min(xs):.3f} s  median {med:.3f} s  max {max(xs):.3f} s  ({len(xs)} deploys)")
    print(f"at {when}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"target: ≤ {TARGET_S} s — {'met' if max(xs) <= TARGET_S else 'NOT met'}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "deploy.json").write_text(json.dumps({"latency_s": xs, "median_s": med, "at": when, "loadavg": load}, indent=2) + "\n")
    return 0 if max(xs) <= TARGET_S else MISSED


if __name__ == "__main__":
    sys.exit(main())
