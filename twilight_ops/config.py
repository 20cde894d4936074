"""Configuration: defaults in code under the `twilight` key of Invoke's config.

Invoke layers them: these defaults < project `invoke.yaml` <
`INVOKE_TWILIGHT_*` env vars < `-f FILE` (Invoke ranks the runtime file highest).  Numbers and lists default to *strings* on
purpose: Invoke casts an env var to the default's type and would crash with a
traceback on `INVOKE_TWILIGHT_CONNECT_TIMEOUT=abc`; strings reach our own
validation, which answers with one line and exit 2.  `load_settings(c)` validates the merged result
into a frozen `Settings`; anything wrong is one BadInput line naming the key,
raised before any connection is opened.
"""
from __future__ import annotations

import dataclasses
import getpass
import math
import os
import re
import socket
from pathlib import Path
from typing import Any, Mapping

from . import validate
from .errors import BadInput
from .release import DEFAULT_RELEASE

DEFAULTS: dict[str, Any] = {
    # how to reach tvps
    "host": "tvps",
    "ssh_config": "~/.ssh/config",
    "known_hosts": "~/.ssh/known_hosts",
    "connect_timeout": "10",
    "connect_attempts": "3",
    "ssh_op_timeout_seconds": "30",   # an SFTP op, a channel open, a keepalive reply: tvps must answer within this
    # layout on tvps (runbook §0-§1)
    "remote_root": "~/twilight",
    "source_dir": "~/twilight/source",
    "compose_file": "deploy/compose.yml",
    "service": "backend",
    "warehouse": "~/twilight/data/warehouse.duckdb",
    "container_warehouse": "/data/warehouse.duckdb",
    "env_file": "~/twilight/.env",
    "token_file": "~/twilight/.tokens/operator-test",
    "cutover_dir": "~/twilight/cutover",
    # release
    "release": DEFAULT_RELEASE,   # the release a bare command works on when no cutover is in progress (issue 25)
    "image_repo": "ghcr.io/lacatfly/twilight-drive",
    "previous_version": "v0.2.0",
    "local_repo": "~/twilight-drive",
    "dependency_prs": "38,39,41,42,43,44,46,47,48",
    "dependency_changes": "T2.7 lifespan injection",
    # §0 preflight: GitHub (PRs, CI), Tushare, traffic, the T+00:00 snapshot
    "github_api": "https://api.github.com",
    "github_repo": "LaCatFly/twilight-drive",
    "github_token_file": "",       # "" = $GH_TOKEN, else `gh auth token`
    "ci_check_name": "integration",  # the check run that runs core/tests/integration/test_service_price_route.py
    "lifespan_pr": "",             # the T2.7 lifespan-injection PR number ("" = not configured: the check fails)
    "tushare_url": "http://api.tushare.pro",
    "traffic_minutes": "10",       # no /price calls in the last N minutes …
    "traffic_max_calls": "0",      # … beyond this many
    "max_clock_skew_seconds": "60",  # tvps's clock vs this machine's: above it preflight fails (windows are tvps's)
    "batch_check": "",             # optional argv on tvps; exit 0 = no scheduled batch (e.g. a crontab check script)
    "snapshot_name": "warehouse.duckdb.pre-w4",   # beside the warehouse (runbook T+00:00)
    "snapshot_margin_mb": "256",   # free disk needed beyond the database's size
    # T+00:05 tag-push: where the published image is polled; "" = https://<image_repo's host>
    "registry_api": "",
    "publish_deadline": "1200",    # seconds tag-push waits for CI to publish the image (20 min)
    "publish_poll": "5",           # seconds between polls of the CI run and the registry
    "publish_workflow": ".github/workflows/publish.yml",   # the workflow whose tag run publishes the image (path or name)
    # T+00:05 deploy and §2.1 revert
    "deploy_deadline": "180",      # seconds the health gate waits for healthy
    "health_poll": "0.5",          # seconds between health polls (at most 1)
    "pull_timeout": "600",         # seconds a `compose pull` may take
    # T+00:25 Hermes reinstall and T+00:35 agent smoke (operator's machine; docs/agent.md)
    "hermes_command": "hermes",            # argv of the Hermes CLI (`skills list`)
    "hermes_home": "",                     # HERMES_HOME for every Hermes command; "" = Hermes' default ~/.hermes
    "hermes_path": "",                     # directories put before PATH for Hermes commands; "" = PATH as it is
    "hermes_skills_dir": "",               # "" = <HERMES_HOME>/skills
    "hermes_restart": "auto",              # auto (a gateway service if one runs, else none needed) | none | a command
    "hermes_startup_log": "",              # "" = <HERMES_HOME>/logs/agent.log (Hermes 0.19's main log)
    "hermes_register_pattern": "",         # optional regex of a startup-log register line; "" = `skills list` only
    "hermes_skill": "stock-research",      # the skill directory under skill/ in local_repo
    "agent_chat_command": "hermes chat -Q -q {prompt}",   # argv template (answer alone on stdout); one element holds {prompt}
    "hermes_install_timeout": "120",       # seconds per step
    "hermes_restart_timeout": "120",
    "hermes_verify_timeout": "60",
    "agent_timeout": "180",                # seconds one agent answer may take
    "agent_retries": "1",                  # retries of an agent prompt that timed out or failed
    "cache_ttl_seconds": "60",             # the backend's quote cache TTL during OPEN
    "cache_slack_seconds": "5",            # after TTL + slack a call must be a refetch
    # API
    "api_base": "https://api.fsagent.cc",
    "api_ca_bundle": "",
    "http_timeout": "10",
    "smoke_code": "600519.SH",
    # §3 monitoring and §4 diagnose
    "liquid_codes": "600519.SH,000001.SZ,300750.SZ",   # "liquid codes" of §4 (502 during OPEN)
    "expected_chain": "akshare-spot,tushare-daily",     # spec §6.2 provider chain, in order
    "monitor_copy_dir": "",        # inside the backend container; "" = its temp dir (locked-file copy)
    "monitor_timeout": "300",      # seconds one probe round may take over SSH
    "watch_floor_minutes": "0.25", # the shortest `inv monitor --watch` against a host (the twin lowers it)
    # §2 rollback triggers, checked each round by `inv monitor --guard` (docs/monitor.md "The §2 guard")
    "guard_5xx_pct": "5",          # /price 5xx above this share of the audited calls in the window …
    "guard_min_calls": "20",       # … once the window holds at least this many calls
    "guard_null_rounds": "3",      # close_raw null for a known-liquid code this many rounds in a row
    "guard_hermes_log": "",        # a Hermes log searched for a `value` parse error; "" = hermes_startup_log
    # §3 thresholds
    "thresholds": {
        "err_pct_healthy": "1",
        "err_pct_investigate": "3",
        "p95_healthy_ms": "400",
        "p95_investigate_ms": "600",
        "akshare_share_healthy_min": "50",
        "akshare_share_healthy_max": "90",
        "adj_tolerance": "0.01",
    },
    # §1/§2 budgets, minutes
    "budgets": {
        "cutover": "60",
        "rollback": "30",
        "preflight": "5",
        "tag_push": "10",
        "smoke": "5",
        "hermes_reinstall": "10",
        "agent_smoke": "15",
        "closeout": "5",
        "server_revert": "10",
        "hermes_revert": "10",
        "duckdb_revert": "5",
        "post_rollback": "5",
    },
    # local state: journal mirror; "" means $XDG_STATE_HOME/twilight-ops
    "state_dir": "",
    # shared with the twin's backend: seconds added to the wall clock
    "clock_offset_seconds": "0",
    # who is operating (lock, audit); "" means user@hostname
    "operator": "",
}

