"""Layout: the absolute remote paths of one tvps (the remote section of Settings + the remote $HOME)."""
from __future__ import annotations

import dataclasses
import posixpath

from ..config import RemoteSettings, view


@dataclasses.dataclass(frozen=True)
class Layout:
    remote: RemoteSettings   # the keys as configured (~/-relative); the properties expand them
    home: str

    def _home(self, path: str) -> str:
        return expand_home(path, self.home)

    @property
    def source_dir(self) -> str:
        return self._home(self.remote.source_dir)

    @property
    def compose_file(self) -> str:
        """The absolute path of deploy/compose.yml."""
        return posixpath.join(self.source_dir, self.remote.compose_file)

    @property
    def service(self) -> str:
        return self.remote.service

    @property
    def warehouse(self) -> str:
        return self._home(self.remote.warehouse)

    @property
    def container_warehouse(self) -> str:
        return self.remote.container_warehouse

    @property
    def env_file(self) -> str:
        return self._home(self.remote.env_file)

    @property
    def token_file(self) -> str:
        return self._home(self.remote.token_file)

    @property
    def cutover_dir(self) -> str:
        return self._home(self.remote.cutover_dir)

    @property
    def lock_dir(self) -> str:
        return posixpath.join(self.cutover_dir, "lock")

    @property
    def lock_info(self) -> str:
        return posixpath.join(self.lock_dir, "holder.json")

    @property
    def audit_log(self) -> str:
        return posixpath.join(self.cutover_dir, "audit.log")

    def probe_path(self, sha256: str) -> str:
        """The monitor probe's body kept on tvps under its content hash (monitor/script.cached_body)."""
        return posixpath.join(self.cutover_dir, f"probe-{sha256[:16]}.py")

    @property
    def data_dir(self) -> str:
        return posixpath.dirname(self.warehouse)

    @property
    def compose_env(self) -> str:
        """The compose project's .env (beside compose.yml): where a deploy persists TWILIGHT_VERSION,
        so a later bare `docker compose up -d` keeps the deployed version."""
        return posixpath.join(posixpath.dirname(self.compose_file), ".env")

    def journal_path(self, version: str) -> str:
        from .. import validate

        return posixpath.join(self.cutover_dir, f"journal-{validate.journal_version(version)}.jsonl")

    def legacy_journal_path(self, version: str) -> str:
        """A journal written before the event log (one JSON object): read once and converted."""
        from .. import validate

        return posixpath.join(self.cutover_dir, f"journal-{validate.journal_version(version)}.json")


def expand_home(path: str, home: str) -> str:
    if path == "~":
        return home
    return posixpath.join(home, path[2:]) if path.startswith("~/") else path


def layout(settings: RemoteSettings, home: str) -> Layout:
    """The Layout of a Settings (or of its remote section) under the remote $HOME."""
    return Layout(view(settings, RemoteSettings), home)
