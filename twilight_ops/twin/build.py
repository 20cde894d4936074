"""twin.up / twin.down / twin.status: a real copy of tvps on this machine.

Parts, in order: account → dockerd → token server → registry (token auth) → sshd → images
(v0.2.0 only: later releases reach the registry through the CI) → git repos → standins
(GitHub + Tushare) → ci (origin's post-receive hook) → tvps tree → operator (Hermes Agent +
model stand-in) → compose up v0.2.0 (through
the same SSH code path the tasks use) → invoke.yaml.
Each part is idempotent; a failure names the part.
"""
from __future__ import annotations

import contextlib
import copy
import os
import secrets as pysecrets
import shutil
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterator, cast

import yaml

from ..config import Settings
from ..errors import TwilightError
from . import procs, sshd
from .state import TwinState, hermes_config, load_or_new

VERSIONS = ("v0.2.0", "v0.3.0-w4-cutover")
PUBLISHED_AT_UP = VERSIONS[:1]  # the rest only through the CI (git push of the tag)
TEMPLATES = Path(__file__).with_name("templates")

Say = Callable[[str], None]


@contextlib.contextmanager
def part(name: str, say: Say) -> Iterator[None]:
    t0 = time.monotonic()
    try:
        yield
    except TwilightError as e:
        raise TwilightError(f"twin.up: {name} failed: {e.message}", e.hint) from None
    except (OSError, subprocess.CalledProcessError, ValueError) as e:
        detail = getattr(e, "stderr", None) or str(e)
        raise TwilightError(f"twin.up: {name} failed: {str(detail).strip().splitlines()[-1] if str(detail).strip() else e}",
                            "fix the cause and re-run `inv twin.up`; finished parts are reused") from None
    say(f"  {name:<10} ok  ({time.monotonic() - t0:.1f}s)")


def check_traversable(base: Path) -> None:
    """The twin account must reach its home under `base`: every ancestor needs o+x."""
    for parent in [base, *base.parents]:
        if parent.exists() and not parent.stat().st_mode & 0o001:
            if parent == base:
                continue  # we chmod it ourselves
            raise TwilightError(
                f"twin dir {base} is under {parent}, which other users cannot enter (mode {oct(parent.stat().st_mode & 0o777)})",
                "use --dir under a world-traversable path, e.g. /var/tmp/twilight-ops/twin",
            )


def up(base: Path, say: Say = print, rtt_ms: int = 0) -> TwinState:
    from . import ci, ci_release, dockerd, image, registry, registry_auth

    check_traversable(base)
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o755)
    st = load_or_new(base)
    st.ssh_port = st.ssh_port or procs.free_port()
    st.api_port = st.api_port or procs.free_port()
    st.save()
    t0 = time.monotonic()

    with part("account", say):
        if st.root_mode:
            uid, gid = sshd.ensure_user(st.user, st.home, st.group)
        else:
            raise TwilightError("the twin needs root (its own dockerd and an account)", "run as root, e.g. in CI or a VM")

    with part("dockerd", say):
        dinfo = dockerd.start_dockerd(st.base, group=st.group)
    denv = dinfo.env()

    with part("token", say):
        tinfo = registry_auth.start_token_server(st.base)
        st.token_port = tinfo.port
        st.save()

    with part("registry", say):
        rinfo = registry.start_registry(st.base, auth=registry_auth.registry_auth(tinfo.realm, tinfo.paths.cert))
        st.registry_port = rinfo.port
        st.save()
        ci_env = {**denv, "DOCKER_CONFIG": str(registry_auth.write_ci_docker_config(st.base, rinfo.host_port))}

    with part("sshd", say):
        known, key = sshd.write_keys(st.ssh_dir, st.ssh_port, st.home, uid, gid)
        sshd.write_sshd_config(st.ssh_dir, st.ssh_port, st.user,
                               {"DOCKER_HOST": denv["DOCKER_HOST"], "DOCKER_CONFIG": denv["DOCKER_CONFIG"],
                                **sshd.faketime_env(st.home / sshd.FAKETIME_FILE,
                                                    sshd.faketime_shared(st.ssh_dir, uid, gid),
                                                    sshd.write_clock_env(st.ssh_dir, st.home))})
        sshd.write_client_config(st.ssh_dir, "tvps", st.ssh_port, st.user, key, known)
        sshd.start_sshd(st.ssh_dir, st.ssh_port, st.ssh_dir / "sshd.log")

    with part("relay", say):
        wan_profile(st, rtt_ms, key, known)

    with part("images", say):
        st.digests = image.publish_versions(ci_env, st.registry, "lacatfly/twilight-drive", list(PUBLISHED_AT_UP))
        st.save()

    stale = stale_repos(st)
    if stale:      # built by older twin code, or the registry moved: every part of it names the old text
        say(f"  {stale}: rebuilding this twin from scratch")
        down(base, purge=True, say=say)
        return up(base, say, rtt_ms)

    with part("git repos", say):
        ensure_drive_repos(st, uid, gid)

    with part("standins", say):
        start_standins(st)

    with part("ci", say):
        ci.install(st.base, st.origin_repo, ci_env, st.registry)
        ci_release.reconcile_registry(st, keep=PUBLISHED_AT_UP)

    with part("tvps tree", say):
        write_tree(st, uid, gid)

    with part("operator", say):  # the real Hermes Agent and its model stand-in, on the operator's side
        from ..secret import Secret
        from .operator_side import install_hermes

        token = Secret((st.remote_root / ".tokens/operator-test").read_text().strip())
        install_hermes(st, f"http://127.0.0.1:{st.api_port}", token, say=say)

    write_invoke_yaml(st)

    with part("backend", say):
        running = deploy_previous(st)
    if running:
        say(f"  backend    {running} is there already: left alone")

    say(f"twin up in {time.monotonic() - t0:.1f}s — try: inv -f {st.invoke_yaml} status")
    return st


