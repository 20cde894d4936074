"""The parsers of config values: `parse(value, key) -> typed value`, or one BadInput line naming
`twilight.<key>`.  config.py declares each key with one of these (or a factory's result)."""
from __future__ import annotations

import getpass
import math
import os
import re
import socket
from pathlib import Path
from typing import Any, Callable

from . import validate
from .errors import BadInput

Parser = Callable[[Any, str], Any]

LOOPBACK_NAMES = {"localhost"}


def bad(key: str, problem: str, fix: str) -> BadInput:
    return BadInput(f"config twilight.{key} {problem}", fix)


# ---------------------------------------------------------------- numbers

def number(*, minimum: float | None = None, maximum: float | None = None, integer: bool = False) -> Parser:
    def parse(value: Any, key: str) -> Any:
        try:
            if value is None or isinstance(value, bool) or (isinstance(value, str) and not value.isascii()):
                raise ValueError  # float() accepts Arabic-Indic and full-width digits
            num: float | int = float(value)
            if not math.isfinite(num):
                raise ValueError
            if integer:
                if num != int(num):
                    raise ValueError
                num = int(num)
        except (TypeError, ValueError, OverflowError):  # OverflowError: a 400-digit integer
            raise bad(key, f"is {validate._show(value)}, not a number", f"set twilight.{key} to a number in invoke.yaml") from None
        return _bounded(num, key, minimum, maximum)
    return parse


def _bounded(num: Any, key: str, minimum: float | None, maximum: float | None) -> Any:
    if minimum is not None and num < minimum:
        raise bad(key, f"is {num}, below {minimum}", f"set twilight.{key} to at least {minimum}")
    if maximum is not None and num > maximum:
        raise bad(key, f"is {num:g}, above {maximum:g}", f"set twilight.{key} to at most {maximum:g}")
    return num


def health_poll(value: Any, key: str) -> float:
    poll = float(number(minimum=0.1)(value, key))
    if poll > 1:
        raise bad(key, f"is {poll:g}, more than 1 s", "the health gate polls at 1 s or faster, e.g. 0.5")
    return poll


def cache_ttl(value: Any, key: str) -> float:
    ttl = float(number(minimum=1)(value, key))
    if ttl > 3600:
        raise bad(key, f"is {ttl:g}, more than an hour", "the W4 quote cache TTL during OPEN is 60")
    return ttl


MAX_CLOCK_OFFSET = 10 * 366 * 86400  # ten years either way


def clock_offset(value: Any, key: str) -> float:
    offset = float(number()(value, key))
    if abs(offset) > MAX_CLOCK_OFFSET:
        raise bad(key, f"is {offset:g}, more than ten years", "use 0 against tvps; the twin sets it itself")
    return offset


def lifespan_pr(value: Any, key: str) -> int | None:
    if value in (None, ""):
        return None
    prs = int_list(str(value))
    if not prs or len(prs) != 1:
        raise bad(key, f"is {value!r}, not a PR number", "the number of the T2.7 lifespan-injection PR, e.g. 45")
    return prs[0]


# ---------------------------------------------------------------- lists

def int_list(value: Any) -> list[int] | None:
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


