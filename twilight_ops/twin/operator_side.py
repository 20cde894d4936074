"""The twin's operator side: the real Hermes Agent (PyPI hermes-agent, pinned), its HERMES_HOME,
and the model stand-in it talks to (model_server.py, model_standin.py).

    ~/.cache/twilight-ops/hermes-agent-0.19.0/      the venv (once per machine; .installed stamp)
    <twin>/operator/bin/hermes                      → that venv's bin/hermes (symlink)
    <twin>/operator/hermes-home/config.yaml         model (custom, the stand-in, context_length), tirith off,
                                                    no lazy pip installs, agent.api_max_retries 1,
                                                    agent.environment_probe off
    <twin>/operator/hermes-home/.update_check       Hermes's own update-check cache, marked fresh (no PyPI call)
    <twin>/operator/hermes-home/.operator-token     the operator token (mode 600)
    <twin>/operator/hermes-home/.operator-auth-header   `Authorization: Bearer …` (mode 600), curl -H @file
    <twin>/operator/hermes-home/skills/             where install-skill.sh puts skills
    <twin>/operator/model/                          the model stand-in (config.json, model.pid, model.log, fault.json)

Faults (set_hermes_fault): the answer styles are the model's (fault.json, read per request);
skill_disabled and model_down are config.yaml edits; skill_missing makes Hermes run in another
profile (`active_profile`), so it scans a skills dir without stock-research.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import yaml

from ..errors import BadInput, TwilightError, Unreachable
from ..secret import Secret
from . import model_server, model_standin
from .state import TwinState

HERMES_PACKAGE = "hermes-agent"
HERMES_VERSION = "0.19.0"
HERMES_FAULTS = ("skill_missing", "legacy_prompt", "price_unavailable", "verbose_wording", "verbose_wrong_date",
                 "verbose_unavailable", "skill_disabled", "model_down")
OTHER_PROFILE = "twin-elsewhere"   # skill_missing: Hermes runs in this profile, whose skills/ is empty
API_MAX_RETRIES = 1                 # 1 = a single attempt: a model-down answer in seconds, not ~26 s
FAR_FUTURE = 4102444800             # 2100-01-01: Hermes's update-check cache never expires (now - ts < 6 h)
CONTEXT_LENGTH = 65536              # model.context_length: Hermes takes it as given instead of probing for it
INSTALL_TIMEOUT = 900

Say = Callable[[str], None]


def _write(path: Path, data: str, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- the pinned venv (cached)


def hermes_venv_dir(cache_dir: Path | None = None) -> Path:
    from .image import default_cache_dir

    return Path(cache_dir or default_cache_dir()) / f"{HERMES_PACKAGE}-{HERMES_VERSION}"


def install_argv(venv: Path) -> list[str]:
    return [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
            f"{HERMES_PACKAGE}=={HERMES_VERSION}"]


def stamp_text() -> str:
    """What the cached venv's stamp says: the package and the interpreter it was made with.  Another
    interpreter (bootstrap.sh prefers Debian's optimized python3 to a pyenv build) makes it again."""
    return f"{HERMES_PACKAGE}=={HERMES_VERSION}\npython {sys.base_prefix} {sys.version.split()[0]}\n"


def ensure_hermes_venv(cache_dir: Path | None = None, say: Say = print) -> tuple[Path, bool]:
    """The venv with hermes-agent==HERMES_VERSION in the cache, installed if its stamp is missing
    (a partial install is removed and redone); (venv, installed_now).  Under the cache flock."""
    from .image import _cache_lock, default_cache_dir

    venv = hermes_venv_dir(cache_dir)
    stamp = venv / ".installed"
    want = stamp_text()
    with _cache_lock(Path(cache_dir or default_cache_dir())):
        if stamp.is_file() and stamp.read_text() == want and (venv / "bin" / "hermes").exists():
            return venv, False
        say(f"  operator   installing {HERMES_PACKAGE}=={HERMES_VERSION} into {venv} (once per machine, ~20-60 s)")
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, text=True, timeout=300)
        res = subprocess.run(install_argv(venv), capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
        lines = [ln for ln in (res.stderr or "").splitlines() if ln.strip() and "is ignored: it is neither" not in ln]
        if res.returncode != 0 or not (venv / "bin" / "hermes").exists():
            raise Unreachable(f"pip install {HERMES_PACKAGE}=={HERMES_VERSION} failed: "
                              f"{lines[-1] if lines else 'exit ' + str(res.returncode)}",
                              f"needs PyPI (or a mirror in pip.conf); re-run `inv twin.up` to retry ({venv})")
        stamp.write_text(want)
        return venv, True


# ----------------------------------------------------------------------------- HERMES_HOME


def read_config(home: Path) -> dict:
    path = home / "config.yaml"
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        return {}
    if not isinstance(data, dict):
        raise TwilightError(f"{path} is not a YAML mapping", "fix or delete it and re-run `inv twin.up`")
    return data


def write_config(home: Path, data: dict) -> None:
    _write(home / "config.yaml", yaml.safe_dump(data, sort_keys=False, allow_unicode=True), 0o600)


def twin_config(existing: dict, base_url: str, model: str) -> dict:
    """config.yaml with the twin's keys set over whatever else is there (pure)."""
    cfg = dict(existing)
    cfg["model"] = {**_section(cfg, "model"),
                    "provider": "custom", "base_url": base_url, "default": model, "context_length": CONTEXT_LENGTH}
    cfg["security"] = {**_section(cfg, "security"),
                       "tirith_enabled": False, "allow_lazy_installs": False}
    cfg["agent"] = {**_section(cfg, "agent"), "api_max_retries": API_MAX_RETRIES, "environment_probe": False}
    return cfg


def _section(cfg: dict, key: str) -> dict:
    """cfg[key] when it is a mapping, else {} (a hand-edited config.yaml may hold anything)."""
    value = cfg.get(key)
    return value if isinstance(value, dict) else {}


def with_disabled(cfg: dict, skill: str, disabled: bool) -> dict:
    """`skills: {disabled: [...]}` with `skill` added or removed (pure); other entries kept."""
    cfg = dict(cfg)
    skills = dict(_section(cfg, "skills"))
    names = [n for n in (skills.get("disabled") or []) if n != skill]
    if disabled:
        names.append(skill)
    if names:
        skills["disabled"] = names
    else:
        skills.pop("disabled", None)
    if skills:
        cfg["skills"] = skills
    else:
        cfg.pop("skills", None)
    return cfg


def update_check_cache() -> str:
    """Hermes's own update-check cache (hermes_cli/banner.py check_for_updates): a result for this
    version with a timestamp it always takes as fresh, so no Hermes command asks PyPI."""
    return json.dumps({"ts": FAR_FUTURE, "behind": 0, "rev": None, "ver": HERMES_VERSION}) + "\n"


def install_hermes(st: TwinState, api_base: str, token: Secret, say: Say = print) -> Path:
    """The pinned Hermes (cached venv), the model stand-in, HERMES_HOME; skills and the fault kept."""
    t0 = time.monotonic()
    venv, installed = ensure_hermes_venv(say=say)
    if installed:
        say(f"  operator   {HERMES_PACKAGE}=={HERMES_VERSION} installed in {time.monotonic() - t0:.1f}s")
    home = st.hermes_home
    for d in (st.hermes_bin_dir, home / "skills"):
        d.mkdir(parents=True, exist_ok=True)
    binary = st.hermes_bin_dir / "hermes"
    if binary.is_symlink() or binary.exists():
        binary.unlink()
    binary.symlink_to(venv / "bin" / "hermes")
    _write(home / ".operator-token", token.reveal() + "\n", 0o600)
    header = home / ".operator-auth-header"
    _write(header, f"Authorization: Bearer {token.reveal()}\n", 0o600)
    for retired in ("standin.json", "standin-faults.json"):   # the retired stand-in's files
        (home / retired).unlink(missing_ok=True)
    info = model_server.start_model(st.operator_dir, api_base, header)
    write_config(home, twin_config(read_config(home), info.base_url, model_server.MODEL))
    _write(home / ".update_check", update_check_cache(), 0o644)
    set_hermes_fault(home, current_fault(home))               # a fault set before this up stays on
    return binary


# ----------------------------------------------------------------------------- faults


def _fault_file(hermes_home: Path) -> Path:
    return model_server.ModelPaths.under(hermes_home.parent).fault


def current_fault(hermes_home: Path) -> str | None:
    try:
        name = json.loads(_fault_file(hermes_home).read_text()).get("fault")
    except (OSError, ValueError, AttributeError):
        return None
    return name if name in HERMES_FAULTS else None


def set_hermes_fault(hermes_home: Path, name: str | None) -> None:
    """Switch a Hermes fault on (`name`) or all off (None).  Every switch starts from a clean
    HERMES_HOME: stock-research enabled, the default profile, base_url at the live stand-in."""
    if name is not None and name not in HERMES_FAULTS:
        raise BadInput(f"hermes fault {name!r} is unknown", "known: " + ", ".join(HERMES_FAULTS))
    if not (hermes_home / "config.yaml").is_file():
        raise BadInput(f"no Hermes home at {hermes_home}", "run `inv twin.up` first")
    ports = model_server.model_ports(hermes_home.parent)
    if ports is None:
        raise BadInput(f"no model stand-in under {hermes_home.parent / 'model'}", "run `inv twin.up` first")
    live, down = (f"http://127.0.0.1:{p}/v1" for p in ports)
    cfg = read_config(hermes_home)
    cfg = with_disabled(cfg, model_standin.PRICE_SKILL, name == "skill_disabled")
    cfg["model"] = {**_section(cfg, "model"),
                    "base_url": down if name == "model_down" else live}
    write_config(hermes_home, cfg)
    profile = hermes_home / "profiles" / OTHER_PROFILE
    if name == "skill_missing":
        (profile / "skills").mkdir(parents=True, exist_ok=True)
        write_config(profile, with_disabled(cfg, model_standin.PRICE_SKILL, False))
        _write(profile / ".update_check", update_check_cache(), 0o644)
        _write(hermes_home / "active_profile", OTHER_PROFILE + "\n", 0o644)
    else:
        (hermes_home / "active_profile").unlink(missing_ok=True)
        shutil.rmtree(profile, ignore_errors=True)
    fault = _fault_file(hermes_home)
    if name is None:
        fault.unlink(missing_ok=True)
    else:
        fault.parent.mkdir(parents=True, exist_ok=True)
        _write(fault, json.dumps({"fault": name}) + "\n", 0o644)


def stop_model(st: TwinState) -> int | None:
    return model_server.stop_model(st.operator_dir)