def wan_profile(st: TwinState, rtt_ms: int, key: Path, known: Path) -> None:
    """`--rtt N`: the relay (twin/relay.py) in front of sshd, the registry and the API, and the
    operator's ssh config pointed at it; 0: no relay, the operator talks to them directly."""
    from . import relay

    st.rtt_ms = rtt_ms
    if rtt_ms <= 0:
        relay.stop(st.base)
        st.relay_ports = {}
        st.save()
        return
    targets = {"ssh": st.ssh_port, "api": st.api_port, "registry": st.registry_port}
    st.relay_ports = {name: st.relay_ports.get(name) or procs.free_port() for name in targets}
    st.save()
    relay.start(st.base, rtt_ms, [relay.Route(st.relay_ports[n], "127.0.0.1", p) for n, p in targets.items()])
    sshd.write_client_config(st.ssh_dir, "tvps", st.relay_ports["ssh"], st.user, key, known)
    host_key = known.read_text().split("\n")[0].split(maxsplit=1)[1]
    with known.open("a") as fh:
        fh.write(f"[127.0.0.1]:{st.relay_ports['ssh']} {host_key}\n")


def render_compose(st: TwinState) -> str:
    """deploy/compose.yml for this twin (its registry, the default version, its API port)."""
    compose = (TEMPLATES / "compose.yml").read_text()
    return (compose.replace("@IMAGE_REPO@", st.image_repo)
            .replace("@DEFAULT_VERSION@", VERSIONS[0])
            .replace("@API_PORT@", str(st.api_port)))


def stale_repos(st: TwinState) -> str:
    """Why the twin's git repos no longer fit it ("" when they do): the compose.yml committed in its
    origin is not the one this twin renders (the template changed since, or the registry port)."""
    from . import drive_repos

    committed = drive_repos.committed_compose(st.origin_repo)
    if committed is None or committed == render_compose(st):
        return ""
    return f"the compose.yml committed in {st.origin_repo} is not the one this twin renders"


def ensure_drive_repos(st: TwinState, uid: int, gid: int) -> None:
    """Bare origin, the operator's clone, tvps' ~/twilight/source pinned to the cutover commit."""
    from . import drive_repos

    drive_repos.build_origin(st.origin_repo, render_compose(st))
    drive_repos.build_operator_clone(st.origin_repo, st.operator_clone)
    if not st.drive_commits:
        now = drive_repos.commits(st.origin_repo)
        st.drive_commits = {drive_repos.TAG: now[drive_repos.TAG], "w4": now["main"]}
        st.save()
    drive_repos.pin_source(st.tvps_source, st.origin_repo, st.drive_commits["w4"], uid, gid)