_THRESHOLD_KEYS = set(DEFAULTS["thresholds"])
_BUDGET_KEYS = set(DEFAULTS["budgets"])


@dataclasses.dataclass(frozen=True)
class Thresholds:
    err_pct_healthy: float
    err_pct_investigate: float
    p95_healthy_ms: float
    p95_investigate_ms: float
    akshare_share_healthy_min: float
    akshare_share_healthy_max: float
    adj_tolerance: float


@dataclasses.dataclass(frozen=True)
class Settings:
    host: str
    ssh_config: Path | None
    known_hosts: Path
    connect_timeout: float
    connect_attempts: int
    remote_root: str
    source_dir: str
    compose_file: str
    service: str
    warehouse: str
    container_warehouse: str
    env_file: str
    token_file: str
    cutover_dir: str
    image_repo: str
    previous_version: str
    local_repo: Path
    dependency_prs: tuple[int, ...]
    dependency_changes: tuple[str, ...]
    api_base: str
    api_ca_bundle: Path | None
    http_timeout: float
    smoke_code: str
    thresholds: Thresholds
    budgets: Mapping[str, int]
    state_dir: Path
    clock_offset_seconds: float
    operator: str
    ssh_op_timeout_s: float = 30.0
    liquid_codes: tuple[str, ...] = ()
    expected_chain: tuple[str, ...] = ()
    monitor_copy_dir: str | None = None
    monitor_timeout: float = 300.0
    github_api: str = "https://api.github.com"
    github_repo: str = "LaCatFly/twilight-drive"
    github_token_file: Path | None = None
    ci_check_name: str = "integration"
    lifespan_pr: int | None = None
    tushare_url: str = "http://api.tushare.pro"
    traffic_minutes: float = 10.0
    traffic_max_calls: int = 0
    max_clock_skew_seconds: float = 60.0
    batch_check: tuple[str, ...] = ()
    snapshot_name: str = "warehouse.duckdb.pre-w4"
    snapshot_margin_mb: int = 256
    registry_api: str = ""
    publish_deadline_s: float = 1200.0
    publish_poll_s: float = 5.0
    publish_workflow: str = ".github/workflows/publish.yml"
    deploy_deadline_s: float = 180.0
    health_poll_s: float = 0.5
    pull_timeout_s: float = 600.0
    watch_floor_minutes: float = 0.25
    hermes_command: tuple[str, ...] = ("hermes",)
    hermes_home: Path | None = None
    hermes_path: tuple[str, ...] = ()
    hermes_skills_dir: Path | None = None
    hermes_restart: tuple[str, ...] = ("auto",)
    hermes_startup_log: Path | None = None
    hermes_register_pattern: str = ""
    hermes_skill: str = "stock-research"
    agent_chat_command: tuple[str, ...] = ("hermes", "chat", "-Q", "-q", "{prompt}")
    hermes_install_timeout: float = 120.0
    hermes_restart_timeout: float = 120.0
    hermes_verify_timeout: float = 60.0
    agent_timeout: float = 180.0
    agent_retries: int = 1
    cache_ttl_seconds: float = 60.0
    cache_slack_seconds: float = 5.0
    guard_5xx_pct: float = 5.0
    guard_min_calls: int = 20
    guard_null_rounds: int = 3
    guard_hermes_log: Path | None = None
    release: str = DEFAULT_RELEASE

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in out.items()}


