"""The target line: before any task reaches a host, say which host and which config.

    address(settings) -> (user, hostname, port)   as the ssh config resolves the alias
    config_files(config) -> [str]                  Invoke's config files in effect, lowest first
    target_line(settings, config) -> str           one line, e.g.
        target: tvps = deploy@203.0.113.7:22 · config: defaults + /x/invoke.yaml (-f) · ssh config: ~/.ssh/config
    announce(c, settings)                          print it on stderr (stdout stays JSON-clean)

An operator should never have to wonder whether a command hit production or the twin.
"""
from __future__ import annotations

import getpass
import os
import sys
from typing import Any

from .config import Settings
from .errors import BadInput
from .sanitize import printable

_LEVELS = (("system", "system"), ("user", "user"), ("project", "project"), ("runtime", "-f"))


def address(settings: Settings) -> tuple[str, str, int]:
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


def config_files(config: Any) -> list[str]:
    """The Invoke config files that were loaded, lowest precedence first, with their level."""
    out = []
    for level, label in _LEVELS:
        path = getattr(config, f"_{level}_path", None)
        # Invoke 2.2 marks a missing system/user invoke.py as found: trust only real files
        if path and getattr(config, f"_{level}_found", None) and os.path.isfile(os.path.expanduser(str(path))):
            out.append(f"{path} ({label})")
    return out


def target_line(settings: Settings, config: Any) -> str:
    user, hostname, port = address(settings)
    files = " + ".join(["defaults", *config_files(config)])
    env = sorted(k for k in os.environ if k.startswith("INVOKE_TWILIGHT_"))
    line = f"target: {settings.host} = {user}@{hostname}:{port} · config: {files}"
    if env:
        line += f" + env {', '.join(env)}"
    line += f" · ssh config: {settings.ssh_config or 'none'}"
    return printable(line)


def announce(c: Any, settings: Settings) -> None:
    """Print the target line on stderr; call it before the task opens any connection."""
    sys.stderr.write(target_line(settings, c.config) + "\n")
    sys.stderr.flush()