def start_standins(st: TwinState) -> None:
    """The GitHub and Tushare stand-ins (one process, pidfile; state read per request)."""
    from . import drive_repos, github_api, standins

    commits = {"main": st.drive_commits["w4"], drive_repos.TAG: st.drive_commits[drive_repos.TAG]}
    info = standins.start_standins(st.base, st.remote_root / ".env", st.data_dir / "clock.json",
                                   lambda: github_api.initial_state(commits, st.github_repo))
    st.github_port, st.tushare_port = info.github_port, info.tushare_port
    st.save()


def write_tree(st: TwinState, uid: int, gid: int) -> None:
    """~/twilight as on tvps: source/deploy/compose.yml, data/, .env, .tokens/, cutover/."""
    root = st.remote_root
    for d in ("source/deploy", "data", ".tokens", "cutover"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "source/deploy/compose.yml").write_text(render_compose(st))
    token_file = root / ".tokens/operator-test"
    if not token_file.exists():
        token_file.write_text(pysecrets.token_urlsafe(24) + "\n")
    operator_token = token_file.read_text().strip()
    env_file = root / ".env"
    if not env_file.exists():
        env_file.write_text(f"TUSHARE_TOKEN={pysecrets.token_hex(20)}\nOPERATOR_TOKEN={operator_token}\n")
    from .control import trade_cal_seed

    (root / "data/trade_cal.json").write_bytes(trade_cal_seed())  # fresh on every up (twin.trade-cal --stale ages it)
    for p in [root, *root.rglob("*")]:
        os.chown(p, uid, gid)
    for p in (token_file, env_file):
        p.chmod(0o600)
    (root / ".tokens").chmod(0o700)
    # the backend container (root inside) writes the warehouse here
    (root / "data").chmod(0o775)


def twin_config(st: TwinState) -> dict:
    cfg: dict = {
        "ssh_config": str(st.ssh_dir / "ssh_config"),
        "known_hosts": str(st.ssh_dir / "known_hosts"),
        "api_base": f"http://127.0.0.1:{st.operator_port('api')}",
        "image_repo": st.image_repo,
        "state_dir": str(st.base / "state"),
        "local_repo": str(st.operator_clone),
        "connect_attempts": 2,
        "watch_floor_minutes": "0.01",   # a local twin: the tests watch in seconds
        "publish_poll": "1",             # the twin's CI publishes in ≈ 3 s: tag-push sees it then, not at the 5 s poll
        "registry_api": f"http://127.0.0.1:{st.operator_port('registry')}",   # tag-push and rollback ask the registry here
    }
    from .preflight_faults import preflight_config

    cfg.update(preflight_config(st))
    from ..config import DEFAULTS

    cfg.update({k: v for k, v in hermes_config(st).items() if k in DEFAULTS})   # hermes-reinstall, agent-smoke
    return cfg


# keys an older twin.up wrote that the production defaults must now decide (the Hermes stand-in's)
RETIRED_KEYS = ("hermes_startup_log", "hermes_register_pattern")


def write_invoke_yaml(st: TwinState) -> None:
    path = st.invoke_yaml
    existing = {}
    if path.exists():
        existing = (yaml.safe_load(path.read_text()) or {}).get("twilight", {})
        for key in RETIRED_KEYS:
            existing.pop(key, None)
    cfg = {**existing, **twin_config(st)}
    tmp = path.with_suffix(".tmp")
    tmp.write_text("# written by `inv twin.up`; use with: inv -f " + str(path) + " <task>\n"
                   + yaml.safe_dump({"twilight": cfg}, sort_keys=True))
    os.replace(tmp, path)


CUTOVER_LEFTOVERS = ("warehouse.duckdb.pre-w4*", "warehouse.duckdb.pf-*", "warehouse.duckdb.failed-*")


