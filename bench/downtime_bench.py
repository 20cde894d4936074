"""Downtime during the swap (issue 22 item 4): /price unavailability during `inv deploy` and
`inv rollback` under a steady client load on loopback (20 requests/s).

    .venv/bin/python bench/downtime_bench.py [--twin DIR] [--rps 20]

From a reset twin (v0.2.0 running): preflight and tag-push (the twin's CI publishes W4) before any
load, then, with the load running, `inv deploy --version V --yes`, and after it `inv rollback`.
For each: the longest gap between two good answers (HTTP 200), the failed requests, and beside
them the twin dockerd's own gap (the old container's `die` → the new one's `start`), which the tool
cannot shorten.  The runbook accepts a 60 s blip.  The load's requests are recorded as the
benchmark's own (own_calls), so they never count as client traffic in a later preflight.
Writes bench/out/downtime.json; exit 1 when deploy or rollback failed (its gap is still reported),
exit 3 when a gap exceeds the runbook's 60 s.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import OUT, TWIN, V, inv, mark_own_traffic, now, reset, up  # noqa: E402

BLIP_S = 60.0
SETTLE_S = 2.0

MISSED = 3   # ran to the end, a figure missed its target (bench/run.py: reported, not a failure)


def longest_gap(samples: list[tuple[float, float, bool]], start: float, end: float) -> float:
    """The longest time without a good answer in [start, end]: between the completions of two
    good answers (and from start / to end).  Pure: samples are (sent, done, ok)."""
    goods = sorted(done for _, done, ok in samples if ok and start <= done <= end)
    edges = [start, *goods, end]
    return max(b - a for a, b in zip(edges, edges[1:]))


class Load:
    """`rps` GET /price a second on a schedule (not one after the other: a slow answer never
    delays the next request); each request's (sent, done, ok)."""

    def __init__(self, url: str, token: str, rps: float) -> None:
        import httpx

        self.url, self.rps = url, rps
        self.client = httpx.Client(timeout=2.0, headers={"Authorization": f"Bearer {token}"})
        self.samples: list[tuple[float, float, bool]] = []
        self.stop = threading.Event()
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=int(rps * 2) + 1)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _one(self) -> None:
        sent = time.monotonic()
        try:
            ok = self.client.get(self.url).status_code == 200
        except Exception:   # any transport failure is a failed request, which is what is measured
            ok = False
        self.samples.append((sent, time.monotonic(), ok))

    def _run(self) -> None:
        t0, i = time.monotonic(), 0
        while not self.stop.is_set():
            self.pool.submit(self._one)
            i += 1
            self.stop.wait(max(0.0, t0 + i / self.rps - time.monotonic()))

    def __enter__(self) -> "Load":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.pool.shutdown(wait=True)
        self.client.close()


def container_gap(twin: Path, since: float, until: float) -> float | None:
    """The twin dockerd's own gap: the backend container's `die` → the next container `start`."""
    from twilight_ops.twin import dockerd

    r = subprocess.run(["docker", "events", "--since", f"{since:.3f}", "--until", f"{until:.3f}",
                        "--filter", "type=container", "--format", "{{json .}}"],
                       env=dockerd.info_for(twin).env(), capture_output=True, text=True, timeout=60)
    died = None
    for line in r.stdout.splitlines():
        ev = json.loads(line)
        if ev.get("status") == "die" and died is None:
            died = ev["timeNano"] / 1e9
        elif ev.get("status") == "start" and died is not None:
            return ev["timeNano"] / 1e9 - died
    return None


def swap(twin: Path, url: str, token: str, rps: float, *task: str) -> dict:
    mark_from = now(twin)
    wall0, mono0 = time.time(), time.monotonic()
    with Load(url, token, rps) as load:
        time.sleep(SETTLE_S)
        t0 = time.monotonic()
        r = inv(twin, *task, check=False)          # a failed swap is a finding too: its gap is still measured
        took = time.monotonic() - t0
        time.sleep(SETTLE_S)
        end = time.monotonic()
    mark_own_traffic(twin, mark_from, now(twin), check="bench-load")
    samples = load.samples
    return {"task": " ".join(task[:1]), "task_s": took, "exit": r.returncode,
            "error": (r.stderr.strip().splitlines() or [""])[-1][:300] if r.returncode else "", "requests": len(samples),
            "failed": sum(1 for *_, ok in samples if not ok),
            "longest_gap_s": longest_gap(samples, mono0 + SETTLE_S / 2, end),
            "container_gap_s": container_gap(twin, wall0, time.time())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--twin", type=Path, default=TWIN)
    ap.add_argument("--rps", type=float, default=20.0)
    args = ap.parse_args()
    from twilight_ops.twin import build
    from twilight_ops.twin.state import load_or_new

    up(args.twin, 0)
    reset(args.twin)
    inv(args.twin, "preflight", "--version", V)
    inv(args.twin, "tag-push", "--version", V)
    settings = build.settings_for(args.twin / "invoke.yaml")
    token = (load_or_new(args.twin).remote_root / ".tokens/operator-test").read_text().strip()
    url = f"{settings.api_base}/price?code={settings.smoke_code}"
    results = [swap(args.twin, url, token, args.rps, "deploy", "--version", V, "--yes"),
               swap(args.twin, url, token, args.rps, "rollback", "--version", V, "--yes", "--reason", "downtime bench")]
    for x in results:
        cg = f"{x['container_gap_s']:.2f} s" if x["container_gap_s"] is not None else "n/a"
        said = f"exit {x['exit']}: {x['error']}" if x["exit"] else "ok"
        print(f"inv {x['task']:<9} {x['task_s']:6.1f} s ({said})   longest gap between good answers {x['longest_gap_s']:5.2f} s   "
              f"failed {x['failed']}/{x['requests']}   dockerd die→start {cg}   (runbook accepts {BLIP_S:g} s)")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "downtime.json").write_text(json.dumps(results, indent=2) + "\n")
    if any(x["exit"] for x in results):
        return 1
    return 0 if all(x["longest_gap_s"] <= BLIP_S for x in results) else MISSED


if __name__ == "__main__":
    sys.exit(main())
