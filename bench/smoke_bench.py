"""Smoke benchmark: `inv smoke --json` against the bare commands an operator would type: `ssh tvps
cat <token file>` + curl /price + `python -m json.tool` (issue 22: target ≤ 1.5×).

    .venv/bin/python bench/smoke_bench.py [--twin DIR] [--reps 7]

From a reset twin (v0.2.0 running); interleaved A/B, medians.  The token goes from ssh to curl on
a pipe (`curl -H @-`), never in argv.  Both sides' /price calls are recorded as the benchmark's
own (own_calls).  Writes bench/out/smoke.json; exit 3 when the ratio misses.
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import TWIN, inv, mark_own_traffic, now, ratio_report, reset, up  # noqa: E402

TARGET = 1.5


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--twin", type=Path, default=TWIN)
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()
    from twilight_ops.twin import build

    up(args.twin, 0)
    reset(args.twin)
    s = build.settings_for(args.twin / "invoke.yaml")
    bare = (f"ssh -F {shlex.quote(str(s.ssh_config))} tvps cat {shlex.quote(s.token_file)} "
            f"| sed 's/^/Authorization: Bearer /' | curl -sf -H @- {shlex.quote(s.api_base + '/price?code=' + s.smoke_code)} "
            f"| {shlex.quote(sys.executable)} -m json.tool >/dev/null")
    tool_s, bare_s = [], []
    mark_from = now(args.twin)
    for _ in range(args.reps):
        t0 = time.perf_counter()
        inv(args.twin, "smoke", "--json", "--expect", "legacy")     # v0.2.0 runs after the reset
        tool_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        subprocess.run(["bash", "-o", "pipefail", "-c", bare], check=True)
        bare_s.append(time.perf_counter() - t0)
    mark_own_traffic(args.twin, mark_from, now(args.twin), check="bench-smoke")
    return ratio_report("smoke", ("inv smoke --json", "ssh cat + curl + json"), tool_s, bare_s, TARGET)


if __name__ == "__main__":
    sys.exit(main())
