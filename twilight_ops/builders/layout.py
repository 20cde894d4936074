"""Layout: the absolute remote paths of one tvps (Settings + the remote $HOME)."""
from __future__ import annotations

import dataclasses
import posixpath

from ..config import Settings


@dataclasses.dataclass(frozen=True)
class Layout:
    source_dir: str
    compose_file: str        # absolute path of deploy/compose.yml
    service: str
    warehouse: str
    container_warehouse: str
    env_file: str
    token_file: str
    cutover_dir: str
    image_repo: str

    @property
    def lock_dir(self) -> str:
        return posixpath.join(self.cutover_dir, "lock")

    @property
    def lock_info(self) -> str:
        return posixpath.join(self.lock_dir, "holder.json")

    @property
    def audit_log(self) -> str:
        return posixpath.join(self.cutover_dir, "audit.log")

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


def layout(settings: Settings, home: str) -> Layout:
    source = expand_home(settings.source_dir, home)
    return Layout(
        source_dir=source,
        compose_file=posixpath.join(source, settings.compose_file),
        service=settings.service,
        warehouse=expand_home(settings.warehouse, home),
        container_warehouse=settings.container_warehouse,
        env_file=expand_home(settings.env_file, home),
        token_file=expand_home(settings.token_file, home),
        cutover_dir=expand_home(settings.cutover_dir, home),
        image_repo=settings.image_repo,
    )