def str_list(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    if isinstance(value, (list, tuple)) and all(isinstance(p, str) for p in value):
        return list(value)
    return None


def pr_numbers(value: Any, key: str) -> tuple[int, ...]:
    prs = int_list(value)
    if prs is None:
        raise bad(key, f"is {value!r}, not a list of PR numbers", 'e.g. "38,39,41" or [38, 39, 41]')
    return tuple(prs)


def names(value: Any, key: str) -> tuple[str, ...]:
    out = str_list(value)
    if out is None:
        raise bad(key, f"is {value!r}, not a list of names", 'e.g. "T2.7 lifespan injection"')
    return tuple(out)


def liquid_codes(value: Any, key: str) -> tuple[str, ...]:
    codes = str_list(value)
    if not codes:
        raise bad(key, f"is {value!r}, not a list of ts_codes", 'e.g. "600519.SH,000001.SZ"')
    for code in codes:
        if not isinstance(code, str) or not validate.TS_CODE_RE.fullmatch(code):
            raise bad(key, f"holds {code!r}, not a ts_code", 'six digits and .SH, .SZ or .BJ, e.g. "600519.SH,000001.SZ"')
    return tuple(dict.fromkeys(codes))


_PROVIDER_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


def provider_chain(value: Any, key: str) -> tuple[str, ...]:
    chain = str_list(value)
    if not chain:
        raise bad(key, f"is {value!r}, not a list of provider names", 'e.g. "akshare-spot,tushare-daily" (spec §6.2)')
    for name in chain:
        if not _PROVIDER_RE.fullmatch(name):
            raise bad(key, f"holds {name!r}, not a provider name", "lower-case letters, digits and ._- e.g. akshare-spot")
    if len(set(chain)) != len(chain):
        raise bad(key, f"is {value!r}: a provider appears twice", "list each chain entry once, in order")
    return tuple(chain)


def directories(value: Any, key: str) -> tuple[str, ...]:
    dirs = str_list(value)
    if dirs is None or any(not d.startswith(("/", "~")) for d in dirs):
        raise bad(key, f"is {value!r}, not a list of absolute directories", 'e.g. "/opt/hermes/bin", or "" to keep PATH as it is')
    return tuple(os.path.expanduser(d) for d in dirs)


# ---------------------------------------------------------------- text checked by validate.py

def checked(check: Callable[[Any, str], str]) -> Parser:
    """A validate.py check, its line naming `config twilight.<key>`."""
    def parse(value: Any, key: str) -> str:
        try:
            return check(value, f"config twilight.{key}")
        except BadInput as e:
            raise BadInput(e.message, e.hint) from None
    return parse


def remote_path(value: Any, key: str) -> str:
    try:
        return validate.remote_path(value, f"config twilight.{key}")
    except BadInput as e:
        raise bad(key, f"is {value!r}, not a safe remote path", e.hint or "") from None


def container_path(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise bad(key, f"is {value!r}, not an absolute path", "e.g. /data/warehouse.duckdb")
    validate.remote_path(value, f"config twilight.{key}")
    return value


def container_dir(value: Any, key: str) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not value.startswith("/"):
        raise bad(key, f"is {value!r}, not an absolute path", 'a directory inside the backend container, or "" for its temp dir')
    try:
        return validate.remote_path(value, f"config twilight.{key}")
    except BadInput as e:
        raise bad(key, f"is {value!r}, not a safe path", e.hint or "") from None


_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$")
_CHECK_NAME_RE = re.compile(r"^[^\x00-\x1f\x7f-\x9f]{1,200}$")
_FILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,200}$")
_SKILL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$")


def github_repo(value: Any, key: str) -> str:
    if not isinstance(value, str) or not _REPO_RE.fullmatch(value):
        raise bad(key, f"is {value!r}, not OWNER/NAME", "e.g. LaCatFly/twilight-drive")
    return value


def check_name(value: Any, key: str) -> str:
    if not isinstance(value, str) or not _CHECK_NAME_RE.fullmatch(value):
        raise bad(key, f"is {value!r}, not a check run name", "one printable line, e.g. integration")
    return value


def publish_workflow(value: Any, key: str) -> str:
    fix = 'the workflow file\'s path, e.g. ".github/workflows/publish.yml", or the workflow\'s name, e.g. "publish"'
    if not isinstance(value, str) or not _CHECK_NAME_RE.fullmatch(value) or value != value.strip():
        raise bad(key, f"is {value!r}, not a workflow path or name", fix)
    if value.startswith("/") or ".." in value.split("/"):
        raise bad(key, f"is {value!r}: a workflow path is relative to the repo (.github/workflows/…)", fix)
    return value


def snapshot_name(value: Any, key: str) -> str:
    if not isinstance(value, str) or not _FILE_NAME_RE.fullmatch(value) or value in (".", ".."):
        raise bad(key, f"is {value!r}, not a plain file name", "e.g. warehouse.duckdb.pre-w4 (it lives beside the warehouse)")
    return value


def skill_name(value: Any, key: str) -> str:
    if not isinstance(value, str) or not _SKILL_RE.fullmatch(value) or value in (".", ".."):
        raise bad(key, f"is {value!r}, not a skill directory name", "e.g. stock-research")
    return value


def regex(value: Any, key: str) -> str:
    """A regular expression; "" = none (Hermes 0.19 writes no register line)."""
    try:
        if not isinstance(value, str):
            raise re.error("not text")
        re.compile(value)
    except re.error as e:
        raise bad(key, f"is {value!r}, not a regular expression ({e})", r"e.g. registered skill stock-research\b") from None
    return value


def operator(value: Any, key: str) -> str:
    """Who is operating; "" = user@hostname."""
    name = value or f"{getpass.getuser()}@{socket.gethostname()}"
    validate.one_line(name, f"config twilight.{key}", 100)
    return str(name)


# ---------------------------------------------------------------- local paths

def path(value: Any, key: str) -> Path:
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise bad(key, f"is {value!r}, not a path", f"set twilight.{key} to a file path")
    return Path(os.path.expanduser(str(value)))


def optional_path(value: Any, key: str) -> Path | None:
    return path(value, key) if value else None


def ca_bundle(value: Any, key: str) -> Path | None:
    if not value:
        return None
    bundle = path(value, key)
    if not bundle.is_file():
        raise bad(key, f"{str(bundle)!r} is not a file", "point it at a PEM bundle or set it to an empty string")
    return bundle


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "twilight-ops"


def state_dir(value: Any, key: str) -> Path:
    return path(value, key) if value else default_state_dir()


# ---------------------------------------------------------------- commands

def argv(example: str) -> Parser:
    """A command as a shell-like line or a list of arguments (never run through a shell)."""
    def parse(value: Any, key: str) -> tuple[str, ...]:
        import shlex

        if isinstance(value, str):
            try:
                out = shlex.split(value)
            except ValueError as e:
                raise bad(key, f"is {value!r}: {e}", f"a command line, e.g. {example}") from None
        elif isinstance(value, (list, tuple)) and all(isinstance(a, str) for a in value):
            out = list(value)
        else:
            raise bad(key, f"is {value!r}, not a command", f"a command line or a list of arguments, e.g. {example}")
        if not out or not out[0]:
            raise bad(key, "is empty", f"give the command, e.g. {example}")
        if any("\x00" in a or "\n" in a for a in out):
            raise bad(key, "holds a control character", "one command line")
        return tuple(out)
    return parse


def optional_argv(example: str) -> Parser:
    def parse(value: Any, key: str) -> tuple[str, ...]:
        return () if value in ("", [], ()) else argv(example)(value, key)
    return parse


def chat_command(value: Any, key: str) -> tuple[str, ...]:
    example = '"hermes chat -Q -q {prompt}"'
    chat = argv(example)(value, key)
    holders = [a for a in chat if "{prompt}" in a]
    if len(holders) != 1:
        raise bad(key, f"has {len(holders)} arguments holding {{prompt}}, not one",
                  f"put {{prompt}} in exactly one argument, e.g. {example}")
    if "{prompt}" in chat[0]:
        raise bad(key, "has {prompt} in the program name", f"e.g. {example}")
    return chat


# ---------------------------------------------------------------- URLs

def is_loopback(host: str) -> bool:
    """localhost or a loopback IP literal (127.0.0.0/8, ::1); never a name like 127.evil.example."""
    import ipaddress

    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _loopback_url(value: str) -> bool:
    import httpx

    return is_loopback(httpx.URL(value).host)


def api_base(value: Any, key: str) -> str:
    import httpx

    fix = "e.g. https://api.fsagent.cc"
    if not isinstance(value, str) or any(c.isspace() for c in value):
        raise bad(key, f"is {value!r}, not an http(s) URL", fix)
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise bad(key, f"is {value!r}, not a valid URL", fix) from None
    if url.scheme not in ("https", "http") or not url.host:
        raise bad(key, f"is {value!r}, not an http(s) URL with a host", fix)
    if url.userinfo:
        raise bad(key, "holds credentials (user:password@)", "drop them: the operator token is sent as a Bearer header")
    if url.scheme == "http" and not is_loopback(url.host):
        raise bad(key, f"is {value!r}: plain http would send the bearer token in cleartext",
                  "use https (http is allowed only for loopback, e.g. the twin)")
    if url.query or url.fragment:
        raise bad(key, f"is {value!r}: a base URL has no query or fragment", fix)
    return value.rstrip("/")


def http_url(fix: str) -> Parser:
    def parse(value: Any, key: str) -> str:
        import httpx

        if not isinstance(value, str) or not value or any(c.isspace() for c in value):
            raise bad(key, f"is {value!r}, not an http(s) URL", fix)
        try:
            url = httpx.URL(value)
        except (httpx.InvalidURL, ValueError, TypeError):
            raise bad(key, f"is {value!r}, not a valid URL", fix) from None
        if url.scheme not in ("https", "http") or not url.host or url.userinfo or url.query or url.fragment:
            raise bad(key, f"is {value!r}, not a plain http(s) URL with a host", fix)
        return value.rstrip("/")
    return parse


def github_api(value: Any, key: str) -> str:
    url = http_url("e.g. https://api.github.com")(value, key)
    if url.startswith("http://") and not _loopback_url(url):
        raise bad(key, f"is {url!r}: plain http would send the GitHub token in cleartext",
                  "use https (http only for loopback, e.g. the twin)")
    return str(url)


def registry_api(value: Any, key: str) -> str:
    if value in (None, ""):
        return ""
    url = http_url("e.g. https://ghcr.io, or \"\" to derive it from image_repo")(value, key)
    if url.startswith("http://") and not _loopback_url(url):
        raise bad(key, f"is {url!r}: plain http only for loopback (the twin)", "use https")
    return str(url)
