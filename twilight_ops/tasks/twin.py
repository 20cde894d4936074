"""The staging twin of tvps: twin.up, twin.down, twin.status."""
from __future__ import annotations

from pathlib import Path

from invoke import task

from ..output import console, operation, print_json

DEFAULT_DIR = ".twin"


def _dir(d: str) -> Path:
    return Path(d or DEFAULT_DIR).expanduser().resolve()


@task(help={"dir": "where the twin lives (default ./.twin)"})
@operation
def up(c, dir=DEFAULT_DIR):
    """Build and start the twin (sshd, dockerd, registry, v0.2.0 running healthy); idempotent."""
    from ..twin import build

    build.up(_dir(dir), say=lambda line: console.print(line, markup=False))


@task(help={"dir": "where the twin lives (default ./.twin)", "purge": "also delete its files and account"})
@operation
def down(c, dir=DEFAULT_DIR, purge=False):
    """Stop everything the twin started, by PID; leave no process or mount behind."""
    from ..twin import build

    build.down(_dir(dir), purge=purge, say=lambda line: console.print(line, markup=False))


@task(help={"dir": "where the twin lives (default ./.twin)"})
@operation
def status(c, dir=DEFAULT_DIR):
    """Show the twin's parts, ports and PIDs."""
    from ..twin import build

    print_json(build.status(_dir(dir)))


def _twin_settings(c, dir):
    from ..errors import BadInput
    from ..twin import build

    path = _dir(dir) / "invoke.yaml"
    if not path.exists():
        raise BadInput(f"no twin at {_dir(dir)}", "run `inv twin.up` first")
    return build.settings_for(path), path


@task(help={
    "name": "fault to switch on (repeatable), e.g. close_raw_null, http_500, canonical_unit_violation",
    "clear": "switch every fault off",
    "slow_ms": "extra latency for the 'slow' fault",
    "dir": "where the twin lives (default ./.twin)",
}, iterable=["name"])
@operation
def fault(c, name=None, clear=False, slow_ms="0", dir=DEFAULT_DIR):
    """Switch the twin backend's /price faults on or off (read per request)."""
    from ..errors import BadInput
    from ..remote import SSHExecutor
    from ..twin import control

    names = list(name or [])
    if not clear and not names:
        raise BadInput("name a fault or give --clear", "known: " + ", ".join(control.known_faults()))
    settings, _ = _twin_settings(c, dir)
    with SSHExecutor(settings) as ex:
        if clear:
            control.clear_faults(ex, settings)
            console.print("faults cleared")
        else:
            from .. import validate

            ms = validate.positive_int(slow_ms, "--slow-ms", 60_000) if str(slow_ms) != "0" else 0
            params = {"slow_ms": ms} if ms else {}
            control.set_faults(ex, settings, names, **params)
            console.print("faults on: " + ", ".join(names))


@task(help={
    "at": "make now read as this ISO time, e.g. 2026-05-11T10:00:00+08:00 (market open)",
    "clear": "back to the wall clock",
    "dir": "where the twin lives (default ./.twin)",
})
@operation
def clock(c, at="", clear=False, dir=DEFAULT_DIR):
    """Shift the twin's clock (backend and the tool's config together) to choose the market state."""
    from ..errors import BadInput
    from ..remote import SSHExecutor
    from ..twin import control

    if bool(at) == bool(clear):
        raise BadInput("give exactly one of --at ISO_TIME or --clear", "e.g. --at 2026-05-11T10:00:00+08:00")
    settings, path = _twin_settings(c, dir)
    offset = 0.0 if clear else control.offset_for(at)
    with SSHExecutor(settings) as ex:
        control.set_clock(ex, settings, offset, path)
    console.print(f"clock offset {offset:+.0f} s" + (f" (now reads {at})" if at else ""))


