"""Tasks that read state: status, lock, config."""
from __future__ import annotations

import sys

from invoke import task

from .. import commands, lock as lock_mod
from ..config import settings_from_context
from .. import validate
from ..errors import BadInput
from ..output import console, operation, print_json
from ..remote import SSHExecutor
from .. import status as status_mod
from ..target import announce


@task(help={"json": "print one JSON object instead of tables"})
@operation
def status(c, json=False):
    """Show compose services, the /price envelope served now, the deploy lock and journals."""
    settings = settings_from_context(c)
    announce(c, settings)
    with SSHExecutor(settings) as ex:
        report = status_mod.collect(ex, settings)
    if json:
        print_json(report.to_json())
    else:
        status_mod.render(report, console)


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
    settings = settings_from_context(c)
    if acquire and release:
        raise BadInput("--acquire and --release together make no sense", "give one of them")
    if acquire:
        version = validate.version(version)
        reason = validate.one_line(reason or "manual lock", "--reason")
    announce(c, settings)
    with SSHExecutor(settings) as ex:
        if acquire:
            lay = commands.layout(settings, ex.home)
            holder = lock_mod.new_holder(settings.operator, version, reason)
            fresh = lock_mod.acquire(ex, lay, holder)
            from .. import audit
            audit.append(ex, lay, audit.audit_line(settings.operator, "lock-acquire", version, "ok", reason))
            console.print(f"deploy lock {'taken' if fresh else 'already yours'}: {holder.describe()}", markup=False)
            return
        lay = commands.layout(settings, ex.home)
        holder = lock_mod.read_holder(ex, lay)
        if holder is None:
            console.print("deploy lock: free")
            return
        console.print(f"deploy lock: held by {holder.describe()}", markup=False)
        if not release:
            return
        if not yes:
            if not sys.stdin.isatty():
                raise BadInput("refusing to release the lock without confirmation", "re-run with --release --yes")
            answer = input("release it? type 'release' to confirm: ").strip()
            if answer != "release":
                console.print("left in place")
                return
        lock_mod.release_if_still(ex, lay, holder)
        from .. import audit
        audit.append(ex, lay, audit.audit_line(settings.operator, "lock-release", holder.version, "ok",
                                               f"released lock held by {holder.operator}"))
        console.print("deploy lock released")


@task(help={"json": "print JSON"})
@operation
def config(c, json=False):
    """Show the effective twilight configuration (validated)."""
    settings = settings_from_context(c)
    data = settings.as_dict()
    if json:
        print_json(data)
    else:
        for k, v in data.items():
            console.print(f"{k}: {v}", markup=False)
