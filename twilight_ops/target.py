"""The per-run target: everything one task run knows about where it acts, built once.

    t = Target.from_context(c, version=...)     # in a task body
    t.settings      validated Settings
    t.ssh           the SSH executor for tvps (connects on first use; announces the target first:
                    `target: tvps = user@host:port · config: defaults + F (-f) · ssh config: P`, on stderr)
    t.local         the local executor (the operator's machine, Terminal A)
    t.layout        absolute remote paths (builders.layout.Layout)
    t.token         the operator token, read once from tvps, as a Secret
    t.version       the run's release tag, fixed once (see resolve_version; Target.for_release fixes it
                    up front from --version, the cutover in progress or twilight.release)
    t.journals      the journal store (local + tvps mirror); t.journal() the run's journal
    t.audit(...)    one append-only line in tvps's audit log
    t.fact(F, ...)  a (command, parser) fact read over SSH
    t.services()    the running services (compose ps + inspect + image digests), cached
    t.wait_healthy  the health gate (health.wait_healthy)

Phases take a Target and never rebuild any of this.  Heavy imports (paramiko, httpx)
happen only when a property is first used, so `inv --list` stays fast.
"""
from __future__ import annotations

import getpass
import os
import sys
from typing import Any, Callable, TextIO

from . import release, validate
from .config import Settings, SshSettings, settings_from_context
from .errors import BadInput, TwilightError
from .local import LocalExecutor
from .sanitize import printable
from .secret import Secret

UNKNOWN_VERSION = "unknown"


