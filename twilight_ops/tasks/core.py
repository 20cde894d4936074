"""Tasks that read state: status, lock, config."""
from __future__ import annotations

import sys

from invoke import task

from ..errors import BadInput
from ..output import console, dry_run, err_console, finish, operation, print_json, print_plan


@task(help={"json": "print one JSON object instead of tables"})
@operation
def status(c, json=False):
    """Show compose services, the /price envelope served now, the deploy lock and journals."""
    from ..phases import status as phase
    from ..render.status import render
    from ..target import Target

    with Target.from_context(c) as t:
        report = phase.run(t)
    if json:
        print_json(report.to_json())
    else:
        render(report, console)


@task(help={
    "version": "the release tag of the cutover (default: the cutover in progress, else config release, "
               "v0.3.0-w4-cutover)",
    "commit": "the cutover commit (default: local origin/main after a fetch)",
    "no_snapshot": "run the six §0 checks only; record no T+00:00 facts",
    "json": "print one JSON object instead of tables",
})
@operation
def preflight(c, version="", commit="", no_snapshot=False, json=False):
    """§0 prerequisites (seven checks) and the T+00:00 snapshot; any FAIL exits 1 and changes nothing on tvps."""
    from ..phases import preflight as phase
    from ..render.preflight import render
    from ..target import Target

    t = Target.for_release(c, version)       # before anything connects: a bad or conflicting --version is exit 2
    if dry_run(c) and not no_snapshot:
        err_console.print("--dry: the seven checks only read; the T+00:00 snapshot is not taken (as --no-snapshot)",
                          markup=False, highlight=False)
    with t:
        report = phase.run(t, commit=commit or None, snapshot=not (no_snapshot or dry_run(c)))
    if json:
        print_json(report.to_json())
    else:
        render(report, console)
    finish(report.results)


@task(help={
    "release": "release the deploy lock (asks for confirmation)",
    "yes": "with --release: do not ask",
    "acquire": "take the lock by hand (e.g. before manual maintenance on tvps)",
    "version": "with --acquire: the release tag the lock is for, e.g. v0.3.0-w4-cutover",
    "reason": "with --acquire: why, one line",
})
@operation
def lock(c, release=False, yes=False, acquire=False, version="", reason=""):
    """Show who holds the deploy lock on tvps, take it, or release it."""
    from .. import lock as lock_mod
    from .. import validate
    from ..target import Target

    if acquire and release:
        raise BadInput("--acquire and --release together make no sense", "give one of them")
    if acquire:
        version = validate.version(version)
        reason = validate.one_line(reason or "manual lock", "--reason")
    if dry_run(c) and (acquire or release):
        print_plan("lock", [f"take the deploy lock for {version} ({reason})" if acquire
                            else "release the deploy lock after confirmation (only the holder you see)"])
        return
    with Target.from_context(c, version=version if acquire else None) as t:
        if acquire:
            holder = lock_mod.new_holder(t.settings.operator, t.version, reason)
            how, dead = lock_mod.acquire(t.ssh, t.layout, holder)
            t.audit("lock-acquire", "ok", reason if dead is None else f"{reason}; took over from PID {dead.client_pid}")
            taken = f"taken over from {dead.describe()}" if dead is not None else "taken"
            console.print(f"deploy lock {taken}: {holder.describe()}", markup=False)
            return
        holder = lock_mod.read_holder(t.ssh, t.layout)
        if holder is None:
            console.print("deploy lock: free")
            return
        console.print(f"deploy lock: held by {holder.describe()}", markup=False)
        if not release:
            return
        if not yes:
            from .. import confirm

            if not confirm.interactive():
                raise BadInput("refusing to release the lock without confirmation", "re-run with --release --yes")
            if (confirm.ask("release it? type 'release' to confirm: ") or "").strip() != "release":
                console.print("left in place")
                return
        lock_mod.release_if_still(t.ssh, t.layout, holder)
        t.audit("lock-release", "ok", f"released lock held by {holder.operator}", version=holder.version)
        console.print("deploy lock released")


@task(help={"json": "print JSON", "docs": "print every key's default and meaning (the table in docs/config.md)"})
@operation
def config(c, json=False, docs=False):
    """Show the effective twilight configuration (validated)."""
    from ..config import docs_table, settings_from_context

    if docs:
        sys.stdout.write(docs_table())
        return
    settings = settings_from_context(c)
    if json:
        print_json(settings.as_dict())
        return
    from ..config import config_rows, unset_warnings
    from ..screen import Column, table

    rows = config_rows(settings, config_layers(c))
    console.print(table("twilight configuration (validated)", [Column("key", max_width=30), Column("value"),
                                                               Column("source", max_width=40)], rows))
    for line in unset_warnings(settings):
        err_console.print(f"warning: {line}", markup=False, highlight=False)


def config_layers(c) -> list[tuple[str, dict]]:
    """Invoke's config layers that can set a twilight key, strongest first, with how to name each."""
    cfg = c.config
    runtime = getattr(cfg, "_runtime_path", None)
    project = getattr(cfg, "_project_path", None)
    out = [("overrides", getattr(cfg, "_overrides", {})), (f"{runtime} (-f)", getattr(cfg, "_runtime", {})),
           ("env INVOKE_TWILIGHT_*", getattr(cfg, "_env", {})), (str(project or "project invoke.yaml"), getattr(cfg, "_project", {})),
           ("user config", getattr(cfg, "_user", {})), ("system config", getattr(cfg, "_system", {}))]
    return [(name, dict(layer.get("twilight") or {})) for name, layer in out if isinstance(layer, dict) or hasattr(layer, "get")]