def _bad(key: str, problem: str, fix: str) -> BadInput:
    return BadInput(f"config twilight.{key} {problem}", fix)


def _number(raw: Mapping[str, Any], key: str, *, minimum: float | None = None, integer: bool = False, label: str | None = None,
            maximum: float | None = None) -> Any:
    label = label or key
    value = raw.get(key)
    try:
        if value is None or isinstance(value, bool) or (isinstance(value, str) and not value.isascii()):
            raise ValueError  # float() accepts Arabic-Indic and full-width digits
        num = float(value)
        if not math.isfinite(num):
            raise ValueError
        if integer:
            if num != int(num):
                raise ValueError
            num = int(num)
    except (TypeError, ValueError, OverflowError):  # OverflowError: a 400-digit integer
        raise _bad(label, f"is {validate._show(value)}, not a number", f"set twilight.{label} to a number in invoke.yaml") from None
    if minimum is not None and num < minimum:
        raise _bad(label, f"is {num}, below {minimum}", f"set twilight.{label} to at least {minimum}")
    if maximum is not None and num > maximum:
        raise _bad(label, f"is {num:g}, above {maximum:g}", f"set twilight.{label} to at most {maximum:g}")
    return num


def _path(value: Any, key: str) -> Path:
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise _bad(key, f"is {value!r}, not a path", f"set twilight.{key} to a file path")
    return Path(os.path.expanduser(str(value)))


LOOPBACK_NAMES = {"localhost"}
MAX_CONNECT_TIMEOUT = 120        # seconds
MAX_SSH_OP_TIMEOUT = 600         # seconds
MAX_CONNECT_ATTEMPTS = 10
MAX_HTTP_TIMEOUT = 120           # seconds
MAX_MONITOR_TIMEOUT = 3600       # seconds
MAX_CLOCK_SKEW = 3600            # seconds: beyond an hour the audit windows mean nothing
MAX_BUDGET = 24 * 60             # minutes


