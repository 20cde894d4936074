"""Edge validators: every operator-supplied value passes here before anything runs.

Each raises BadInput with one line naming what is wrong and what to do.
"""
from __future__ import annotations

import math
import re

from .errors import BadInput

VERSION_RE = re.compile(r"^v\d{1,4}\.\d{1,4}\.\d{1,4}(?:-[0-9A-Za-z][0-9A-Za-z.-]{0,63})?$", re.ASCII)
TS_CODE_RE = re.compile(r"^\d{6}\.(?:SH|SZ|BJ)$", re.ASCII)
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)
HOST_ALIAS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$", re.ASCII)
# remote paths: absolute or ~/-relative, plain characters only, no '..' segment
REMOTE_PATH_RE = re.compile(r"^(?:~(?:/[A-Za-z0-9._/@+-]*)?|/[A-Za-z0-9._/@+-]*)$", re.ASCII)
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$", re.ASCII)
IMAGE_REPO_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::\d{1,5})?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+$", re.ASCII)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "...'"


def version(value: object, what: str = "--version") -> str:
    if not isinstance(value, str) or not VERSION_RE.fullmatch(value):
        raise BadInput(
            f"{what} {_show(value)} is not a release tag",
            "use the form v0.3.0 or v0.3.0-w4-cutover (letters, digits, '.', '-')",
        )
    return value


UNKNOWN_VERSION = "unknown"   # the journal of a smoke whose release could not be told


def journal_version(value: object, what: str = "journal version") -> str:
    """A version that names a journal file: a release tag, or "unknown"."""
    return value if value == UNKNOWN_VERSION else version(value, what)


def ts_code(value: object, what: str = "--code") -> str:
    if not isinstance(value, str) or not TS_CODE_RE.fullmatch(value):
        raise BadInput(f"{what} {_show(value)} is not a ts_code", "use six digits and .SH, .SZ or .BJ, e.g. 600519.SH")
    return value


def trade_date(value: object, what: str = "--date") -> str:
    import datetime as dt

    if not isinstance(value, str) or not DATE_RE.fullmatch(value):
        raise BadInput(f"{what} {_show(value)} is not a date", "use YYYY-MM-DD, e.g. 2024-01-02")
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        raise BadInput(f"{what} {_show(value)} is not a calendar date", "use YYYY-MM-DD, e.g. 2024-01-02") from None
    return value


def ascii_number(value: object, what: str, example: str) -> str:
    """A number as the operator typed it: ASCII only (float() and int() accept Arabic-Indic
    and full-width digits, which no operator means)."""
    text = str(value).strip()
    if not text.isascii():
        raise BadInput(f"{what} {_show(value)} holds non-ASCII characters", f"type the number with ASCII digits, {example}")
    return text


def hours(value: object, what: str = "--hours", maximum: float = 24 * 30) -> float:
    if isinstance(value, str):
        value = ascii_number(value, what, "e.g. --hours 1")
    try:
        h = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BadInput(f"{what} {_show(value)} is not a number of hours", "e.g. --hours 1 or --hours 0.5") from None
    if not math.isfinite(h) or h <= 0 or h > maximum:
        raise BadInput(f"{what} {_show(value)} is out of range", f"give more than 0 and at most {maximum:g} hours")
    return h


def number(value: object, what: str) -> float:
    """A finite number given on the command line (e.g. --seconds 10)."""
    try:
        n = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise BadInput(f"{what} {_show(value)} is not a number", f"e.g. {what} 10") from None
    if not math.isfinite(n):
        raise BadInput(f"{what} {_show(value)} is not a number", f"e.g. {what} 10")
    return n


def positive_int(value: object, what: str, maximum: int = 10**6) -> int:
    value = ascii_number(value, what, "e.g. 3")
    try:
        n = int(str(value), 10)
    except (TypeError, ValueError):
        raise BadInput(f"{what} {_show(value)} is not a whole number", f"give a whole number from 1 to {maximum}") from None
    if n < 1 or n > maximum:
        raise BadInput(f"{what} {_show(value)} is out of range", f"give a whole number from 1 to {maximum}")
    return n


def host_alias(value: object, what: str = "host") -> str:
    if not isinstance(value, str) or not HOST_ALIAS_RE.fullmatch(value):
        raise BadInput(f"{what} {_show(value)} is not a host alias", "use an ~/.ssh/config Host name such as tvps")
    return value


def remote_path(value: object, what: str) -> str:
    if (
        not isinstance(value, str)
        or not REMOTE_PATH_RE.fullmatch(value)
        or any(part == ".." for part in value.split("/"))
    ):
        raise BadInput(
            f"{what} {_show(value)} is not a safe remote path",
            "use an absolute or ~/ path of letters, digits and ._/@+- without '..'",
        )
    return value.rstrip("/") or "/"


def relative_path(value: object, what: str) -> str:
    if (
        not isinstance(value, str)
        or not value
        or value.startswith(("/", "~"))
        or not re.fullmatch(r"[A-Za-z0-9._/@+-]+", value, re.ASCII)
        or any(part in ("..", "") for part in value.split("/"))
    ):
        raise BadInput(f"{what} {_show(value)} is not a safe relative path", "use a path like deploy/compose.yml")
    return value


def image_repo(value: object, what: str = "image_repo") -> str:
    if not isinstance(value, str) or not IMAGE_REPO_RE.fullmatch(value):
        raise BadInput(f"{what} {_show(value)} is not an image repository", "e.g. ghcr.io/lacatfly/twilight-drive")
    return value


def digest(value: object, what: str = "digest") -> str:
    if not isinstance(value, str) or not DIGEST_RE.fullmatch(value):
        raise BadInput(f"{what} {_show(value)} is not an image digest", "use sha256: followed by 64 hex digits")
    return value


def service_name(value: object, what: str = "service") -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,62}", value, re.ASCII):
        raise BadInput(f"{what} {_show(value)} is not a compose service name", "e.g. backend")
    return value


def http_status(value: object, what: str = "--status") -> int:
    """An HTTP status as typed: ASCII digits, 100..599."""
    text = ascii_number(value, what, "e.g. --status 200")
    if not text.isdigit() or len(text) > 3:
        raise BadInput(f"{what} {_show(value)} is not a number", "e.g. --status 200")
    n = int(text, 10)
    if not 100 <= n <= 599:
        raise BadInput(f"{what} {n} is not an HTTP status", "give a number from 100 to 599")
    return n


def one_line(value: object, what: str, maximum: int = 200) -> str:
    """Free text (a reason, a note): one printable line."""
    if not isinstance(value, str) or not value.strip():
        raise BadInput(f"{what} is empty", f"give {what} as one line of text")
    if len(value) > maximum or any(ord(ch) < 32 or 127 <= ord(ch) <= 159 for ch in value):  # C0, DEL, C1
        raise BadInput(f"{what} must be one printable line of at most {maximum} characters", "drop newlines and control characters")
    return value
