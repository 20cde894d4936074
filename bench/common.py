"""What the twin benchmarks share: the real `inv` CLI against the bench twin, its reset, the
trace of a run, and the record that keeps a benchmark's own /price calls out of the next
benchmark's preflight (no_traffic)."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out"
TWIN = Path("/var/tmp/twilight-ops/bench")
V = "v0.3.0-w4-cutover"


def inv(twin: Path, *args: str, cfg: bool = True, env: dict | None = None, check: bool = True,
        timeout: float = 1800) -> subprocess.CompletedProcess:
    argv = [str(Path(sys.executable).with_name("inv")), *(["-f", str(twin / "invoke.yaml")] if cfg else []), *args]
    r = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=timeout)
    if check and r.returncode:
        raise SystemExit(f"inv {' '.join(args[:2])} failed (exit {r.returncode}): {(r.stderr.strip() or r.stdout.strip())[-600:]}")
    return r


def up(twin: Path, rtt_ms: int = 0) -> None:
    """The bench twin up (reused when running), with this WAN profile."""
    inv(twin, "twin.up", "--dir", str(twin), "--rtt", str(rtt_ms), cfg=False)


def reset(twin: Path) -> None:
    """From no cutover (twin/rehearse.reset): every benchmark starts here."""
    inv(twin, "twin.reset", "--dir", str(twin), cfg=False)


def down(twin: Path) -> None:
    r = inv(twin, "twin.down", "--dir", str(twin), cfg=False, check=False)
    print(f"twin.down: {'ok' if r.returncode == 0 else r.stderr.strip()[-300:]}", flush=True)


def mark_own_traffic(twin: Path, start: dt.datetime, end: dt.datetime, check: str) -> None:
    """The /price calls the benchmark itself sent (a replay's curl, a synthetic client load) between
    start and end are recorded where the tool records its own (own_calls), so the next benchmark's
    preflight does not count them as clients on tvps."""
    from twilight_ops import own_calls
    from twilight_ops.twin import build

    settings = build.settings_for(twin / "invoke.yaml")
    own_calls.record_prompt(settings, start, end, [settings.smoke_code], check=check)


def now(twin: Path) -> dt.datetime:
    """The tool's clock (wall clock + clock_offset_seconds), the one own_calls and the backend stamp with."""
    from twilight_ops.clock import now_utc
    from twilight_ops.twin import build

    return now_utc(build.settings_for(twin / "invoke.yaml").clock_offset_seconds)


MISSED = 3   # ran to the end, a figure missed its target (bench/run.py: reported, not a failure)


def ratio_report(name: str, labels: tuple[str, str], tool_s: list[float], bare_s: list[float], target: float,
                 **extra: object) -> int:
    """An interleaved A/B's medians and ratio printed beside the target, written to bench/out/<name>.json;
    0 when the ratio meets the target, else MISSED."""
    import json
    import statistics

    tool, plain = statistics.median(tool_s), statistics.median(bare_s)
    ratio = tool / plain
    width = max(len(x) for x in labels)
    for label, median, runs in ((labels[0], tool, tool_s), (labels[1], plain, bare_s)):
        print(f"{label:<{width}}  median {median:.2f} s  ({', '.join(f'{x:.2f}' for x in runs)})")
    print(f"ratio {ratio:.2f}× — target ≤ {target}×: {'met' if ratio <= target else 'NOT met'}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps({"tool_s": tool, "bare_s": plain, "ratio": ratio, "tool_runs": tool_s,
                                                  "bare_runs": bare_s, **extra}, indent=2) + "\n")
    return 0 if ratio <= target else MISSED
