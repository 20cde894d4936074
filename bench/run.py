"""`make bench`: every benchmark in bench/, one after the other.

    .venv/bin/python bench/run.py [--quick]

--quick runs the monitor benchmark on 1 M rows instead of 10 M (a few seconds).
The deploy and rollback benchmarks need root: they bring up a twin under
/var/tmp/twilight-ops/bench (≈ 1 min the first time) and take a few minutes.
Each benchmark prints its own table and writes bench/out/<name>.json; the exit code
is non-zero when a benchmark misses its target.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    quick = "--quick" in sys.argv[1:]
    benches = [
        ["list_bench.py"],
        ["monitor_bench.py", *(["--rows", "1000000"] if quick else [])],
        ["deploy_bench.py", "--reps", "3"],
        ["rollback_bench.py", "--reps", "3"],
    ]
    worst = 0
    for argv in benches:
        print(f"== {' '.join(argv)}", flush=True)
        worst = max(worst, subprocess.run([sys.executable, str(HERE / argv[0]), *argv[1:]]).returncode)
    return worst


if __name__ == "__main__":
    sys.exit(main())