@task(help={
    "seconds": "how long to send, at most 600 (default 10)",
    "rps": "requests per second, at most 200 (default 5)",
    "unknown_pct": "share of calls for unknown codes, % (default 2)",
    "history_pct": "share of calls for a past trading day, % (default 10)",
    "seed": "seed of the request mix (same seed, same requests)",
    "json": "print the report as one JSON object",
    "dir": "where the twin lives (default ./.twin)",
})
@operation
def load(c, seconds="10", rps="5", unknown_pct="2", history_pct="10", seed="1", json=False, dir=DEFAULT_DIR):
    """Drive /price on the twin's loopback API (liquid, unknown codes, history); bounded, stops by itself."""
    import datetime as dt

    from .. import validate
    from ..clock import now_utc
    from ..target import Target
    from ..twin import load as load_mod

    numbers = {k: validate.number(v, f"--{k.replace('_', '-')}") for k, v in
               {"seconds": seconds, "rps": rps, "unknown_pct": unknown_pct, "history_pct": history_pct}.items()}
    seed_n = validate.positive_int(seed, "--seed")
    settings, _ = _twin_settings(c, dir)
    plan = load_mod.LoadPlan(liquid_codes=settings.liquid_codes, seed=seed_n, **numbers).checked()
    api_base = load_mod.check_loopback(settings.api_base)
    today = now_utc(settings.clock_offset_seconds).astimezone(dt.timezone(dt.timedelta(hours=8))).date()
    with Target(settings) as t:
        token = t.token
    report = load_mod.run_load(api_base, token, plan, today)
    if json:
        print_json(report.as_dict())
    else:
        console.print(report.line(), markup=False)


@task(help={
    "scenario": "healthy | errors (6 %) | slow (p95 ~890 ms) | akshare-broken (0 % during OPEN) | closing (all 'closing')",
    "rows": "how many audit rows (default 1000)",
    "minutes": "spread them over the last N minutes of the tool's clock (default 30)",
    "seed": "seed of the generated values",
    "dir": "where the twin lives (default ./.twin)",
})
@operation
def seed(c, scenario="healthy", rows="1000", minutes="30", seed="42", dir=DEFAULT_DIR):
    """Seed provider_audit_log rows in the twin (backend stopped a few seconds, then healthy again)."""
    from .. import validate
    from ..clock import now_utc
    from ..remote import SSHExecutor
    from ..twin import seed_remote

    n = validate.positive_int(rows, "--rows", seed_remote.MAX_ROWS)
    span = validate.number(minutes, "--minutes")
    seed_n = validate.positive_int(seed, "--seed")
    settings, _ = _twin_settings(c, dir)
    end = now_utc(settings.clock_offset_seconds)
    spec = seed_remote.scenario_spec(scenario, n, span, end, settings.liquid_codes, seed_n)
    with SSHExecutor(settings) as ex:
        report = seed_remote.seed_backend(ex, settings, spec, say=console.print)
    console.print(f"seeded {report.inserted} rows ({scenario}) over ({span:g} min before {end.isoformat(timespec='seconds')}]; "
                  f"{report.total} rows in provider_audit_log; {settings.service} {report.version} healthy again after "
                  f"{report.healthy_after_s:.1f} s", markup=False)


@task(help={
    "name": "pr-unmerged | check-run-failed | tushare-token-invalid | source-pinned-elsewhere | "
            "install-skill-outdated | local-main-behind",
    "pr": "with pr-unmerged: which PR (default 41)",
    "clear": "undo every preflight switch",
    "dir": "where the twin lives (default ./.twin)",
})
@operation
def preflight_fault(c, name="", pr="", clear=False, dir=DEFAULT_DIR):
    """Make one `inv preflight` check fail on the twin (GitHub, Tushare, git), or --clear them all."""
    from .. import validate
    from ..errors import BadInput
    from ..twin import preflight_faults
    from ..twin.state import load_or_new

    if bool(name) == bool(clear):
        raise BadInput("give exactly one of --name NAME or --clear", "known: " + ", ".join(preflight_faults.NAMES))
    base = _dir(dir)
    if not (base / "state.json").exists():
        raise BadInput(f"no twin at {base}", "run `inv twin.up` first")
    st = load_or_new(base)
    if clear:
        preflight_faults.clear(st)
        console.print("preflight faults cleared")
        return
    number = validate.positive_int(pr, "--pr", 100_000) if str(pr) else None
    preflight_faults.apply(st, name, number)
    console.print(f"preflight fault on: {name}" + (f" (PR #{number})" if number else ""), markup=False)
