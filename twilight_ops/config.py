"""Configuration: the `twilight` keys of Invoke's config, declared once, by section.

Each key is one field of a section (`SshSettings`, `GitHubSettings`, `HermesSettings`, …):
`key(default, parser, doc)` gives its default as written in invoke.yaml, the parser that
validates it (config_parse.py) and the one-line doc. From these come `DEFAULTS` (Invoke's
defaults), `load_settings` (validation into a frozen `Settings`) and the table in
docs/config.md (`docs_table()`, `inv config --docs`; a unit test keeps them equal).

Invoke layers them: these defaults < project `invoke.yaml` < `INVOKE_TWILIGHT_*` env vars <
`-f FILE` (Invoke ranks the runtime file highest).  Numbers and lists default to *strings* on
purpose: Invoke casts an env var to the default's type and would crash with a traceback on
`INVOKE_TWILIGHT_CONNECT_TIMEOUT=abc`; strings reach our own validation, which answers with
one line and exit 2.  Anything wrong is one BadInput line naming the key, raised before any
connection is opened.

`Settings` is every section at once (flat: `settings.host`, `settings.state_dir`) and hands out
each section as a view (`settings.github`, `settings.hermes`, …): a function that needs one
section takes that type, and a Settings is one too.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Mapping, TypeVar

from . import config_parse as p
from . import validate
from .errors import BadInput
from .release import DEFAULT_RELEASE

MAX_CONNECT_TIMEOUT = 120        # seconds
MAX_SSH_OP_TIMEOUT = 600         # seconds
MAX_CONNECT_ATTEMPTS = 10
MAX_HTTP_TIMEOUT = 120           # seconds
MAX_MONITOR_TIMEOUT = 3600       # seconds
MAX_CLOCK_SKEW = 3600            # seconds: beyond an hour the audit windows mean nothing
MAX_BUDGET = 24 * 60             # minutes
MAX_GUARD_MIN_CALLS = 100_000
MAX_GUARD_NULL_ROUNDS = 100


@dataclasses.dataclass(frozen=True)
class Key:
    name: str              # the key under `twilight` (for a nested section: under it)
    default: Any           # as written in invoke.yaml: numbers and lists as strings
    parse: p.Parser
    doc: str


def key(default: Any, parse: p.Parser, doc: str, *, name: str | None = None) -> Any:
    """Declare a config key as a section field (the field's name is the key unless `name` is given)."""
    return dataclasses.field(metadata={"key": (name, default, parse, doc)})


def keys(section: type) -> list[tuple[str, Key]]:
    """(attribute, Key) of every key a section declares, in order."""
    out = []
    for f in dataclasses.fields(section):
        if "key" in f.metadata:
            name, default, parse, doc = f.metadata["key"]
            out.append((f.name, Key(name or f.name, default, parse, doc)))
    return out


# ---------------------------------------------------------------- the sections

@dataclasses.dataclass(frozen=True)
class SshSettings:
    TITLE: ClassVar[str] = "ssh: how to reach tvps"
    host: str = key("tvps", p.checked(validate.host_alias), "tvps's Host alias in ssh_config")
    ssh_config: Path | None = key("~/.ssh/config", p.optional_path, 'the ssh_config read for host; "" = none')
    known_hosts: Path = key("~/.ssh/known_hosts", p.path, "tvps's host key is checked here unless ssh_config names a UserKnownHostsFile")
    connect_timeout: float = key("10", p.number(minimum=1, maximum=MAX_CONNECT_TIMEOUT), "seconds to open the SSH connection (at most 120)")
    connect_attempts: int = key("3", p.number(minimum=1, integer=True, maximum=MAX_CONNECT_ATTEMPTS),
                                "connection attempts before tvps is unreachable (at most 10)")
    ssh_op_timeout_s: float = key("30", p.number(minimum=1, maximum=MAX_SSH_OP_TIMEOUT),
                                  "seconds tvps has to answer a channel open, a command start or a keepalive (at most 600)",
                                  name="ssh_op_timeout_seconds")
    ssh_loop_python: tuple[str, ...] = key("python3", p.argv("python3"),
                                           "the interpreter of the request loop on tvps (one round trip per operation); "
                                           "if it cannot start, one channel per operation")


@dataclasses.dataclass(frozen=True)
class RemoteSettings:
    TITLE: ClassVar[str] = "remote: the layout on tvps (runbook §0-§1)"
    remote_root: str = key("~/twilight", p.remote_path, "twilight's directory on tvps")
    source_dir: str = key("~/twilight/source", p.remote_path, "the checkout of twilight-drive on tvps")
    compose_file: str = key("deploy/compose.yml", p.checked(validate.relative_path), "the compose file, relative to source_dir")
    service: str = key("backend", p.checked(validate.service_name), "the backend's compose service")
    warehouse: str = key("~/twilight/data/warehouse.duckdb", p.remote_path, "the DuckDB warehouse on tvps")
    container_warehouse: str = key("/data/warehouse.duckdb", p.container_path, "the warehouse inside the backend container")
    env_file: str = key("~/twilight/.env", p.remote_path, "the backend's .env on tvps (TUSHARE_TOKEN is read there, on tvps)")
    token_file: str = key("~/twilight/.tokens/operator-test", p.remote_path, "the operator test token on tvps (never printed)")
    cutover_dir: str = key("~/twilight/cutover", p.remote_path, "the deploy lock, journal mirror and audit log on tvps")


@dataclasses.dataclass(frozen=True)
class DriveSettings:
    TITLE: ClassVar[str] = "drive: the twilight-drive releases and the operator's clone"
    release: str = key(DEFAULT_RELEASE, p.checked(validate.version),
                       "the release a bare command works on when no cutover is in progress (validated like --version)")
    previous_version: str = key("v0.2.0", p.checked(validate.version), "the release a rollback returns to")
    local_repo: Path = key("~/twilight-drive", p.path, "the operator's clone of twilight-drive (tag, skill, close-out)")


@dataclasses.dataclass(frozen=True)
class GitHubSettings:
    TITLE: ClassVar[str] = "github: PRs, CI and the publish workflow (§0, T+00:05)"
    github_api: str = key("https://api.github.com", p.github_api, "the GitHub API (http only for loopback)")
    github_repo: str = key("LaCatFly/twilight-drive", p.github_repo, "twilight-drive on GitHub, OWNER/NAME")
    github_token_file: Path | None = key("", p.optional_path, 'a file holding the GitHub token; "" = $GH_TOKEN, else `gh auth token`')
    ci_check_name: str = key("integration", p.check_name,
                             "the check run that runs core/tests/integration/test_service_price_route.py")
    lifespan_pr: int | None = key("", p.lifespan_pr, 'the T2.7 lifespan-injection PR number; "" = not configured (the check fails)')
    dependency_prs: tuple[int, ...] = key("38,39,41,42,43,44,46,47,48", p.pr_numbers, "the PRs that must be merged (§0)")
    dependency_changes: tuple[str, ...] = key("T2.7 lifespan injection", p.names, "the changes those PRs must hold, by name")
    publish_workflow: str = key(".github/workflows/publish.yml", p.publish_workflow,
                                "the workflow whose tag run publishes the image (its path, file name or name)")


@dataclasses.dataclass(frozen=True)
class RegistrySettings:
    TITLE: ClassVar[str] = "registry: the image and where its publication is polled (T+00:05 tag-push)"
    image_repo: str = key("ghcr.io/lacatfly/twilight-drive", p.checked(validate.image_repo), "the backend image's repository")
    registry_api: str = key("", p.registry_api, '''where the manifest is asked for; "" = https://<image_repo's host>''')
    publish_deadline_s: float = key("1200", p.number(minimum=10), "seconds tag-push waits for CI to publish the image (20 min)",
                                    name="publish_deadline")
    publish_poll_s: float = key("5", p.number(minimum=0.2), "seconds between polls of the CI run and the registry", name="publish_poll")


@dataclasses.dataclass(frozen=True)
class PreflightSettings:
    TITLE: ClassVar[str] = "preflight: §0 checks and the T+00:00 snapshot"
    tushare_url: str = key("http://api.tushare.pro", p.http_url("e.g. http://api.tushare.pro"), "the Tushare API, asked from tvps")
    traffic_minutes: float = key("10", p.number(minimum=1), "no /price calls in the last N minutes …")
    traffic_max_calls: int = key("0", p.number(minimum=0, integer=True), "… beyond this many")
    max_clock_skew_seconds: float = key("60", p.number(minimum=0, maximum=MAX_CLOCK_SKEW),
                                        "tvps's clock vs this machine's: above it preflight fails (at most 3600)")
    batch_check: tuple[str, ...] = key("", p.optional_argv("/usr/local/bin/no-batch-scheduled"),
                                       'a command on tvps; exit 0 = no scheduled batch; "" = not checked')
    snapshot_name: str = key("warehouse.duckdb.pre-w4", p.snapshot_name, "the T+00:00 snapshot's file name, beside the warehouse")
    snapshot_margin_mb: int = key("256", p.number(minimum=0, integer=True), "free disk needed beyond the database's size, MB")


@dataclasses.dataclass(frozen=True)
class DeploySettings:
    TITLE: ClassVar[str] = "deploy: T+00:05 deploy and the §2.1 revert"
    deploy_deadline_s: float = key("180", p.number(minimum=5), "seconds the health gate waits for healthy", name="deploy_deadline")
    health_poll_s: float = key("0.5", p.health_poll, "seconds between health polls (at most 1)", name="health_poll")
    pull_timeout_s: float = key("600", p.number(minimum=10), "seconds a `compose pull` may take", name="pull_timeout")


@dataclasses.dataclass(frozen=True)
class HermesSettings:
    TITLE: ClassVar[str] = "hermes: T+00:25 Hermes reinstall and T+00:35 agent smoke, on the operator's machine (docs/agent.md)"
    hermes_command: tuple[str, ...] = key("hermes", p.argv("hermes"), "the Hermes CLI argv")
    hermes_home: Path | None = key("", p.optional_path, 'HERMES_HOME for every Hermes command; "" = ~/.hermes')
    hermes_path: tuple[str, ...] = key("", p.directories, 'directories put before PATH for Hermes commands; "" = PATH as it is')
    hermes_skills_dir: Path | None = key("", p.optional_path, 'where installed skills are compared; "" = <HERMES_HOME>/skills')
    hermes_restart: tuple[str, ...] = key("auto", p.argv('"auto", "none" or e.g. "hermes gateway restart"'),
                                          "auto (a gateway service if one runs, else none needed), none, or a command")
    hermes_startup_log: Path | None = key("", p.optional_path, 'Hermes\' main log; "" = <HERMES_HOME>/logs/agent.log')
    hermes_register_pattern: str = key("", p.regex, 'a regex of a startup-log register line; "" = `skills list` only')
    hermes_skill: str = key("stock-research", p.skill_name, "the skill directory under skill/ in local_repo")
    agent_chat_command: tuple[str, ...] = key("hermes chat -Q -q {prompt}", p.chat_command,
                                              "argv template printing the answer alone; exactly one argument holds {prompt}")
    hermes_install_timeout: float = key("120", p.number(minimum=1), "seconds the skill install may take")
    hermes_restart_timeout: float = key("120", p.number(minimum=1), "seconds the restart may take")
    hermes_verify_timeout: float = key("60", p.number(minimum=1), "seconds the registration check may take")
    agent_timeout: float = key("180", p.number(minimum=1), "seconds one agent answer may take")
    agent_retries: int = key("1", p.number(minimum=0, integer=True), "retries of an agent prompt that timed out or failed")
    cache_ttl_seconds: float = key("60", p.cache_ttl, "the backend's quote cache TTL during OPEN (at most 3600)")
    cache_slack_seconds: float = key("5", p.number(minimum=0), "after TTL + slack a call must be a refetch")


@dataclasses.dataclass(frozen=True)
class ApiSettings:
    TITLE: ClassVar[str] = "api: the backend's HTTP API"
    api_base: str = key("https://api.fsagent.cc", p.api_base, "the API's base URL (http only for loopback)")
    api_ca_bundle: Path | None = key("", p.ca_bundle, 'a PEM bundle to verify the API with; "" = the system\'s')
    http_timeout: float = key("10", p.number(minimum=0.1, maximum=MAX_HTTP_TIMEOUT), "seconds per HTTP request (at most 120)")
    smoke_code: str = key("600519.SH", p.checked(validate.ts_code), "the ts_code the smoke asks for")


@dataclasses.dataclass(frozen=True)
class MonitorSettings:
    TITLE: ClassVar[str] = "monitor: §3 monitoring and §4 diagnose (docs/monitor.md)"
    liquid_codes: tuple[str, ...] = key("600519.SH,000001.SZ,300750.SZ", p.liquid_codes,
                                        "§4's liquid codes (502 during OPEN); the first is diagnose's live probe")
    expected_chain: tuple[str, ...] = key("akshare-spot,tushare-daily", p.provider_chain, "spec §6.2 provider chain, in order")
    monitor_copy_dir: str | None = key("", p.container_dir, 'inside the backend container, where a locked warehouse is copied; "" = its temp dir')
    monitor_timeout: float = key("300", p.number(minimum=5, maximum=MAX_MONITOR_TIMEOUT), "seconds one probe round may take over SSH")
    watch_floor_minutes: float = key("0.25", p.number(minimum=0.005, maximum=60),
                                     "the shortest `inv monitor --watch` interval against a host (the twin lowers it)")


@dataclasses.dataclass(frozen=True)
class GuardSettings:
    TITLE: ClassVar[str] = "guard: the §2 rollback triggers, checked each round by `inv monitor --guard`"
    guard_5xx_pct: float = key("5", p.number(minimum=0, maximum=100), "/price 5xx above this share (0-100) of the audited calls …")
    guard_min_calls: int = key("20", p.number(minimum=1, integer=True, maximum=MAX_GUARD_MIN_CALLS),
                               "… once the window holds at least this many calls (1-100000)")
    guard_null_rounds: int = key("3", p.number(minimum=1, integer=True, maximum=MAX_GUARD_NULL_ROUNDS),
                                 "close_raw null for a known-liquid code this many rounds in a row (1-100)")
    guard_hermes_log: Path | None = key("", p.optional_path, 'a Hermes log searched for a `value` parse error; "" = hermes_startup_log')


@dataclasses.dataclass(frozen=True)
class LocalSettings:
    TITLE: ClassVar[str] = "local: this machine"
    state_dir: Path = key("", p.state_dir, 'the local journal copies and own-call records; "" = $XDG_STATE_HOME/twilight-ops')
    clock_offset_seconds: float = key("0", p.clock_offset, "seconds added to the wall clock (shared with the twin's backend)")
    operator: str = key("", p.operator, 'who is operating (lock, audit); "" = user@hostname')


@dataclasses.dataclass(frozen=True)
class Thresholds:
    TITLE: ClassVar[str] = "thresholds: the §3 bands"
    NESTED: ClassVar[str] = "thresholds"
    err_pct_healthy: float = key("1", p.number(minimum=0), "error % below this: healthy")
    err_pct_investigate: float = key("3", p.number(minimum=0), "error % above this: investigate (between: watch)")
    p95_healthy_ms: float = key("400", p.number(minimum=0), "p95 latency below this: healthy")
    p95_investigate_ms: float = key("600", p.number(minimum=0), "p95 latency above this: investigate (between: watch)")
    akshare_share_healthy_min: float = key("50", p.number(minimum=0), "akshare-spot's share during OPEN, %: healthy from …")
    akshare_share_healthy_max: float = key("90", p.number(minimum=0), "… to this %")
    adj_tolerance: float = key("0.01", p.number(minimum=0), "relative tolerance of the smoke's close_qfq / close_hfq adj_factor math")

    def check(self) -> None:
        if self.err_pct_healthy > self.err_pct_investigate:
            raise p.bad("thresholds.err_pct_healthy", "is above err_pct_investigate", "healthy must be below investigate")
        if self.p95_healthy_ms > self.p95_investigate_ms:
            raise p.bad("thresholds.p95_healthy_ms", "is above p95_investigate_ms", "healthy must be below investigate")
        if not (0 <= self.akshare_share_healthy_min <= self.akshare_share_healthy_max <= 100):
            raise p.bad("thresholds.akshare_share_healthy_min", "and _max must satisfy 0 <= min <= max <= 100", "e.g. 50 and 90")


_MINUTES = p.number(minimum=1, integer=True, maximum=MAX_BUDGET)


@dataclasses.dataclass(frozen=True)
class Budgets:
    """Declares the budget keys; Settings.budgets is them as a {name: minutes} mapping."""
    TITLE: ClassVar[str] = "budgets: the §1/§2 budgets, minutes (at most 1440)"
    NESTED: ClassVar[str] = "budgets"
    cutover: int = key("60", _MINUTES, "the whole cutover")
    rollback: int = key("30", _MINUTES, "the whole rollback")
    preflight: int = key("5", _MINUTES, "§0 preflight")
    tag_push: int = key("10", _MINUTES, "T+00:05 tag push and publish")
    smoke: int = key("5", _MINUTES, "T+00:15 smoke")
    hermes_reinstall: int = key("10", _MINUTES, "T+00:25 Hermes reinstall")
    agent_smoke: int = key("15", _MINUTES, "T+00:35 agent smoke")
    closeout: int = key("5", _MINUTES, "the close-out")
    server_revert: int = key("10", _MINUTES, "rollback: the server revert (pin, pull, up, health)")
    hermes_revert: int = key("10", _MINUTES, "rollback: the Hermes revert")
    duckdb_revert: int = key("5", _MINUTES, "rollback: the DuckDB check and restore")
    post_rollback: int = key("5", _MINUTES, "rollback: the verification after it")


@dataclasses.dataclass(frozen=True)
class Limits:
    """The nested sections, as Settings holds them."""
    thresholds: Thresholds
    budgets: Mapping[str, int]


SECTIONS: tuple[type, ...] = (SshSettings, RemoteSettings, DriveSettings, GitHubSettings, RegistrySettings,
                              PreflightSettings, DeploySettings, HermesSettings, ApiSettings, MonitorSettings,
                              GuardSettings, LocalSettings)
NESTED: tuple[type, ...] = (Thresholds, Budgets)

S = TypeVar("S")


def view(settings: Any, section: type[S]) -> S:
    """One section's keys out of a Settings (or out of anything holding them)."""
    return section(**{a: getattr(settings, a) for a, _ in keys(section)})


@dataclasses.dataclass(frozen=True)
class Settings(LocalSettings, GuardSettings, MonitorSettings, ApiSettings, HermesSettings, DeploySettings,
               PreflightSettings, RegistrySettings, GitHubSettings, DriveSettings, RemoteSettings, SshSettings, Limits):
    """Every section at once: flat attributes, and each section as a view."""

    @property
    def ssh(self) -> SshSettings:
        return view(self, SshSettings)

    @property
    def remote(self) -> RemoteSettings:
        return view(self, RemoteSettings)

    @property
    def drive(self) -> DriveSettings:
        return view(self, DriveSettings)

    @property
    def github(self) -> GitHubSettings:
        return view(self, GitHubSettings)

    @property
    def registry(self) -> RegistrySettings:
        return view(self, RegistrySettings)

    @property
    def preflight(self) -> PreflightSettings:
        return view(self, PreflightSettings)

    @property
    def deploy(self) -> DeploySettings:
        return view(self, DeploySettings)

    @property
    def hermes(self) -> HermesSettings:
        return view(self, HermesSettings)

    @property
    def api(self) -> ApiSettings:
        return view(self, ApiSettings)

    @property
    def monitor(self) -> MonitorSettings:
        return view(self, MonitorSettings)

    @property
    def guard(self) -> GuardSettings:
        return view(self, GuardSettings)

    @property
    def local(self) -> LocalSettings:
        return view(self, LocalSettings)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for section in SECTIONS:
            for attr, _ in keys(section):
                value = getattr(self, attr)
                out[attr] = str(value) if isinstance(value, Path) else value
        out["thresholds"] = dataclasses.asdict(self.thresholds)
        out["budgets"] = dict(self.budgets)
        return out


def _defaults() -> dict[str, Any]:
    out: dict[str, Any] = {k.name: k.default for section in SECTIONS for _, k in keys(section)}
    for section in NESTED:
        out[section.NESTED] = {k.name: k.default for _, k in keys(section)}   # type: ignore[attr-defined]
    return out


DEFAULTS: dict[str, Any] = _defaults()


def _parse(section: type, raw: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    return {attr: k.parse(raw.get(k.name), prefix + k.name) for attr, k in keys(section)}


def _nested(section: type, raw: Mapping[str, Any]) -> Any:
    name: str = section.NESTED  # type: ignore[attr-defined]
    sub = raw.get(name)
    if not isinstance(sub, Mapping):
        raise p.bad(name, "is not a mapping", "see docs/config.md (inv config --docs)")
    extra = sorted(set(sub) - {k.name for _, k in keys(section)})
    if extra:
        raise p.bad(f"{name}.{extra[0]}", "is not a known key", "remove it or check the spelling")
    return section(**_parse(section, sub, prefix=f"{name}."))


def load_settings(config: Mapping[str, Any]) -> Settings:
    """Validate the merged `twilight` config section into Settings."""
    raw = dict(config)
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        raise p.bad(unknown[0], "is not a known key", "remove it or fix the spelling; the known keys are in docs/config.md")
    values: dict[str, Any] = {}
    for section in SECTIONS:
        values.update(_parse(section, raw))
    thresholds = _nested(Thresholds, raw)
    thresholds.check()
    budgets = dataclasses.asdict(_nested(Budgets, raw))
    return Settings(**values, thresholds=thresholds, budgets=budgets)


def docs_table() -> str:
    """The generated part of docs/config.md: one table per section, from the declarations."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines: list[str] = []
    for section in (*SECTIONS, *NESTED):
        prefix = f"{section.NESTED}." if section in NESTED else ""   # type: ignore[attr-defined]
        lines += [f"### {section.TITLE}", "", "| key | default | meaning |", "|---|---|---|"]  # type: ignore[attr-defined]
        for _, k in keys(section):
            default = f"`{k.default}`" if k.default != "" else '`""`'
            lines.append(f"| `{prefix}{k.name}` | {cell(default)} | {cell(k.doc)} |")
        lines.append("")
    return "\n".join(lines)


DEFAULTS_MODULE = "twilight_ops/config_defaults.py"


def defaults_module() -> str:
    """The text of config_defaults.py: DEFAULTS as a literal, which `inv` imports instead of this module
    (a unit test keeps the file equal to this)."""
    def entry(name: str, value: Any, indent: str) -> list[str]:
        if isinstance(value, dict):
            return [f"{indent}{name!r}: {{", *(line for k, v in value.items() for line in entry(k, v, indent + "    ")),
                    f"{indent}}},"]
        return [f"{indent}{name!r}: {value!r},"]

    return "\n".join([
        '"""Invoke\'s defaults for the `twilight` config section: config.DEFAULTS as a literal.  Generated, do not edit.',
        "",
        "tasks/__init__.py configures the namespace with these rather than importing config.py: making its",
        "section dataclasses costs ≈ 10 ms, which `inv --list` and every task's --help need not pay (issue 22).",
        "tests/unit/test_config_docs.py keeps this file equal to the keys config.py declares; after changing one,",
        "write it again with",
        "",
        "    .venv/bin/python -c 'from twilight_ops import config; print(config.defaults_module(), end=\"\")' \\",
        f"        > {DEFAULTS_MODULE}",
        '"""',
        "from __future__ import annotations",
        "",
        "from typing import Any",
        "",
        "DEFAULTS: dict[str, Any] = {",
        *(line for name, value in DEFAULTS.items() for line in entry(name, value, "    ")),
        "}",
        "",
    ])


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