def _is_loopback(host: str) -> bool:
    """localhost or a loopback IP literal (127.0.0.0/8, ::1); never a name like 127.evil.example."""
    import ipaddress

    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
MAX_CLOCK_OFFSET = 10 * 366 * 86400  # ten years either way


def _api_base(value: Any) -> str:
    import httpx

    fix = "e.g. https://api.fsagent.cc"
    if not isinstance(value, str) or any(c.isspace() for c in value):
        raise _bad("api_base", f"is {value!r}, not an http(s) URL", fix)
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise _bad("api_base", f"is {value!r}, not a valid URL", fix) from None
    if url.scheme not in ("https", "http") or not url.host:
        raise _bad("api_base", f"is {value!r}, not an http(s) URL with a host", fix)
    if url.userinfo:
        raise _bad("api_base", "holds credentials (user:password@)", "drop them: the operator token is sent as a Bearer header")
    if url.scheme == "http" and not _is_loopback(url.host):
        raise _bad("api_base", f"is {value!r}: plain http would send the bearer token in cleartext",
                   "use https (http is allowed only for loopback, e.g. the twin)")
    if url.query or url.fragment:
        raise _bad("api_base", f"is {value!r}: a base URL has no query or fragment", fix)
    return value.rstrip("/")


def _ca_bundle(value: Any) -> Path:
    path = _path(value, "api_ca_bundle")
    if not path.is_file():
        raise _bad("api_ca_bundle", f"{str(path)!r} is not a file", "point it at a PEM bundle or set it to an empty string")
    return path


def _clock_offset(raw: Mapping[str, Any]) -> float:
    offset = float(_number(raw, "clock_offset_seconds"))
    if abs(offset) > MAX_CLOCK_OFFSET:
        raise _bad("clock_offset_seconds", f"is {offset:g}, more than ten years", "use 0 against tvps; the twin sets it itself")
    return offset


def _int_list(value: Any) -> list[int] | None:
    items = value.replace(",", " ").split() if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        return None
    out = []
    for item in items:
        try:
            if not str(item).isascii():
                raise ValueError
            n = int(str(item), 10)
        except ValueError:
            return None
        if n <= 0 or isinstance(item, bool):
            return None
        out.append(n)
    return out