def forget_cutovers(st: TwinState) -> list[str]:
    """Start from no cutover: drop the journals (local and tvps mirror), the lock, snapshots and
    failed copies from earlier runs, and the persisted compose version.  The images and the
    warehouse stay.  For test sessions: a twin dir is reused across runs and its images may
    have been rebuilt since (new digests), so an old journal's T+00:00 facts would not hold."""
    gone: list[str] = []
    shutil.rmtree(st.base / "state" / "journals", ignore_errors=True)
    cutover = st.remote_root / "cutover"
    shutil.rmtree(cutover / "lock", ignore_errors=True)
    paths = [*cutover.glob("journal-*.json*"), *(st.remote_root / "source" / "deploy").glob(".env*")]
    for pattern in CUTOVER_LEFTOVERS:
        paths += (st.remote_root / "data").glob(pattern)
    for path in paths:
        path.unlink(missing_ok=True)
        gone.append(str(path))
    return gone


def settings_for(invoke_yaml: Path) -> Settings:
    """The Settings the tasks get with `inv -f <twin>/invoke.yaml` (defaults + the twin's keys)."""
    from ..config import DEFAULTS, load_settings

    raw = copy.deepcopy(DEFAULTS)
    raw.update((yaml.safe_load(invoke_yaml.read_text()) or {}).get("twilight", {}))
    return load_settings(raw)


def deploy_previous(st: TwinState) -> str:
    """Bring v0.2.0 up healthy through the tasks' own SSH path when there is no backend container;
    one that exists (any release, any state: a cutover may be in progress, a rollback may have
    stopped it on purpose) is left alone and named ("" otherwise)."""
    from .. import health
    from ..builders.layout import layout
    from ..executor import Executor
    from ..builders import compose as compose_cmd
    from ..remote import SSHExecutor

    settings = settings_for(st.invoke_yaml)
    with SSHExecutor(settings) as ex:
        lay = layout(settings, ex.home)
        svc = health.service_of(health.read_services(cast(Executor, ex), lay, settings.image_repo), settings.service)
        if svc is not None:
            return f"{svc.version or svc.image} ({svc.state})"
        ex.run(compose_cmd.compose(lay, "pull", "--quiet", lay.service, version=VERSIONS[0]), timeout=300)
        ex.run(compose_cmd.compose_up(lay, VERSIONS[0], wait_timeout=120), timeout=300)
    return ""


def down(base: Path, purge: bool = False, say: Say = print) -> None:
    from . import dockerd, registry

    if not (base / "state.json").exists():
        say("no twin here")
        return
    st = load_or_new(base)
    errors: list[str] = []

    def attempt(name: str, fn: Callable[[], object], done: str = "stopped") -> None:
        try:
            fn()
            say(f"  {name:<10} {done}")
        except Exception as e:  # keep going: every part must be stopped
            errors.append(f"{name}: {e}")

    def stop_ci() -> None:
        from . import ci

        ci.stop_workers(st.base)

    def compose_down() -> None:
        info = dockerd.info_for(st.base)
        if not dockerd.is_running(info):
            return
        compose_file = st.remote_root / "source/deploy/compose.yml"
        if compose_file.exists():
            subprocess.run(["docker", "compose", "-f", str(compose_file), "down", "--timeout", "10"],
                           env={**os.environ, **info.env()}, capture_output=True, timeout=120)

    attempt("ci", stop_ci)
    attempt("backend", compose_down)
    attempt("relay", lambda: _stop_relay(st))
    attempt("sshd", lambda: sshd.stop_sshd(st.ssh_dir))
    attempt("faketime", lambda: sshd.release_faketime_shared(st.ssh_dir))
    attempt("model", lambda: _stop_model(st))
    attempt("standins", lambda: _stop_standins(st))
    attempt("registry", lambda: registry.stop_registry(st.base))
    attempt("token", lambda: _stop_token_server(st))
    attempt("dockerd", lambda: dockerd.stop_dockerd(st.base))
    if purge:
        attempt("files", lambda: _purge(st), "removed")
    if errors:
        raise TwilightError("twin.down left parts behind: " + "; ".join(errors), "see the logs under " + str(base))


