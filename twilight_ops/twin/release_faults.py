"""Faults of a release on its way to tvps, for the tag-push and deploy tests.

    build-fails    the CI's build context lacks app.py: `docker build` fails, the run
                   concludes failure, nothing is pushed (ci/faults.json)
    never-healthy  that version's container starts but /healthz answers 503, so the compose
                   healthcheck never passes (tvps data dir: release_faults.json)
    restart-loop   that version's container exits 1 about a second after start; compose's
                   `restart: unless-stopped` restarts it, again and again (release_faults.json)
    pull-missing   the tag's manifest is deleted from the registry (kept in ci/removed/ and
                   put back by --clear): `docker pull` fails with "manifest unknown"
    pull-denied    the token server grants nobody "pull" (registry-auth/policy.json): every
                   pull fails with "denied"/"unauthorized" after the token round trip
    second-workflow-fails   every tag push also gets a CodeQL run on the same tag (a second
                   workflow, newer than the publish run) that concludes failure at once;
                   the publish run is untouched (ci/faults.json)
    publish-skipped    the publish run concludes `skipped` straight from the queue, nothing
                   is built (ci/faults.json)
    other-app-checks   the cutover commit gets OTHER_APP_CHECKS check runs of other GitHub
                   Apps (Codecov, SonarQube Cloud, Renovate) listed before CI's, so the
                   integration check is on the second page of 100 (github.json)
    schema-regressed   that version, at its start, migrates the warehouse in a way v0.2.0 cannot
                   read: provider_audit_log.served_by becomes `provider`; v0.2.0's start-up
                   selects served_by and exits 3 (FATAL), so it never gets healthy on that file
                   (release_faults.json; issue 24's §2.3 evidence → restore)
    schema-additive    that version, at its start, adds a table price_units (one row); v0.2.0
                   ignores it (release_faults.json; §2.3 → keep the warehouse)

`inv twin.ci-fault --name X [--version V] | --clear`.  The backend reads
release_faults.json per /healthz request and at start-up, so no restart is needed to
switch never-healthy; restart-loop takes effect at the container's next start.
"""
from __future__ import annotations

import base64
import json
import posixpath

from ..errors import BadInput
from . import ci, github_api, registry_auth, standins
from .registry_client import TwinRegistry
from .standins import write_json_atomic
from .state import TwinState

NAMES = ("build-fails", "never-healthy", "restart-loop", "pull-missing", "pull-denied", "second-workflow-fails",
         "publish-skipped", "other-app-checks", "schema-regressed", "schema-additive")
CI_FAULTS = {"second-workflow-fails": ("codeql_fails", True), "publish-skipped": ("publish_conclusion", "skipped")}
OTHER_APP_CHECKS = 120
BACKEND_FAULTS = ("never-healthy", "restart-loop", "schema-regressed", "schema-additive")
DEFAULT_VERSION = "v0.3.0-w4-cutover"
FILE = "release_faults.json"


def check_name(name: str) -> str:
    if name not in NAMES:
        raise BadInput(f"CI/release fault {name!r} is unknown", "known: " + ", ".join(NAMES))
    return name


def _executor(st: TwinState):
    from ..remote import SSHExecutor
    from .build import settings_for

    settings = settings_for(st.invoke_yaml)
    return settings, SSHExecutor(settings)


def _backend_file(settings, ex) -> str:
    from ..builders.layout import layout

    return posixpath.join(posixpath.dirname(layout(settings, ex.home).warehouse), FILE)


def schema_faulted(st: TwinState) -> bool:
    """A schema fault is on (so a release may have migrated the warehouse): reset must undo it first."""
    settings, ex = _executor(st)
    with ex:
        res = ex.run(["cat", "--", _backend_file(settings, ex)], check=False)
    try:
        current = json.loads(res.stdout) if res.ok and res.stdout.strip() else {}
    except ValueError:
        return False
    return isinstance(current, dict) and any(v in ("schema-regressed", "schema-additive") for v in current.values())


def unmigrate(st: TwinState) -> list[str]:
    """Put the warehouse back to the v0.2.0 schema after a schema fault (the backend is stopped, the file
    opened here: the twin's data dir is local): `provider` renamed back, `price_units` dropped."""
    import duckdb

    from ..builders import compose as compose_cmd
    from ..builders.layout import layout

    settings, ex = _executor(st)
    with ex:
        ex.run(compose_cmd.compose(layout(settings, ex.home), "stop", settings.service), check=False, timeout=120)
    con = duckdb.connect(str(st.remote_root / "data" / "warehouse.duckdb"))
    done = []
    try:
        cols = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                          "WHERE table_name = 'provider_audit_log'").fetchall()}
        if "provider" in cols and "served_by" not in cols:
            con.execute("ALTER TABLE provider_audit_log RENAME COLUMN provider TO served_by")
            done.append("provider_audit_log.provider renamed back to served_by")
        found = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'price_units'").fetchone()
        if found and found[0]:
            con.execute("DROP TABLE price_units")
            done.append("price_units dropped")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return done


def backend_faults(current: dict, version: str, name: str | None) -> dict:
    """release_faults.json with `version` set to `name` (None: removed) (pure)."""
    new = {k: v for k, v in current.items() if k != version}
    if name is not None:
        new[version] = name
    return new


