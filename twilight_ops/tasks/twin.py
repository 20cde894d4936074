"""The staging twin of tvps: twin.up, twin.down, twin.status."""
from __future__ import annotations

from pathlib import Path

from invoke import task

from ..output import console, operation, print_json

DEFAULT_DIR = ".twin"


def _dir(d: str) -> Path:
    return Path(d or DEFAULT_DIR).expanduser().resolve()


@task(help={"dir": "where the twin lives (default ./.twin)",
            "rtt": "WAN profile: round-trip time in ms (0..2000) put on every connection to sshd, registry and API, e.g. 100"})
@operation
def up(c, dir=DEFAULT_DIR, rtt="0"):
    """Build and start the twin (sshd, dockerd, registry, v0.2.0 running healthy); on a running
    twin, start only what is down and leave the backend it finds alone."""
    from ..errors import BadInput
    from ..twin import build

    rtt_ms = _number(str(rtt), "--rtt")
    if not (0 <= rtt_ms <= 2000) or rtt_ms != int(rtt_ms):
        raise BadInput(f"--rtt must be a whole number of milliseconds in 0..2000, got {rtt!r}", "e.g. inv twin.up --rtt 100")
    build.up(_dir(dir), say=lambda line: console.print(line, markup=False), rtt_ms=int(rtt_ms))


@task(help={"dir": "where the twin lives (default ./.twin)", "purge": "also delete its files and account"})
@operation
def down(c, dir=DEFAULT_DIR, purge=False):
    """Stop everything the twin started, by PID; leave no process or mount behind."""
    from ..twin import build

    build.down(twin_dir(c, dir), purge=purge, say=lambda line: console.print(line, markup=False))


@task(help={"dir": "where the twin lives (default ./.twin)"})
@operation
def reset(c, dir=DEFAULT_DIR):
    """From no cutover: v0.2.0 running, W4 untagged and unpublished, no journal, lock, snapshot or fault."""
    from ..twin import build, rehearse
    from ..twin.state import load_or_new

    settings, _ = _twin_settings(c, dir)
    gone = rehearse.reset(load_or_new(twin_dir(c, dir)), settings)
    console.print(f"twin reset: {gone} cutover files removed, every fault off, {build.VERSIONS[1]} untagged and "
                  f"unpublished; {build.VERSIONS[0]} running", markup=False)


@task(help={"dir": "where the twin lives (default ./.twin)"})
@operation
def status(c, dir=DEFAULT_DIR):
    """Show the twin's parts, ports and PIDs."""
    from ..twin import build

    print_json(build.status(twin_dir(c, dir)))


def _number(value: str, flag: str) -> float:
    """A number given on the command line; one BadInput line otherwise (`inv twin.cache --ttl`)."""
    import math

    from ..errors import BadInput

    try:
        n = float(str(value).strip())
    except ValueError:
        raise BadInput(f"{flag} {str(value)[:20]!r} is not a number", f"e.g. {flag} 5") from None
    if not math.isfinite(n):
        raise BadInput(f"{flag} {str(value)[:20]!r} is not a number", f"e.g. {flag} 5")
    return n


def twin_dir(c, dir: str) -> Path:
    """The twin a task works on: --dir when given; else, under `inv -f <twin>/invoke.yaml`, that
    file's twin (a directory with the twin's state.json); else ./.twin."""
    if dir and dir != DEFAULT_DIR:
        return _dir(dir)
    runtime = getattr(c.config, "_runtime_path", None)
    if runtime:
        here = Path(runtime).expanduser().resolve().parent
        if (here / "state.json").exists():
            return here
    return _dir(dir)


def _twin_settings(c, dir):
    from ..errors import BadInput
    from ..twin import build

    base = twin_dir(c, dir)
    path = base / "invoke.yaml"
    if not path.exists():
        raise BadInput(f"no twin at {base}", "run `inv twin.up` first, or give --dir")
    return build.settings_for(path), path


