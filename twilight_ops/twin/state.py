"""The twin's own bookkeeping: where it lives, its ports and account (state.json)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path


@dataclasses.dataclass
class TwinState:
    dir: str
    user: str
    group: str
    root_mode: bool
    ssh_port: int = 0
    api_port: int = 0
    registry_port: int = 0
    digests: dict[str, str] = dataclasses.field(default_factory=dict)
    github_port: int = 0
    tushare_port: int = 0
    drive_commits: dict[str, str] = dataclasses.field(default_factory=dict)  # "v0.2.0", "w4" → SHA
    token_port: int = 0  # the registry's token server (registry_auth)
    rtt_ms: int = 0  # the WAN profile (`twin.up --rtt`): 0 = no relay
    relay_ports: dict[str, int] = dataclasses.field(default_factory=dict)  # "ssh", "api", "registry" → relay port

    @property
    def base(self) -> Path:
        return Path(self.dir)

    @property
    def home(self) -> Path:
        if self.root_mode:
            return self.base / "home" / self.user
        return self.base / "home" / "operator"

    @property
    def ssh_dir(self) -> Path:
        return self.base / "ssh"

    @property
    def invoke_yaml(self) -> Path:
        return self.base / "invoke.yaml"

    @property
    def remote_root(self) -> Path:
        return self.home / "twilight"

    @property
    def data_dir(self) -> Path:
        return self.remote_root / "data"

    def operator_port(self, name: str) -> int:
        """The port the operator's side uses for `name` (ssh, api, registry): the relay's under a WAN profile."""
        direct = {"ssh": self.ssh_port, "api": self.api_port, "registry": self.registry_port}[name]
        return self.relay_ports.get(name, direct) if self.rtt_ms else direct

    @property
    def registry(self) -> str:
        return f"127.0.0.1:{self.registry_port}"

    @property
    def image_repo(self) -> str:
        return f"{self.registry}/lacatfly/twilight-drive"

    # the stand-ins and the twilight-drive repos (preflight, tag-push)
    github_repo = "lacatfly/twilight-drive"

    @property
    def github_api(self) -> str:
        return f"http://127.0.0.1:{self.github_port}"

    @property
    def github_token_file(self) -> Path:
        return self.base / "operator" / "gh-token"

    @property
    def tushare_url(self) -> str:
        return f"http://127.0.0.1:{self.tushare_port}/"

    @property
    def origin_repo(self) -> Path:
        return self.base / "git" / "twilight-drive.git"

    @property
    def operator_clone(self) -> Path:
        return self.base / "operator" / "twilight-drive"

    @property
    def tvps_source(self) -> Path:
        return self.remote_root / "source"

    @property
    def operator_dir(self) -> Path:
        """The operator's machine: Hermes Agent, its home, the model stand-in, the local twilight-drive repo."""
        return self.base / "operator"

    @property
    def hermes_home(self) -> Path:
        return self.operator_dir / "hermes-home"

    @property
    def hermes_bin_dir(self) -> Path:
        return self.operator_dir / "bin"

    def save(self) -> None:
        path = self.base / "state.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(self), indent=2))
        os.replace(tmp, path)


def hermes_config(st: TwinState) -> dict:
    """Where the twin's Hermes Agent lives, as the config keys agent-smoke and hermes-reinstall
    read (HERMES_HOME for the commands' environment, the bin dir for PATH).  The chat command,
    the restart and the registration check are the production defaults: the twin exercises them."""
    return {
        "hermes_home": str(st.hermes_home),
        "hermes_command": str(st.hermes_bin_dir / "hermes"),
        "hermes_path": str(st.hermes_bin_dir),
        "hermes_skills_dir": str(st.hermes_home / "skills"),
    }


def load_or_new(base: Path) -> TwinState:
    path = base / "state.json"
    if path.exists():
        return TwinState(**json.loads(path.read_text()))
    tag = hashlib.sha256(str(base.resolve()).encode()).hexdigest()[:6]
    root = os.geteuid() == 0
    import getpass
    user = f"twin{tag}" if root else getpass.getuser()
    return TwinState(dir=str(base.resolve()), user=user, group=f"twin{tag}dk", root_mode=root)