def _set_backend(st: TwinState, version: str, name: str | None) -> None:
    settings, ex = _executor(st)
    with ex:
        path = _backend_file(settings, ex)
        res = ex.run(["cat", "--", path], check=False)
        try:
            current = json.loads(res.stdout) if res.ok and res.stdout.strip() else {}
        except ValueError:
            current = {}
        new = backend_faults(current if isinstance(current, dict) else {}, version, name)
        if new:
            ex.write_file(path, json.dumps(new).encode(), mode=0o644)
        else:
            ex.run(["rm", "-f", "--", path])


def _remove_manifest(st: TwinState, version: str) -> str:
    paths = ci.CiPaths.under(st.base)
    with TwinRegistry.as_ci(st.base, st.registry) as reg:
        found = reg.get_manifest(ci.REPO_PATH, version)
        if found is None:
            raise BadInput(f"{version} is not in the twin registry", "publish it first (push the tag), then add the fault")
        media_type, body = found
        paths.removed.mkdir(parents=True, exist_ok=True)
        write_json_atomic(paths.removed / f"{version}.json",
                          {"media_type": media_type, "body": base64.b64encode(body).decode()})
        digest = reg.manifest_digest(ci.REPO_PATH, version)
        reg.delete_manifest(ci.REPO_PATH, digest)  # type: ignore[arg-type]
        return digest  # type: ignore[return-value]


def _restore_manifests(st: TwinState) -> list[str]:
    paths = ci.CiPaths.under(st.base)
    restored: list[str] = []
    if not paths.removed.exists():
        return restored
    with TwinRegistry.as_ci(st.base, st.registry) as reg:
        for saved in sorted(paths.removed.glob("*.json")):
            data = json.loads(saved.read_text())
            reg.put_manifest(ci.REPO_PATH, saved.stem, data["media_type"], base64.b64decode(data["body"]))
            saved.unlink()
            restored.append(saved.stem)
    return restored


def apply(st: TwinState, name: str, version: str = DEFAULT_VERSION) -> str:
    """Switch one fault on; a one-line description of what changed."""
    from .. import validate

    check_name(name)
    validate.version(version, "--version")
    if name == "build-fails":
        ci.set_build_fails(st.base, True)
        return "CI builds fail (the build context has no app.py); nothing is pushed"
    if name in CI_FAULTS:
        ci.set_fault(st.base, *CI_FAULTS[name])
        return ("each tag push also gets a CodeQL run that fails at once" if name == "second-workflow-fails"
                else "the publish run concludes skipped without building")
    if name == "other-app-checks":
        return _add_other_app_checks(st)
    if name in BACKEND_FAULTS:
        _set_backend(st, version, name)
        return f"{version}: " + {
            "never-healthy": "/healthz answers 503, never healthy",
            "restart-loop": "the container exits 1 about a second after each start",
            "schema-regressed": "at start it renames provider_audit_log.served_by to provider (v0.2.0 then fails to start)",
            "schema-additive": "at start it adds a table price_units (v0.2.0 ignores it)"}[name]
    if name == "pull-missing":
        digest = _remove_manifest(st, version)
        return f"{version} ({digest}) deleted from the registry; --clear puts it back"
    registry_auth.set_deny_pull(st.base, True)
    return "the token server grants no pull to anyone"


def _add_other_app_checks(st: TwinState) -> str:
    sha = st.drive_commits.get("w4")
    if not sha:
        raise BadInput(f"the twin at {st.base} has no twilight-drive repos yet", "run `inv twin.up` first")

    def change(state: dict) -> None:
        mine = [r for r in state["check_runs"].get(sha, []) if not github_api.is_other_app(r)]
        others = github_api.other_app_check_runs(state.get("owner_repo", github_api.OWNER_REPO), sha, OTHER_APP_CHECKS)
        state["check_runs"][sha] = [*others, *mine]

    standins.update_github_state(st.base, change)
    return f"{OTHER_APP_CHECKS} other apps' check runs listed first on {sha[:12]}: CI's are on page 2 of 100"


def _drop_other_app_checks(st: TwinState) -> bool:
    dropped = []

    def change(state: dict) -> None:
        for sha, runs in state.get("check_runs", {}).items():
            kept = [r for r in runs if not github_api.is_other_app(r)]
            if len(kept) != len(runs):
                dropped.append(sha)
                state["check_runs"][sha] = kept

    if standins.StandinPaths.under(st.base).github_state.exists():
        standins.update_github_state(st.base, change)
    return bool(dropped)


def clear(st: TwinState) -> list[str]:
    """Every release fault off (a no-op on a clean twin); what was undone."""
    done = []
    if ci.CiPaths.under(st.base).faults.exists():
        on = ci.faults(st.base)
        ci.CiPaths.under(st.base).faults.unlink(missing_ok=True)
        done += [name for name, (key, _v) in {"build-fails": ("build_fails", True), **CI_FAULTS}.items() if key in on]
    if _drop_other_app_checks(st):
        done.append("other-app-checks")
    if registry_auth.AuthPaths.under(st.base).policy.exists():
        registry_auth.set_deny_pull(st.base, False)
        done.append("pull-denied")
    done += [f"pull-missing {v} restored" for v in _restore_manifests(st)]
    settings, ex = _executor(st)
    with ex:
        path = _backend_file(settings, ex)
        if ex.run(["test", "-e", path], check=False).ok:
            ex.run(["rm", "-f", "--", path])
            done.append("never-healthy/restart-loop")
    return done