@task(help={
    "name": "fault to switch on (repeatable), e.g. close_raw_null, http_500, akshare_down, audit_write_failed",
    "clear": "switch every fault off (and the akshare failure share back to its default)",
    "slow_ms": "extra latency for the 'slow' fault",
    "rate": "fire each named fault on this share (0..1) of the replies it applies to, e.g. 0.06",
    "akshare_fail_rate": "share (0..1) of akshare-spot calls that fail and fall back to tushare-daily (default 0.3)",
    "only_version": "apply the faults only while this release runs (repeatable), e.g. v0.3.0-w4-cutover",
    "dir": "where the twin lives (default ./.twin)",
}, iterable=["name", "only_version"])
@operation
def fault(c, name=None, clear=False, slow_ms="0", rate="", akshare_fail_rate="", only_version=None, dir=DEFAULT_DIR):
    """Switch the twin backend's /price faults on or off (read per request)."""
    from ..errors import BadInput
    from ..remote import SSHExecutor
    from ..twin import control

    names = list(name or [])
    if not clear and not names and akshare_fail_rate == "":
        raise BadInput("name a fault, give --akshare-fail-rate, or give --clear", "known: " + ", ".join(control.known_faults()))
    if rate != "" and not names:
        raise BadInput("--rate needs the fault it applies to", "e.g. --name http_500 --rate 0.06")
    rates = {n: control.share(rate, "--rate") for n in names} if rate != "" else None
    ak = control.share(akshare_fail_rate, "--akshare-fail-rate") if akshare_fail_rate != "" else None
    settings, _ = _twin_settings(c, dir)
    with SSHExecutor(settings) as ex:
        if clear:
            control.clear_faults(ex, settings)
            console.print("faults cleared")
        else:
            from .. import validate

            ms = validate.positive_int(slow_ms, "--slow-ms", 60_000) if str(slow_ms) != "0" else 0
            params = {"slow_ms": ms} if ms else {}
            versions = [validate.version(v, "--only-version") for v in (only_version or [])]
            control.set_faults(ex, settings, names, rates=rates, akshare_fail_rate=ak, versions=versions, **params)
            console.print("faults on: " + (", ".join(names) or "none")
                          + (f" while {', '.join(versions)} runs" if versions else "")
                          + (f" at rate {rates[names[0]]:g}" if rates else "")
                          + (f"; akshare-spot fails on {ak:g} of calls" if ak is not None else ""))


@task(help={
    "ttl": "quote cache TTL during OPEN, seconds (0..86400), e.g. 5 for a quick cache check",
    "clear": "back to the image's CACHE_TTL_SECONDS (60)",
    "dir": "where the twin lives (default ./.twin)",
})
@operation
def cache(c, ttl="", clear=False, dir=DEFAULT_DIR):
    """Set the twin backend's quote cache TTL (cache.json, read per request)."""
    from .. import validate
    from ..errors import BadInput
    from ..remote import SSHExecutor
    from ..twin import control

    if (ttl == "") == (not clear):
        raise BadInput("give exactly one of --ttl SECONDS or --clear", "e.g. --ttl 5")
    seconds = None if clear else validate.number(ttl, "--ttl")
    settings, invoke_yaml = _twin_settings(c, dir)
    with SSHExecutor(settings) as ex:       # the backend's TTL and the tool's cache_ttl_seconds together
        control.set_cache_ttl(ex, settings, seconds, invoke_yaml)
    console.print("cache TTL back to the default" if clear else f"cache TTL {seconds:g} s")


@task(help={
    "stale": "end the trade_cal seed before the twin's today: every call then says market_state 'closing'",
    "fresh": "the fresh seed twin.up writes (every weekday 2015..2035)",
    "dir": "where the twin lives (default ./.twin)",
})
@operation
def trade_cal(c, stale=False, fresh=False, dir=DEFAULT_DIR):
    """Make the twin backend's trade_cal seed stale or fresh (runbook §4: all 'closing')."""
    import datetime as dt

    from ..clock import now_utc
    from ..errors import BadInput
    from ..remote import SSHExecutor
    from ..twin import control

    if stale == fresh:
        raise BadInput("give exactly one of --stale or --fresh", "e.g. --stale")
    settings, _ = _twin_settings(c, dir)
    today = now_utc(settings.clock_offset_seconds).astimezone(dt.timezone(dt.timedelta(hours=8))).date()
    seed = control.trade_cal_seed(stale_before=today if stale else None)
    with SSHExecutor(settings) as ex:
        control.set_trade_cal(ex, settings, seed)
    console.print(f"trade_cal seed ends {today - dt.timedelta(days=1)} (stale)" if stale else "trade_cal seed fresh")


@task(help={
    "name": "skill_missing | skill_disabled | model_down | legacy_prompt | price_unavailable | verbose_wording | "
            "verbose_wrong_date | verbose_unavailable",
    "clear": "switch the Hermes fault off",
    "dir": "where the twin lives (default ./.twin)",
})
@operation
def hermes_fault(c, name="", clear=False, dir=DEFAULT_DIR):
    """Switch an operator-side Hermes fault (the real Hermes' config, or the model stand-in's answers) on or off."""
    from ..errors import BadInput
    from ..twin.operator_side import HERMES_FAULTS, set_hermes_fault
    from ..twin.state import load_or_new

    if bool(name) == bool(clear):
        raise BadInput("give exactly one of --name FAULT or --clear", "known: " + ", ".join(HERMES_FAULTS))
    base = twin_dir(c, dir)
    if not (base / "state.json").exists():
        raise BadInput(f"no twin at {base}", "run `inv twin.up` first, or give --dir")
    set_hermes_fault(load_or_new(base).hermes_home, None if clear else name)
    console.print("hermes fault cleared" if clear else f"hermes fault on: {name}")