def _stop_relay(st: TwinState) -> None:
    from . import relay

    relay.stop(st.base)


def _stop_token_server(st: TwinState) -> None:
    from . import registry_auth

    registry_auth.stop_token_server(st.base)


def _stop_model(st: TwinState) -> None:
    from . import model_server

    model_server.stop_model(st.operator_dir)


def _stop_standins(st: TwinState) -> None:
    from . import standins

    standins.stop_standins(st.base)


def _purge(st: TwinState) -> None:
    if st.root_mode:
        sshd.remove_user(st.user, st.group)
    shutil.rmtree(st.base)


def status(base: Path) -> dict:
    from . import dockerd, registry

    if not (base / "state.json").exists():
        return {"twin": "absent", "dir": str(base)}
    st = load_or_new(base)
    sshd_pid = procs.read_pidfile(st.ssh_dir / "sshd.pid") or 0
    return {
        "dir": str(base),
        "user": st.user,
        "sshd": {"port": st.ssh_port, "pid": sshd_pid, "alive": bool(sshd_pid) and sshd.is_our_sshd(sshd_pid, st.ssh_dir)},
        "dockerd": {"pid": dockerd.info_for(st.base).pid, "alive": dockerd.is_running(st.base),
                    "host": dockerd.info_for(st.base).host},
        "registry": {"port": st.registry_port, "alive": registry.is_running(st.base)},
        "api": f"http://127.0.0.1:{st.api_port}",
        "relay": _relay_status(st),
        "digests": st.digests,
        "invoke_yaml": str(st.invoke_yaml),
        **_standins_status(st),
        **_ci_status(st),
    }


def _relay_status(st: TwinState) -> dict:
    from . import relay

    return {"rtt_ms": st.rtt_ms, "ports": st.relay_ports, "pid": relay.running_pid(st.base)}


def _ci_status(st: TwinState) -> dict:
    from . import ci, ci_release, registry_auth

    paths = ci.CiPaths.under(st.base)
    auth = registry_auth.AuthPaths.under(st.base)
    return {
        "token_server": {"url": registry_auth.token_url(st.base), "pid": procs.read_pidfile(auth.pidfile) or 0,
                         "alive": registry_auth.is_running(st.base), "log": str(auth.log)},
        "ci": {"log_dir": str(paths.root), "hook": str(st.origin_repo / "hooks" / "post-receive"),
               "workers": ci.running_workers(st.base), "deploy_config": ci_release.deploy_config(st)},
    }


def _standins_status(st: TwinState) -> dict:
    from . import standins

    pid = procs.read_pidfile(standins.StandinPaths.under(st.base).pidfile) or 0
    alive = standins.is_running(st.base)
    return {
        "standins": {"pid": pid, "alive": alive},
        "github": {"api": st.github_api, "repo": st.github_repo, "token_file": str(st.github_token_file)},
        "tushare": {"url": st.tushare_url},
        "git": {"origin": str(st.origin_repo), "operator_clone": str(st.operator_clone),
                "tvps_source": str(st.tvps_source), "commits": st.drive_commits},
        "hermes": hermes_config(st),
        "model": _model_status(st),
    }


def _model_status(st: TwinState) -> dict:
    from . import model_server

    ports = model_server.model_ports(st.operator_dir) or (0, 0)
    return {"pid": model_server.running_pid(st.operator_dir), "alive": model_server.is_running(st.operator_dir),
            "base_url": f"http://127.0.0.1:{ports[0]}/v1", "down_port": ports[1],
            "log": str(model_server.ModelPaths.under(st.operator_dir).log)}


def leftovers(base: Path) -> list[str]:
    """Every process (not a zombie) whose command line names the twin dir, and every mount
    under it; empty after a clean twin.down."""
    from . import dockerd

    needle = str(base.resolve())
    found = set(dockerd.leftovers(base))
    for pid in procs.all_pids():
        if pid != os.getpid() and procs.pid_alive(pid) and needle in " ".join(procs.cmdline(pid)):
            found.add(f"process {pid}: {' '.join(procs.cmdline(pid))[:120]}")
    found.update(f"mount {m}" for m in procs.mounts_under([base.resolve()]))
    return sorted(found)