class Target:
    def __init__(self, settings: Settings, *, version: str | None = None, config_files: tuple[str, ...] = (),
                 announce: TextIO | None = sys.stderr, why: str | None = None):
        self.settings = settings
        self.release_why = why if version else None     # named on the target line: release: V (why)
        self.config_files = config_files
        self.local = LocalExecutor()
        self._announce_to = announce
        self._version = validate.version(version) if version else None
        self._version_from_host = False
        self._ssh: Any = None
        self._layout: Any = None
        self._token: Secret | None = None
        self._services: list | None = None
        self._journals: Any = None

    @classmethod
    def from_context(cls, c: Any, *, version: str | None = None) -> "Target":
        """Settings from the task's Invoke config; the version validated before anything connects."""
        settings = settings_from_context(c)
        return cls(settings, version=version or None, config_files=config_files_in_effect(c.config),
                   why=release.EXPLICIT if version else None)

    @classmethod
    def for_release(cls, c: Any, version: str = "") -> "Target":
        """The Target of a task that works on "this cutover": --version (validated), else the cutover
        in progress (the local journal copies), else twilight.release; a --version that differs from
        a cutover in progress is BadInput.  Nothing connects."""
        from .journal import local_dir

        explicit = validate.version(version) if version else None
        settings = settings_from_context(c)
        chosen = release.choose(explicit, release.in_progress(local_dir(settings.state_dir, settings.host)),
                                settings.release)
        return cls(settings, version=chosen.version, config_files=config_files_in_effect(c.config), why=chosen.why)

    # -- sides --------------------------------------------------------------
    @property
    def ssh(self):
        if self._ssh is None:
            from .remote import SSHExecutor

            if self._announce_to is not None:      # before anything connects, even before a bad ssh config fails
                self._announce_to.write(self.target_line() + "\n")
                self._announce_to.flush()
            self._ssh = SSHExecutor(self.settings)
        return self._ssh

    @property
    def runtime_file(self) -> str | None:
        """The `-f FILE` this run was given (Invoke's runtime config), so a printed command can repeat it."""
        for f in self.config_files:
            if f.endswith(" (-f)"):
                return f.removesuffix(" (-f)")
        return None

    @property
    def prefix(self) -> str:
        """`[INVOKE_TWILIGHT_…=v …] inv [-f FILE]`: how this run was invoked (runbook.invocation), the start
        of every next-step line (runbook.next_step), so the printed command aims at the same target."""
        from .runbook import invocation

        return invocation(self.runtime_file, os.environ)

    def command(self, rest: str) -> str:
        """`[INVOKE_TWILIGHT_…=v …] inv [-f FILE] rest`: a command to print, aimed at the same config and
        target as this run (its prefix: the env settings too, as every next-step line)."""
        return f"{self.prefix} {rest}"

    def target_line(self) -> str:
        """One line naming the host alias, its address and the config in effect."""
        user, hostname, port = address(self.settings)
        files = " + ".join(["defaults", *self.config_files])
        env = sorted(k for k in os.environ if k.startswith("INVOKE_TWILIGHT_"))
        line = f"target: {self.settings.host} = {user}@{hostname}:{port} · config: {files}"
        if env:
            line += f" + env {', '.join(env)}"
        line += f" · ssh config: {self.settings.ssh_config or 'none'}"
        if self.release_why and self._version:
            line += " · " + release.Release(self._version, self.release_why).describe()
        return printable(line)

    @property
    def connected(self) -> bool:
        return self._ssh is not None

    def close(self) -> None:
        if self._ssh is None:
            return
        if self._journals is not None:
            self._journals.flush_all(quiet=True)     # the mirror gets what a batch or step end did not send
        try:
            self._ssh.flush_appends()                # audit lines no later operation carried
        except TwilightError as e:
            print(f"warning: the audit log on {self.settings.host} misses this run's last line(s) ({e.line()[:160]}); "
                  "the journal has every step", file=sys.stderr, flush=True)
        finally:
            self._ssh.close(quiet=True)

    def __enter__(self) -> "Target":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what the run knows ---------------------------------------------------
    @property
    def layout(self):
        if self._layout is None:
            from .builders.layout import layout

            self._layout = layout(self.settings, self.ssh.home)
        return self._layout

    @property
    def token(self) -> Secret:
        if self._token is None:
            self._token = self.ssh.read_secret(self.layout.token_file)
            if self._journals is not None:
                self._journals.secrets.append(self._token)
        return self._token

    @property
    def token_if_read(self) -> Secret | None:
        return self._token

    def fact(self, fact: Any, *args: object) -> Any:
        from .health import read_fact

        return read_fact(self.ssh, fact, *args)

    def services(self, refresh: bool = False) -> list:
        if self._services is None or refresh:
            from .health import read_services

            self._services = read_services(self.ssh, self.layout, self.settings.image_repo)
        return self._services

    def service(self, refresh: bool = False):
        """The configured service (backend), or None when compose lists none."""
        from .health import service_of

        return service_of(self.services(refresh), self.settings.service)

    def wait_healthy(self, deadline_s: float, *, poll_s: float = 0.5, say: Callable[[str], None] | None = None) -> Any:
        """health.wait_healthy on tvps (-> health.Waited); the cached services are read again afterwards."""
        from .health import wait_healthy

        self._services = None
        try:
            return wait_healthy(self.ssh, self.layout, deadline_s, poll_s=poll_s, say=say)
        finally:
            self._services = None

    # -- the run's version, journal and audit --------------------------------
    @property
    def version(self) -> str:
        if self._version is None:
            self._version = self.resolve_version()
            self._version_from_host = True
        return self._version

    @property
    def version_from_host(self) -> bool:
        """The version was not given: it was read from tvps (the running tag or the lock)."""
        return self._version_from_host

    @property
    def version_given(self) -> bool:
        return self._version is not None

    def resolve_version(self) -> str:
        """The release this run belongs to when --version is not given: the running tag;
        when pinned by digest (after a rollback) the version the deploy lock names;
        else 'unknown'.  Anything read from tvps is validated like --version."""
        from . import lock

        svc = self.service()
        if svc is not None and svc.version and _valid_version(svc.version):
            return svc.version
        holder = lock.read_holder(self.ssh, self.layout)
        if holder is not None and _valid_version(holder.version):
            return holder.version
        return UNKNOWN_VERSION

    @property
    def journals(self):
        if self._journals is None:
            from .journal import JournalStore

            self._journals = JournalStore(self.settings.state_dir, self.settings.host, self.layout, self.ssh)
            if self._token is not None:
                self._journals.secrets.append(self._token)
        return self._journals

    def journal(self, *, fresh: bool = False):
        """The run's one journal object (every phase changes this one; nothing reloads it).  fresh=True,
        once the deploy lock is ours: merge in what another run appended since it was loaded."""
        return self.journals.held(self.version, fresh=fresh, host=self.settings.host, operator=self.settings.operator)

    def audit(self, action: str, outcome: str, detail: str = "", version: str | None = None) -> None:
        from . import audit

        audit.append(self.ssh, self.layout,
                     audit.audit_line(self.settings.operator, action, version or self.version, outcome, detail))


def _valid_version(value: str) -> bool:
    try:
        validate.version(value)
    except BadInput:
        return False
    return True


_LEVELS = (("system", "system"), ("user", "user"), ("project", "project"), ("runtime", "-f"))


def config_files_in_effect(config: Any) -> tuple[str, ...]:
    """The Invoke config files that were loaded, lowest precedence first, with their level."""
    out = []
    for level, label in _LEVELS:
        path = getattr(config, f"_{level}_path", None)
        # Invoke 2.2 marks a missing system/user invoke.py as found: trust only real files
        if path and getattr(config, f"_{level}_found", None) and os.path.isfile(os.path.expanduser(str(path))):
            out.append(f"{path} ({label})")
    return tuple(out)


def address(settings: SshSettings) -> tuple[str, str, int]:
    """(user, hostname, port) the ssh config gives the host alias, as Fabric will use them."""
    from .remote import _ssh_config

    found = _ssh_config(settings).lookup(settings.host)
    port_raw = found.get("port", "22")
    try:
        port = int(str(port_raw), 10)
        if not 0 < port < 65536:
            raise ValueError
    except ValueError:
        where = settings.ssh_config or "the ssh config"
        raise BadInput(f"ssh config {where}: Port {port_raw!r} for {settings.host} is not a port number",
                       "set Port to a number from 1 to 65535") from None
    return found.get("user") or getpass.getuser(), found.get("hostname") or settings.host, port