@task(help={
    "at": "make now read as this ISO time, e.g. 2026-05-11T10:00:00+08:00 (market open)",
    "skew": "tvps's clock alone runs N seconds off the tool's (negative: behind), e.g. --skew -600",
    "clear": "back to the wall clock (no skew)",
    "dir": "where the twin lives (default ./.twin)",
})
@operation
def clock(c, at="", skew="", clear=False, dir=DEFAULT_DIR):
    """Shift the twin's clock (backend and the tool's config together) to choose the market state;
    --skew sets tvps's clock apart from the tool's (the tool's offset stays)."""
    from ..errors import BadInput
    from ..remote import SSHExecutor
    from ..twin import control

    if clear == bool(at or skew != ""):
        raise BadInput("give --at ISO_TIME and/or --skew SECONDS, or --clear", "e.g. --at 2026-05-11T10:00:00+08:00")
    try:
        skew_s = float(skew) if skew != "" else 0.0
    except ValueError:
        raise BadInput(f"--skew {str(skew)[:20]!r} is not a number of seconds", "e.g. --skew -600") from None
    settings, path = _twin_settings(c, dir)
    offset = 0.0 if clear else control.offset_for(at) if at else settings.clock_offset_seconds
    with SSHExecutor(settings) as ex:
        control.set_clock(ex, settings, offset, path, skew_s)
    console.print(f"clock offset {offset:+.0f} s" + (f" (now reads {at})" if at else "")
                  + (f"; tvps {skew_s:+g} s off it" if skew_s else ""))


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
    "minutes": "spread them over the last N minutes of tvps's clock (default 30)",
    "seed": "seed of the generated values",
    "dir": "where the twin lives (default ./.twin)",
})
@operation
def seed(c, scenario="healthy", rows="1000", minutes="30", seed="42", dir=DEFAULT_DIR):
    """Seed provider_audit_log rows in the twin (backend stopped a few seconds, then healthy again)."""
    import dataclasses

    from .. import tvps_clock, validate
    from ..clock import now_utc
    from ..remote import SSHExecutor
    from ..twin import seed_remote

    n = validate.positive_int(rows, "--rows", seed_remote.MAX_ROWS)
    span = validate.number(minutes, "--minutes")
    seed_n = validate.positive_int(seed, "--seed")
    settings, _ = _twin_settings(c, dir)
    spec = seed_remote.scenario_spec(scenario, n, span, now_utc(settings.clock_offset_seconds), settings.liquid_codes,
                                     seed_n)                  # bad input refused before connecting
    with SSHExecutor(settings) as ex:
        end = tvps_clock.tvps_now(tvps_clock.measure(ex, settings.clock_offset_seconds), settings.clock_offset_seconds)
        spec = dataclasses.replace(spec, end_utc=end)        # the rows end at tvps's now
        from ..screen import Lines

        with Lines(console) as say:
            report = seed_remote.seed_backend(ex, settings, spec, say=say)
    console.print(f"seeded {report.inserted} rows ({scenario}) over ({span:g} min before {end.isoformat(timespec='seconds')}]; "
                  f"{report.total} rows in provider_audit_log; {settings.service} {report.version} healthy again after "
                  f"{report.healthy_after_s:.1f} s", markup=False)


@task(help={
    "name": "pr-unmerged | check-run-failed | tushare-token-invalid | source-pinned-elsewhere | "
            "install-skill-outdated | local-main-behind | tvps-clock-skew",
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
    base = twin_dir(c, dir)
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


@task(help={
    "name": "build-fails | never-healthy | restart-loop | pull-missing | pull-denied | second-workflow-fails | "
            "publish-skipped | other-app-checks",
    "version": "the release it hits (never-healthy, restart-loop, pull-missing; default v0.3.0-w4-cutover)",
    "clear": "switch every CI/release fault off (a deleted manifest is put back)",
    "dir": "where the twin lives (default ./.twin)",
})
@operation
def ci_fault(c, name="", version="v0.3.0-w4-cutover", clear=False, dir=DEFAULT_DIR):
    """Break the twin's CI, registry or a release (for tag-push and deploy), or --clear it."""
    from ..errors import BadInput
    from ..twin import release_faults
    from ..twin.state import load_or_new

    if bool(name) == bool(clear):
        raise BadInput("give exactly one of --name NAME or --clear", "known: " + ", ".join(release_faults.NAMES))
    if name:
        release_faults.check_name(name)
    base = twin_dir(c, dir)
    if not (base / "state.json").exists():
        raise BadInput(f"no twin at {base}", "run `inv twin.up` first")
    st = load_or_new(base)
    if clear:
        done = release_faults.clear(st)
        console.print("CI/release faults cleared" + (f": {', '.join(done)}" if done else " (none were on)"), markup=False)
        return
    console.print(f"CI/release fault on: {name} — {release_faults.apply(st, name, version)}", markup=False)