def show(value: Any) -> str:
    """A setting as `inv config` prints it: no Python reprs (None → "", a list → comma-separated)."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(show(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def config_rows(settings: Settings, layers: list[tuple[str, Mapping[str, Any]]]) -> list[tuple[str, str, str]]:
    """(key, value, source) of every twilight key (pure): the source is the first layer that sets it
    (layers strongest first: overrides, -f file, env, project …), else "default"."""
    def source(name: str, nested: str = "") -> str:
        for label, layer in layers:
            section = layer.get(nested) if nested else layer
            if isinstance(section, Mapping) and name in section:
                return label
        return "default"

    rows = [(k.name, show(getattr(settings, attr)), source(k.name)) for s in SECTIONS for attr, k in keys(s)]
    for section, values in ((Thresholds, dataclasses.asdict(settings.thresholds)), (Budgets, dict(settings.budgets))):
        nested = section.NESTED   # type: ignore[attr-defined]
        rows += [(f"{nested}.{k.name}", show(values.get(attr)), source(k.name, nested)) for attr, k in keys(section)]
    return rows


def unset_warnings(settings: Settings) -> list[str]:
    """Keys left unset that make a check fail later (pure)."""
    out = []
    if settings.lifespan_pr is None:
        out.append('lifespan_pr is not set: preflight\'s dependency check will fail; set twilight.lifespan_pr '
                   "to the T2.7 lifespan-injection PR's number in invoke.yaml")
    return out
