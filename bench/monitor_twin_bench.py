"""Monitor over SSH: `inv monitor --hours 1 --json` against the bare commands an operator would
script: one OpenSSH `ssh tvps docker compose exec -T backend python3 -` with the same probe on
stdin (its WAL-aware copy of the warehouse and the three aggregate queries), its JSON printed
(issue 22: target ≤ 1.2×).

    .venv/bin/python bench/monitor_twin_bench.py [--twin DIR] [--reps 7]

From a reset twin (v0.2.0 running) with 2,000 seeded audit rows 15–55 min old (in the 1 h window,
never in the next benchmark's 10-minute preflight window); interleaved A/B, medians.
The bare side runs the very script the tool builds (monitor/script.build_probe_script: the probe
with its parameters), so both do the same work on tvps; the difference is the tool's own cost:
Python start-up and imports, paramiko's handshake, tvps's clock read (one more round trip: the
window ends at tvps's now), the kept probe's sha256 check, and the rendering.  Writes
bench/out/monitor_twin.json; exit 3 when the ratio misses.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import TWIN, inv, ratio_report, reset, up  # noqa: E402

TARGET = 1.2


def bare_round(ssh_config: Path, command: str, script: str) -> dict:
    r = subprocess.run(["ssh", "-F", str(ssh_config), "tvps", command], input=script, capture_output=True,
                       text=True, check=True)
    return json.loads(r.stdout)


def seed_window(ex, settings) -> None:
    """2,000 audit rows of healthy traffic in (tvps's now − 55 min, now − 15 min]: inside the monitor's
    1 h window, outside preflight's 10 min (the next benchmark's preflight must find no client)."""
    import datetime as dt

    from twilight_ops import tvps_clock
    from twilight_ops.twin import seed_remote

    end = tvps_clock.tvps_now(tvps_clock.measure(ex, settings.clock_offset_seconds),
                              settings.clock_offset_seconds) - dt.timedelta(minutes=15)
    seed_remote.seed_backend(ex, settings, seed_remote.scenario_spec("healthy", 2000, 40, end, settings.liquid_codes, 42))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--twin", type=Path, default=TWIN)
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()
    from twilight_ops.builders.compose import compose_exec_python
    from twilight_ops.builders.layout import layout
    from twilight_ops.executor import render
    from twilight_ops.monitor.script import build_probe_script
    from twilight_ops.phases.monitor import probe_params
    from twilight_ops.remote import SSHExecutor
    from twilight_ops.twin import build

    up(args.twin, 0)
    reset(args.twin)
    s = build.settings_for(args.twin / "invoke.yaml")
    with SSHExecutor(s) as ex:
        lay = layout(s, ex.home)
        seed_window(ex, s)
    command = render(compose_exec_python(lay))
    inv(args.twin, "monitor", "--hours", "1", "--json")           # warm: the kept probe uploaded once
    tool_s, bare_s = [], []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        r = inv(args.twin, "monitor", "--hours", "1", "--json")
        tool_s.append(time.perf_counter() - t0)
        json.loads(r.stdout)
        script = build_probe_script(probe_params(s, 1.0))          # built outside the timing: a script on disk
        t0 = time.perf_counter()
        bare_round(s.ssh_config, command, script)
        bare_s.append(time.perf_counter() - t0)
    return ratio_report("monitor_twin", ("inv monitor --hours 1 --json", "ssh + compose exec + probe"), tool_s, bare_s,
                        TARGET, bare_command=shlex.split(command)[:3])


if __name__ == "__main__":
    sys.exit(main())