def _str_list(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    if isinstance(value, (list, tuple)) and all(isinstance(p, str) for p in value):
        return list(value)
    return None


_PROVIDER_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


def _liquid_codes(value: Any) -> tuple[str, ...]:
    codes = _str_list(value)
    if not codes:
        raise _bad("liquid_codes", f"is {value!r}, not a list of ts_codes", 'e.g. "600519.SH,000001.SZ"')
    for code in codes:
        if not isinstance(code, str) or not validate.TS_CODE_RE.fullmatch(code):
            raise _bad("liquid_codes", f"holds {code!r}, not a ts_code", 'six digits and .SH, .SZ or .BJ, e.g. "600519.SH,000001.SZ"')
    return tuple(dict.fromkeys(codes))


def _expected_chain(value: Any) -> tuple[str, ...]:
    names = _str_list(value)
    if not names:
        raise _bad("expected_chain", f"is {value!r}, not a list of provider names", 'e.g. "akshare-spot,tushare-daily" (spec §6.2)')
    for name in names:
        if not _PROVIDER_RE.fullmatch(name):
            raise _bad("expected_chain", f"holds {name!r}, not a provider name", "lower-case letters, digits and ._- e.g. akshare-spot")
    if len(set(names)) != len(names):
        raise _bad("expected_chain", f"is {value!r}: a provider appears twice", "list each chain entry once, in order")
    return tuple(names)


def _container_dir(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not value.startswith("/"):
        raise _bad("monitor_copy_dir", f"is {value!r}, not an absolute path", 'a directory inside the backend container, or "" for its temp dir')
    try:
        return validate.remote_path(value, "config twilight.monitor_copy_dir")
    except BadInput as e:
        raise _bad("monitor_copy_dir", f"is {value!r}, not a safe path", e.hint or "") from None


_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$")
_CHECK_NAME_RE = re.compile(r"^[^\x00-\x1f\x7f-\x9f]{1,200}$")
_FILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,200}$")


def _http_url(value: Any, key: str, fix: str) -> str:
    import httpx

    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        raise _bad(key, f"is {value!r}, not an http(s) URL", fix)
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise _bad(key, f"is {value!r}, not a valid URL", fix) from None
    if url.scheme not in ("https", "http") or not url.host or url.userinfo or url.query or url.fragment:
        raise _bad(key, f"is {value!r}, not a plain http(s) URL with a host", fix)
    return value.rstrip("/")


def _preflight(raw: Mapping[str, Any]) -> dict[str, Any]:
    repo = raw.get("github_repo")
    if not isinstance(repo, str) or not _REPO_RE.fullmatch(repo):
        raise _bad("github_repo", f"is {repo!r}, not OWNER/NAME", "e.g. LaCatFly/twilight-drive")
    github_api = _http_url(raw.get("github_api"), "github_api", "e.g. https://api.github.com")
    if github_api.startswith("http://") and not _loopback_url(github_api):
        raise _bad("github_api", f"is {github_api!r}: plain http would send the GitHub token in cleartext",
                   "use https (http only for loopback, e.g. the twin)")
    check = raw.get("ci_check_name")
    if not isinstance(check, str) or not _CHECK_NAME_RE.fullmatch(check):
        raise _bad("ci_check_name", f"is {check!r}, not a check run name", "one printable line, e.g. integration")
    lifespan = raw.get("lifespan_pr")
    pr = None
    if lifespan not in (None, ""):
        prs = _int_list(str(lifespan))
        if not prs or len(prs) != 1:
            raise _bad("lifespan_pr", f"is {lifespan!r}, not a PR number", "the number of the T2.7 lifespan-injection PR, e.g. 45")
        pr = prs[0]
    name = raw.get("snapshot_name")
    if not isinstance(name, str) or not _FILE_NAME_RE.fullmatch(name) or name in (".", ".."):
        raise _bad("snapshot_name", f"is {name!r}, not a plain file name", "e.g. warehouse.duckdb.pre-w4 (it lives beside the warehouse)")
    batch = raw.get("batch_check")
    batch_argv = () if batch in ("", [], ()) else _argv(raw, "batch_check", "/usr/local/bin/no-batch-scheduled")
    token_file = raw.get("github_token_file")
    return dict(
        github_api=github_api,
        github_repo=repo,
        github_token_file=_path(token_file, "github_token_file") if token_file else None,
        ci_check_name=check,
        lifespan_pr=pr,
        tushare_url=_http_url(raw.get("tushare_url"), "tushare_url", "e.g. http://api.tushare.pro"),
        traffic_minutes=float(_number(raw, "traffic_minutes", minimum=1)),
        traffic_max_calls=int(_number(raw, "traffic_max_calls", minimum=0, integer=True)),
        max_clock_skew_seconds=float(_number(raw, "max_clock_skew_seconds", minimum=0, maximum=MAX_CLOCK_SKEW)),
        batch_check=tuple(batch_argv),
        snapshot_name=name,
        snapshot_margin_mb=int(_number(raw, "snapshot_margin_mb", minimum=0, integer=True)),
        registry_api=_registry_api(raw.get("registry_api")),
        publish_deadline_s=float(_number(raw, "publish_deadline", minimum=10)),
        publish_poll_s=float(_number(raw, "publish_poll", minimum=0.2)),
        publish_workflow=_publish_workflow(raw.get("publish_workflow")),
        deploy_deadline_s=float(_number(raw, "deploy_deadline", minimum=5)),
        health_poll_s=_poll(raw),
        pull_timeout_s=float(_number(raw, "pull_timeout", minimum=10)),
    )


def _publish_workflow(value: Any) -> str:
    fix = 'the workflow file\'s path, e.g. ".github/workflows/publish.yml", or the workflow\'s name, e.g. "publish"'
    if not isinstance(value, str) or not _CHECK_NAME_RE.fullmatch(value) or value != value.strip():
        raise _bad("publish_workflow", f"is {value!r}, not a workflow path or name", fix)
    if value.startswith("/") or ".." in value.split("/"):
        raise _bad("publish_workflow", f"is {value!r}: a workflow path is relative to the repo (.github/workflows/…)", fix)
    return value


def _registry_api(value: Any) -> str:
    if value in (None, ""):
        return ""
    url = _http_url(value, "registry_api", "e.g. https://ghcr.io, or \"\" to derive it from image_repo")
    if url.startswith("http://") and not _loopback_url(url):
        raise _bad("registry_api", f"is {url!r}: plain http only for loopback (the twin)", "use https")
    return url


def _poll(raw: Mapping[str, Any]) -> float:
    poll = float(_number(raw, "health_poll", minimum=0.1))
    if poll > 1:
        raise _bad("health_poll", f"is {poll:g}, more than 1 s", "the health gate polls at 1 s or faster, e.g. 0.5")
    return poll
_SKILL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$")


def _argv(raw: Mapping[str, Any], key: str, example: str) -> tuple[str, ...]:
    """A command as a shell-like line or a list of arguments (never run through a shell)."""
    import shlex

    value = raw.get(key)
    if isinstance(value, str):
        try:
            argv = shlex.split(value)
        except ValueError as e:
            raise _bad(key, f"is {value!r}: {e}", f"a command line, e.g. {example}") from None
    elif isinstance(value, (list, tuple)) and all(isinstance(a, str) for a in value):
        argv = list(value)
    else:
        raise _bad(key, f"is {value!r}, not a command", f"a command line or a list of arguments, e.g. {example}")
    if not argv or not argv[0]:
        raise _bad(key, "is empty", f"give the command, e.g. {example}")
    if any("\x00" in a or "\n" in a for a in argv):
        raise _bad(key, "holds a control character", "one command line")
    return tuple(argv)


def _agent(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The T+00:25 / T+00:35 keys (Hermes on the operator's machine, agent smoke)."""
    chat = _argv(raw, "agent_chat_command", '"hermes chat -Q -q {prompt}"')
    holders = [a for a in chat if "{prompt}" in a]
    if len(holders) != 1:
        raise _bad("agent_chat_command", f"has {len(holders)} arguments holding {{prompt}}, not one",
                   'put {prompt} in exactly one argument, e.g. "hermes chat -Q -q {prompt}"')
    if "{prompt}" in chat[0]:
        raise _bad("agent_chat_command", "has {prompt} in the program name", 'e.g. "hermes chat -Q -q {prompt}"')
    pattern = raw.get("hermes_register_pattern")
    try:
        if not isinstance(pattern, str):
            raise re.error("not text")
        re.compile(pattern)     # "" = no startup-log line is looked for (Hermes 0.19 writes none)
    except re.error as e:
        raise _bad("hermes_register_pattern", f"is {pattern!r}, not a regular expression ({e})",
                   r"e.g. registered skill stock-research\b") from None
    skill = raw.get("hermes_skill")
    if not isinstance(skill, str) or not _SKILL_RE.fullmatch(skill) or skill in (".", ".."):
        raise _bad("hermes_skill", f"is {skill!r}, not a skill directory name", "e.g. stock-research")
    dirs = _str_list(raw.get("hermes_path"))
    if dirs is None or any(not d.startswith(("/", "~")) for d in dirs):
        raise _bad("hermes_path", f"is {raw.get('hermes_path')!r}, not a list of absolute directories",
                   'e.g. "/opt/hermes/bin", or "" to keep PATH as it is')
    ttl = float(_number(raw, "cache_ttl_seconds", minimum=1))
    if ttl > 3600:
        raise _bad("cache_ttl_seconds", f"is {ttl:g}, more than an hour", "the W4 quote cache TTL during OPEN is 60")

    def optional_path(key: str) -> Path | None:
        value = raw.get(key)
        return _path(value, key) if value else None

    return dict(
        hermes_command=_argv(raw, "hermes_command", "hermes"),
        hermes_home=optional_path("hermes_home"),
        hermes_path=tuple(os.path.expanduser(d) for d in dirs),
        hermes_skills_dir=optional_path("hermes_skills_dir"),
        hermes_restart=_argv(raw, "hermes_restart", '"auto", "none" or e.g. "hermes gateway restart"'),
        hermes_startup_log=optional_path("hermes_startup_log"),
        hermes_register_pattern=pattern,
        hermes_skill=skill,
        agent_chat_command=chat,
        hermes_install_timeout=float(_number(raw, "hermes_install_timeout", minimum=1)),
        hermes_restart_timeout=float(_number(raw, "hermes_restart_timeout", minimum=1)),
        hermes_verify_timeout=float(_number(raw, "hermes_verify_timeout", minimum=1)),
        agent_timeout=float(_number(raw, "agent_timeout", minimum=1)),
        agent_retries=int(_number(raw, "agent_retries", minimum=0, integer=True)),
        cache_ttl_seconds=ttl,
        cache_slack_seconds=float(_number(raw, "cache_slack_seconds", minimum=0)),
    )


MAX_GUARD_MIN_CALLS = 100_000
MAX_GUARD_NULL_ROUNDS = 100


def _guard(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The §2 guard's thresholds (`inv monitor --guard`)."""
    log = raw.get("guard_hermes_log")
    return dict(
        guard_5xx_pct=float(_number(raw, "guard_5xx_pct", minimum=0, maximum=100)),
        guard_min_calls=int(_number(raw, "guard_min_calls", minimum=1, integer=True, maximum=MAX_GUARD_MIN_CALLS)),
        guard_null_rounds=int(_number(raw, "guard_null_rounds", minimum=1, integer=True, maximum=MAX_GUARD_NULL_ROUNDS)),
        guard_hermes_log=_path(log, "guard_hermes_log") if log else None,
    )


def _loopback_url(value: str) -> bool:
    import httpx

    return _is_loopback(httpx.URL(value).host)


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "twilight-ops"


def load_settings(config: Mapping[str, Any]) -> Settings:
    """Validate the merged `twilight` config section into Settings."""
    raw = dict(config)
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        raise _bad(unknown[0], "is not a known key", "remove it or fix the spelling; the known keys are DEFAULTS in twilight_ops/config.py")

    def rpath(key: str) -> str:
        try:
            return validate.remote_path(raw.get(key), f"config twilight.{key}")
        except BadInput as e:
            raise _bad(key, f"is {raw.get(key)!r}, not a safe remote path", e.hint or "") from None

    try:
        host = validate.host_alias(raw.get("host"), "config twilight.host")
        compose_file = validate.relative_path(raw.get("compose_file"), "config twilight.compose_file")
        service = validate.service_name(raw.get("service"), "config twilight.service")
        image_repo = validate.image_repo(raw.get("image_repo"), "config twilight.image_repo")
        previous = validate.version(raw.get("previous_version"), "config twilight.previous_version")
        release = validate.version(raw.get("release"), "config twilight.release")
        smoke_code = validate.ts_code(raw.get("smoke_code"), "config twilight.smoke_code")
    except BadInput as e:
        raise BadInput(e.message, e.hint) from None

    container_wh = raw.get("container_warehouse")
    if not isinstance(container_wh, str) or not container_wh.startswith("/"):
        raise _bad("container_warehouse", f"is {container_wh!r}, not an absolute path", "e.g. /data/warehouse.duckdb")
    validate.remote_path(container_wh, "config twilight.container_warehouse")

    api = _api_base(raw.get("api_base"))

    prs = _int_list(raw.get("dependency_prs"))
    if prs is None:
        raise _bad("dependency_prs", f"is {raw.get('dependency_prs')!r}, not a list of PR numbers", 'e.g. "38,39,41" or [38, 39, 41]')
    changes = _str_list(raw.get("dependency_changes"))
    if changes is None:
        raise _bad("dependency_changes", f"is {raw.get('dependency_changes')!r}, not a list of names", 'e.g. "T2.7 lifespan injection"')

    th_raw = raw.get("thresholds")
    if not isinstance(th_raw, Mapping):
        raise _bad("thresholds", "is not a mapping", "see DEFAULTS in twilight_ops/config.py")
    extra = sorted(set(th_raw) - _THRESHOLD_KEYS)
    if extra:
        raise _bad(f"thresholds.{extra[0]}", "is not a known key", "remove it or check the spelling")
    th = Thresholds(**{k: float(_number(th_raw, k, minimum=0, label=f"thresholds.{k}")) for k in sorted(_THRESHOLD_KEYS)})
    if th.err_pct_healthy > th.err_pct_investigate:
        raise _bad("thresholds.err_pct_healthy", "is above err_pct_investigate", "healthy must be below investigate")
    if th.p95_healthy_ms > th.p95_investigate_ms:
        raise _bad("thresholds.p95_healthy_ms", "is above p95_investigate_ms", "healthy must be below investigate")
    if not (0 <= th.akshare_share_healthy_min <= th.akshare_share_healthy_max <= 100):
        raise _bad("thresholds.akshare_share_healthy_min", "and _max must satisfy 0 <= min <= max <= 100", "e.g. 50 and 90")

    b_raw = raw.get("budgets")
    if not isinstance(b_raw, Mapping):
        raise _bad("budgets", "is not a mapping", "see DEFAULTS in twilight_ops/config.py")
    extra = sorted(set(b_raw) - _BUDGET_KEYS)
    if extra:
        raise _bad(f"budgets.{extra[0]}", "is not a known key", "remove it or check the spelling")
    budgets = {k: int(_number(b_raw, k, minimum=1, integer=True, label=f"budgets.{k}", maximum=MAX_BUDGET))
               for k in sorted(_BUDGET_KEYS)}

    ssh_cfg_raw = raw.get("ssh_config")
    ssh_config = _path(ssh_cfg_raw, "ssh_config") if ssh_cfg_raw else None
    ca = raw.get("api_ca_bundle")
    state_raw = raw.get("state_dir")
    operator = raw.get("operator") or f"{getpass.getuser()}@{socket.gethostname()}"
    validate.one_line(operator, "config twilight.operator", 100)

    return Settings(
        host=host,
        ssh_config=ssh_config,
        known_hosts=_path(raw.get("known_hosts"), "known_hosts"),
        connect_timeout=float(_number(raw, "connect_timeout", minimum=1, maximum=MAX_CONNECT_TIMEOUT)),
        connect_attempts=int(_number(raw, "connect_attempts", minimum=1, integer=True, maximum=MAX_CONNECT_ATTEMPTS)),
        ssh_op_timeout_s=float(_number(raw, "ssh_op_timeout_seconds", minimum=1, maximum=MAX_SSH_OP_TIMEOUT)),
        remote_root=rpath("remote_root"),
        source_dir=rpath("source_dir"),
        compose_file=compose_file,
        service=service,
        warehouse=rpath("warehouse"),
        container_warehouse=container_wh,
        env_file=rpath("env_file"),
        token_file=rpath("token_file"),
        cutover_dir=rpath("cutover_dir"),
        image_repo=image_repo,
        previous_version=previous,
        release=release,
        local_repo=_path(raw.get("local_repo"), "local_repo"),
        dependency_prs=tuple(prs),
        dependency_changes=tuple(changes),
        api_base=api.rstrip("/"),
        api_ca_bundle=_ca_bundle(ca) if ca else None,
        http_timeout=float(_number(raw, "http_timeout", minimum=0.1, maximum=MAX_HTTP_TIMEOUT)),
        smoke_code=smoke_code,
        thresholds=th,
        budgets=budgets,
        state_dir=_path(state_raw, "state_dir") if state_raw else default_state_dir(),
        clock_offset_seconds=_clock_offset(raw),
        operator=operator,
        liquid_codes=_liquid_codes(raw.get("liquid_codes")),
        expected_chain=_expected_chain(raw.get("expected_chain")),
        monitor_copy_dir=_container_dir(raw.get("monitor_copy_dir")),
        monitor_timeout=float(_number(raw, "monitor_timeout", minimum=5, maximum=MAX_MONITOR_TIMEOUT)),
        watch_floor_minutes=float(_number(raw, "watch_floor_minutes", minimum=0.005, maximum=60)),
        **_guard(raw),
        **_preflight(raw),
        **_agent(raw),
    )


def settings_from_context(c: Any) -> Settings:
    """Settings from an Invoke Context (its merged config's `twilight` section)."""
    runtime = getattr(c.config, "_runtime_path", None)
    if runtime is not None and not getattr(c.config, "_runtime_found", None):
        raise BadInput(f"config file {str(runtime)!r} (-f) was not loaded", "fix the path given to -f or drop -f")
    section = c.config.get("twilight", None)
    if section is None:
        raise BadInput("config has no twilight section", "run tasks through tasks.py (inv) or pass -f invoke.yaml")
    return load_settings(_plain(section))


def _plain(obj: Any) -> Any:
    """Invoke DataProxy → plain dicts/lists."""
    if hasattr(obj, "items"):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj
