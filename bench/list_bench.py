"""`inv --list` start-up benchmark (issue 7's target: median ≤ 0.2 s on this machine).

    .venv/bin/python bench/list_bench.py [--reps N] [--repo DIR]

Runs the real `inv --list` N times in DIR (default: this checkout) and, as the floor,
`python -c 'import invoke'`; prints min / median / max and writes bench/out/list.json.
Point --repo at another checkout (e.g. a `git worktree` of an older commit) to compare.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
TARGET_S = 0.2

MISSED = 3   # ran to the end, a figure missed its target (bench/run.py: reported, not a failure)


def timed(argv: list[str], cwd: Path, reps: int) -> list[float]:
    subprocess.run(argv, cwd=cwd, capture_output=True, check=True)   # warm the page cache
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        subprocess.run(argv, cwd=cwd, capture_output=True, check=True)
        out.append(time.perf_counter() - t0)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--repo", type=Path, default=ROOT)
    args = ap.parse_args()
    inv = str(Path(sys.executable).with_name("inv"))
    rows = {
        "inv --list": timed([inv, "--list"], args.repo, args.reps),
        "python -c 'import invoke'": timed([sys.executable, "-c", "import invoke"], args.repo, args.reps),
    }
    report = {}
    for name, xs in rows.items():
        report[name] = {"min_s": round(min(xs), 3), "median_s": round(statistics.median(xs), 3), "max_s": round(max(xs), 3)}
        print(f"{name:<28} min {min(xs):.3f} s  median {statistics.median(xs):.3f} s  max {max(xs):.3f} s  ({len(xs)} runs)")
    med = report["inv --list"]["median_s"]
    print(f"target: median ≤ {TARGET_S} s — {'met' if med <= TARGET_S else 'NOT met'}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "list.json").write_text(json.dumps({"repo": str(args.repo), **report}, indent=2) + "\n")
    return 0 if med <= TARGET_S else MISSED


if __name__ == "__main__":
    sys.exit(main())
