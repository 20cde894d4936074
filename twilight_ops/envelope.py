"""GET /price response → smoke Verdict (runbook §1 T+00:15, §2.4 and §4).

Pure: `evaluate` takes what the HTTP call produced (status, body, transport
error) plus `now` and the adj tolerance, and never raises for any response.
The contracts live in schemas/price-envelope.schema.json: `$defs/w4` (v0.3.0)
and `$defs/legacy` (v0.2.0); the expected one is validated explicitly.

Decision rule: the T+00:15 red flags mean "rollback immediately", except where
§4 preauthors a different response for the exact symptom (500 with
CanonicalUnitViolation → fix forward; 502 → investigate, rollback won't help;
close_raw null with close_qfq populated → pull logs, roll back if recurring).
Warnings never block.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Iterable, Literal, Mapping, NamedTuple, Sequence

from .errors import TwilightError
from .secret import redact

if TYPE_CHECKING:   # jsonschema (≈ 35–45 ms of imports) is imported by the first body that is validated
    from jsonschema import Draft202012Validator, ValidationError

Envelope = Literal["w4", "legacy", "mixed", "unknown"]
Expect = Literal["w4", "legacy"]
NextStep = Literal["continue", "rollback", "investigate", "fix-forward"]

SCHEMA_NAME = "price-envelope.schema.json"
MAX_SCHEMA_FLAGS = 10
MAX_DEPTH = 32                # a /price body is 3 levels deep; deeper is not an envelope
FUTURE_SKEW_SECONDS = 120.0   # as_of may lead `now` by this much (clock skew)
STALE_SECONDS = 86_400        # runbook §1 T+00:35 check 1
PRICE_SLACK_YUAN = 0.005      # published prices are rounded to the fen
IN_SESSION = frozenset({"open", "lunch_break", "closing"})

LEGACY_KEYS = frozenset({"value", "metric"})
# Keys only the W4 envelope has; `source`, `as_of`, `units`… may exist in both.
W4_MARKERS = frozenset({
    "ts_code", "close_raw", "close_qfq", "close_hfq", "open_raw", "high_raw", "low_raw",
    "adj_factor", "adj_factor_latest", "source_chain", "market_state", "freshness_seconds",
})


class Meaning(NamedTuple):
    meaning: str
    next_step: NextStep
    action: str


_ROLLBACK = "execute the rollback now (runbook §2, budget 30 min); do not retry the cutover today"
_LOGS = "docker compose logs backend --tail=200"
_NOTE = "note it in the cutover journal; not a rollback trigger"

MEANINGS: Mapping[str, Meaning] = MappingProxyType({
    # red flags, as judged at T+00:15 (expect="w4")
    "close_raw_missing": Meaning(
        "Composer didn't return a Quote (runbook §1 T+00:15)", "rollback", _ROLLBACK),
    "legacy_envelope": Meaning(
        "the pull didn't take: the old v0.2.0 image still serves /price (runbook §1 T+00:15)",
        "rollback", _ROLLBACK),
    "mixed_envelope": Meaning(
        "neither contract: the running image is not a clean v0.3.0 build, and value/metric keys"
        " are a T+00:15 red flag (runbook §1)", "rollback", _ROLLBACK),
    "http_5xx": Meaning(
        f"Composer or AuditLog is failing; check `{_LOGS}` (runbook §1 T+00:15)", "rollback", _ROLLBACK),
    "schema_violation": Meaning(
        "the body breaks the W4 (v0.3.0) contract, schema $defs/w4",
        "rollback", _ROLLBACK),
    "unauthorized": Meaning(
        "the API refused the operator token: a token problem, not a deploy problem and not a rollback trigger",
        "investigate", "check ~/twilight/.tokens/operator-test on tvps, then re-run the smoke"),
    "transport_error": Meaning(
        "no HTTP response (DNS, TLS, connection or timeout): the envelope was not checked",
        "investigate", "check that api.fsagent.cc answers from here (DNS, TLS, firewall), then re-run the smoke"),
    "http_status": Meaning(
        "GET /price should answer 200: the envelope was not checked", "investigate",
        f"check the URL and any proxy in front of the backend, and `{_LOGS}`"),
    # red flag after a rollback (expect="legacy")
    "w4_envelope": Meaning(
        "the server revert didn't take: v0.3.0 still serves /price (runbook §2.4)", "rollback",
        "re-run the server revert (runbook §2.1): pin TWILIGHT_VERSION to"
        " the pre-cutover digest in the journal (`inv status` shows it), pull, up -d, then verify again"),
    # warnings: recorded, never blocking
    "source_not_in_chain": Meaning(
        "the serving provider must appear in the chain it was served from (spec §6.2)", "continue", _NOTE),
    "ohlc_inconsistent": Meaning(
        "a bar needs low ≤ open, close ≤ high: a provider mapping bug", "continue", _NOTE),
    "as_of_in_future": Meaning(
        "the quote claims a time after now: clock skew on tvps or a wrong timezone in a provider mapping",
        "continue", _NOTE),
    "qfq_mismatch": Meaning(
        "close_qfq should be close_raw × adj_factor / adj_factor_latest: the adj_factor math is off",
        "continue", _NOTE),
    "hfq_mismatch": Meaning(
        "close_hfq should be close_raw × adj_factor: the adj_factor math is off", "continue", _NOTE),
    "qfq_null": Meaning(
        "with both factors present close_qfq must be populated: the adj_factor lookup is broken"
        " (runbook §1 T+00:35 check 2)", "continue", _NOTE),
    "stale_quote": Meaning(
        "a stale value during the session (runbook §1 T+00:35 check 1)", "continue", _NOTE),
    "schema_errors_truncated": Meaning(
        "only the most relevant schema errors are listed", "continue", "validate the body locally for the full list"),
})

# The same symptom where §4 or the post-rollback context calls for another response.
_QFQ_WITHOUT_RAW = Meaning(
    "adj_factor math returning when raw not — should not happen: pull logs, file bug;"
    " rollback if recurring (runbook §4 row 1)", "investigate",
    f"pull `{_LOGS}`, file a bug and re-run the smoke; roll back if it recurs (runbook §4)")
_CANONICAL_UNIT_VIOLATION = Meaning(
    "a provider returned data in the wrong units: the cutover is exposing a real bug —"
    " do not roll back to mask it; file issue, fix forward (runbook §4)", "fix-forward",
    f"do NOT roll back: file an issue with this response and `{_LOGS}`, then fix forward (runbook §4)")
_BAD_GATEWAY = Meaning(
    "Composer exhausted the provider chain (akshare + tushare both failing); if upstream is failing,"
    " rollback won't help (runbook §4)", "investigate",
    f"check `{_LOGS}`; if upstream is failing write a status page note and wait (runbook §4)")
_AFTER_ROLLBACK = "the previous version misbehaves too: rolling back further won't help"
_LEGACY_ACTION = "compare the running image (`inv status`) with the pre-cutover digest in the journal and check `" + _LOGS + "`"
_LEGACY_SCHEMA = Meaning(
    "the body breaks the legacy (v0.2.0) contract, schema $defs/legacy",
    "investigate", _LEGACY_ACTION)
_LEGACY_MIXED = Meaning(
    "after the rollback neither contract is served: the running image is neither v0.2.0 nor v0.3.0",
    "investigate", _LEGACY_ACTION)
_LEGACY_5XX = Meaning(f"{_AFTER_ROLLBACK}; check `{_LOGS}`", "investigate", _LEGACY_ACTION)

_UNIT_VIOLATION = "CanonicalUnitViolation"
_CONTINUE: Mapping[str, str] = {
    "w4": "continue to T+00:25: reinstall the Hermes profile",
    "legacy": "rollback verified: file a follow-up issue describing the trigger; do not retry the cutover today (runbook §2.4)",
}
# fix-forward wins: §4 forbids masking a CanonicalUnitViolation with a rollback.
_PRECEDENCE: tuple[NextStep, ...] = ("fix-forward", "rollback", "investigate")


@dataclass(frozen=True)
class Flag:
    """One finding: what was seen (`detail`), what it means, where, and what to do."""

    code: str
    detail: str
    meaning: str
    next_step: NextStep
    action: str
    pointer: str | None = None   # RFC 6901 pointer into the body; "" is the whole body

    @property
    def message(self) -> str:
        return f"{self.detail} — {self.meaning}"


@dataclass(frozen=True)
class Verdict:
    """The smoke's judgement; `to_json()` is the stable record (journal, --json)."""

    verdict: Literal["green", "red"]
    envelope: Envelope
    status: int | None
    red_flags: tuple[Flag, ...]
    warnings: tuple[Flag, ...]
    next_step: NextStep
    next_action: str
    expect: Expect
    body: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)  # for the renderer

    @property
    def green(self) -> bool:
        return self.verdict == "green"

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "envelope": self.envelope,
            "status": self.status,
            "red_flags": [{"code": f.code, "message": f.message, "pointer": f.pointer} for f in self.red_flags],
            "warnings": [{"code": f.code, "message": f.message} for f in self.warnings],
        }


# ---------------------------------------------------------------- schema


def schema_path() -> Path:
    """The packaged copy (twilight_ops/schemas/) when installed, else the checkout's schemas/."""
    here = Path(__file__).resolve().parent
    packaged = here / "schemas" / SCHEMA_NAME
    return packaged if packaged.is_file() else here.parent / "schemas" / SCHEMA_NAME


@functools.cache
def load_schema() -> Mapping[str, Any]:
    """The packaged contract, read once.  Not checked against the 2020-12 metaschema here (≈ 9 ms of every
    smoke): tests/unit/test_envelope.py checks the file that ships."""
    path = schema_path()
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise TwilightError(f"cannot load the /price schema {path}: {e}", "reinstall twilight-ops or run from its checkout") from None
    return schema


def prepare(contract: Expect) -> None:
    """Import jsonschema and build the contract's validator now (≈ 40 ms), e.g. while the link to tvps
    is being opened, rather than when the first body is judged."""
    _validator(contract)


@functools.cache
def _validator(contract: Expect) -> Draft202012Validator:
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    schema = load_schema()
    uri = schema["$id"]
    registry = Registry().with_resource(uri, Resource.from_contents(schema))
    return Draft202012Validator(
        {"$ref": f"{uri}#/$defs/{contract}"},
        registry=registry,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


# ---------------------------------------------------------------- parse and classify


class ParsedBody(NamedTuple):
    value: Any            # the JSON value (None is JSON null when problem is None)
    problem: str | None   # why the body is not a JSON document


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text[:20]} overflows a double")
    return number


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are all distinct: a repeated key (`close_raw` twice, the first
    null) would otherwise be judged on its last value alone."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def parse_body(body_text: str | bytes | None) -> ParsedBody:
    """Strict JSON (no NaN/Infinity, bounded depth); never raises."""
    if body_text is None:
        return ParsedBody(None, "no body")
    if isinstance(body_text, (bytes, bytearray, memoryview)):
        body_text = bytes(body_text)
    elif not isinstance(body_text, str):
        return ParsedBody(None, f"body is a {type(body_text).__name__}, not text")
    if not body_text.strip():
        return ParsedBody(None, "body is empty")
    try:
        value = json.loads(body_text, parse_constant=_reject_constant, parse_float=_finite_float,
                           object_pairs_hook=_unique_keys)
    except _DuplicateKey as e:
        return ParsedBody(None, f"body repeats the key {_clip(redact(str(e.args[0])), 60)!r}: an envelope bug")
    except (ValueError, RecursionError) as e:   # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return ParsedBody(None, f"body is not JSON: {_clip(str(e) or type(e).__name__)}")
    if _depth_exceeds(value, MAX_DEPTH):
        return ParsedBody(None, f"body nests deeper than {MAX_DEPTH} levels")
    return ParsedBody(value, None)


def classify(body: object) -> Envelope:
    """w4 | legacy | mixed (W4 fields with value/metric) | unknown (anything else)."""
    if not isinstance(body, dict):
        return "unknown"
    w4 = not W4_MARKERS.isdisjoint(body)
    legacy = not LEGACY_KEYS.isdisjoint(body)
    if w4 and legacy:
        return "mixed"
    return "w4" if w4 else "legacy" if legacy else "unknown"


def classify_text(body_text: str | bytes | None) -> Envelope:
    parsed = parse_body(body_text)
    return "unknown" if parsed.problem else classify(parsed.value)


# ---------------------------------------------------------------- evaluate


def evaluate(
    status: int | None,
    body_text: str | bytes | None,
    expect: Expect,
    now: dt.datetime,
    tolerance: float,
    transport_error: str | None = None,
) -> Verdict:
    """Judge one GET /price response against the `expect`ed contract.

    Never raises for any response (status, body, transport error). The caller's
    own arguments are checked first, whatever the response: a bad `expect`,
    `tolerance` or `now` is a programming error (ValueError/TypeError).
    A naive `now` is taken as UTC.
    """
    _check_arguments(expect, now, tolerance)
    if transport_error is not None or status is None:
        if transport_error is None:
            detail = "no HTTP status was received"
        else:
            detail = _clip(redact(str(transport_error))) or "transport error without a message"
        return _verdict(expect, "unknown", status, [_flag("transport_error", detail)], [], None)

    parsed = parse_body(body_text)
    envelope = "unknown" if parsed.problem else classify(parsed.value)
    body = parsed.value if isinstance(parsed.value, dict) else None

    status_flag = _status_flag(status, parsed, body_text, expect)
    if status_flag is not None:
        return _verdict(expect, envelope, status, [status_flag], [], body)
    if parsed.problem:
        meaning = MEANINGS["schema_violation"] if expect == "w4" else _LEGACY_SCHEMA
        return _verdict(expect, envelope, status, [_flag("schema_violation", parsed.problem, meaning=meaning)], [], None)

    if expect == "w4":
        red, warnings = _judge_w4(parsed.value, envelope, _aware(now), tolerance)
    else:
        red, warnings = _judge_legacy(parsed.value, envelope)
    return _verdict(expect, envelope, status, red, warnings, body)


def _check_arguments(expect: object, now: object, tolerance: object) -> None:
    if expect not in ("w4", "legacy"):
        raise ValueError(f"expect must be 'w4' or 'legacy', not {expect!r}")
    if not isinstance(now, dt.datetime):
        raise TypeError(f"now must be a datetime, not {type(now).__name__}")
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 <= tolerance < math.inf:
        raise ValueError(f"tolerance must be a finite number >= 0 (Settings.thresholds.adj_tolerance), not {tolerance!r}")


def _verdict(expect: Expect, envelope: Envelope, status: int | None, red: list[Flag],
             warnings: list[Flag], body: dict[str, Any] | None) -> Verdict:
    step, action = _decide(red, expect)
    return Verdict(
        verdict="red" if red else "green",
        envelope=envelope,
        status=status,
        red_flags=tuple(red),
        warnings=tuple(warnings),
        next_step=step,
        next_action=action,
        expect=expect,
        body=MappingProxyType(body) if body is not None else None,
    )


def _decide(red: Sequence[Flag], expect: Expect) -> tuple[NextStep, str]:
    for step in _PRECEDENCE:
        for f in red:
            if f.next_step == step:
                return step, f.action
    return "continue", _CONTINUE[expect]


def _status_flag(status: int, parsed: ParsedBody, body_text: object, expect: Expect) -> Flag | None:
    if 200 <= status <= 299:
        return None
    said = _error_text(parsed, body_text)
    if status in (401, 403):
        return _flag("unauthorized", f"HTTP {status}{_excerpt(said)}")
    if not 500 <= status <= 599:
        return _flag("http_status", f"HTTP {status}{_excerpt(said)}")
    if expect == "legacy":
        return _flag("http_5xx", f"HTTP {status}{_excerpt(said)}", meaning=_LEGACY_5XX)
    if status == 500 and (_UNIT_VIOLATION in said or _UNIT_VIOLATION in _decoded(body_text)):
        cause = said[said.index(_UNIT_VIOLATION):] if _UNIT_VIOLATION in said else said
        return _flag("http_5xx", f"HTTP 500 with {_clip(redact(cause), 160)}", meaning=_CANONICAL_UNIT_VIOLATION)
    if status == 502:
        return _flag("http_5xx", f"HTTP 502{_excerpt(said)}", meaning=_BAD_GATEWAY)
    return _flag("http_5xx", f"HTTP {status}{_excerpt(said)}")


def _error_text(parsed: ParsedBody, body_text: object) -> str:
    """What an error response says: "error: detail" from a JSON error body, else the raw text."""
    if isinstance(parsed.value, dict):
        said = ": ".join(v for v in (parsed.value.get("error"), parsed.value.get("detail")) if isinstance(v, str) and v)
        if said:
            return said
    return _decoded(body_text)


def _decoded(body_text: object) -> str:
    if isinstance(body_text, (bytes, bytearray, memoryview)):
        return bytes(body_text).decode("utf-8", errors="replace")
    return body_text if isinstance(body_text, str) else ""


def _judge_w4(body: Any, envelope: Envelope, now: dt.datetime, tolerance: float) -> tuple[list[Flag], list[Flag]]:
    if envelope == "legacy":
        return [_flag("legacy_envelope", "the body has the old value/metric keys", pointer=_legacy_pointer(body))], []
    if envelope == "mixed":
        return [_flag("mixed_envelope", "W4 fields together with value/metric", pointer=_legacy_pointer(body))], []

    red: list[Flag] = []
    raw_missing = envelope == "w4" and body.get("close_raw") is None
    if raw_missing:
        state = "absent" if "close_raw" not in body else "null"
        if _json_number(body.get("close_qfq")) is not None:
            red.append(_flag("close_raw_missing", f"close_raw is {state} but close_qfq is populated",
                             pointer="/close_raw", meaning=_QFQ_WITHOUT_RAW))
        else:
            red.append(_flag("close_raw_missing", f"close_raw is {state}", pointer="/close_raw"))
    schema_red, warnings = _schema_flags("w4", body, MEANINGS["schema_violation"], skip_close_raw=raw_missing)
    red.extend(schema_red)
    if isinstance(body, dict):
        warnings.extend(_w4_warnings(body, now, tolerance))
    return red, warnings


def _judge_legacy(body: Any, envelope: Envelope) -> tuple[list[Flag], list[Flag]]:
    if envelope == "w4":
        return [_flag("w4_envelope", "the body is the W4 envelope", pointer="")], []
    if envelope == "mixed":
        return [_flag("mixed_envelope", "W4 fields together with value/metric",
                      pointer=_legacy_pointer(body), meaning=_LEGACY_MIXED)], []
    return _schema_flags("legacy", body, _LEGACY_SCHEMA, skip_close_raw=False)


def _schema_flags(contract: Expect, body: Any, meaning: Meaning, *, skip_close_raw: bool) -> tuple[list[Flag], list[Flag]]:
    errors = [e for e in _validator(contract).iter_errors(body) if not (skip_close_raw and _about_close_raw(e))]
    errors.sort(key=_best_first)
    red = [
        _flag("schema_violation", _clip(redact(e.message)), pointer=_pointer(e.absolute_path), meaning=meaning)
        for e in errors[:MAX_SCHEMA_FLAGS]
    ]
    warnings = []
    if len(errors) > MAX_SCHEMA_FLAGS:
        warnings.append(_flag("schema_errors_truncated",
                              f"{len(errors) - MAX_SCHEMA_FLAGS} more schema errors not listed"))
    return red, warnings


def _about_close_raw(error: ValidationError) -> bool:
    """Already reported as close_raw_missing: the null at /close_raw or its `required` miss."""
    if list(error.absolute_path) == ["close_raw"]:
        return True
    return error.validator == "required" and not error.absolute_path and error.message == f"{'close_raw'!r} is a required property"


def _best_first(error: ValidationError) -> tuple[Any, ...]:
    """Shallowest first (a missing field before a bad value inside one), anyOf/oneOf last, then by path."""
    path = tuple((0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in error.absolute_path)
    return (len(path), error.validator in ("anyOf", "oneOf"), path)


# ---------------------------------------------------------------- checks beyond the schema


def _w4_warnings(body: Mapping[str, Any], now: dt.datetime, tolerance: float) -> list[Flag]:
    """Cross-field checks; each reads only values of the right type, so any dict is safe."""
    out: list[Flag] = []
    source, chain = body.get("source"), body.get("source_chain")
    if isinstance(source, str) and isinstance(chain, list) and source not in chain:
        out.append(_flag("source_not_in_chain", _clip(redact(f"source {source!r} is not in source_chain {chain!r}")),
                         pointer="/source"))

    o, h, l, c = (_json_number(body.get(k)) for k in ("open_raw", "high_raw", "low_raw", "close_raw"))
    if o is not None and h is not None and l is not None and c is not None and not (l <= o <= h and l <= c <= h):
        out.append(_flag("ohlc_inconsistent", f"open {o:g} high {h:g} low {l:g} close {c:g}"))

    as_of = _parse_rfc3339(body.get("as_of"))
    if as_of is not None and (as_of - now).total_seconds() > FUTURE_SKEW_SECONDS:
        lead = (as_of - now).total_seconds()
        out.append(_flag("as_of_in_future", f"as_of {body['as_of']} is {lead:.0f} s after now"
                                            f" ({now.isoformat(timespec='seconds')})", pointer="/as_of"))

    out.extend(_adjustment_warnings(body, tolerance))

    # The runbook says "outside CLOSED_FINAL"; over a weekend or before the open the last
    # close is legitimately older than a day, so only an in-session quote can be stale.
    freshness = _json_number(body.get("freshness_seconds"))
    state = body.get("market_state")
    if freshness is not None and freshness > STALE_SECONDS and isinstance(state, str) and state in IN_SESSION:
        out.append(_flag("stale_quote", f"freshness_seconds {freshness:.0f} > {STALE_SECONDS} with market_state {_clip(repr(state), 40)}",
                         pointer="/freshness_seconds"))
    return out


def _adjustment_warnings(body: Mapping[str, Any], tolerance: float) -> list[Flag]:
    raw, qfq, hfq, factor, latest = (
        _json_number(body.get(k)) for k in ("close_raw", "close_qfq", "close_hfq", "adj_factor", "adj_factor_latest"))
    if raw is None or factor is None:
        return []
    out = []
    if hfq is not None and not _near(hfq, raw * factor, tolerance):
        out.append(_flag("hfq_mismatch", f"close_hfq {hfq:g} vs close_raw × adj_factor = {raw * factor:g}"
                                         f" (tolerance {tolerance:g})", pointer="/close_hfq"))
    if latest is not None and latest > 0:
        expected = raw * factor / latest
        if qfq is not None and not _near(qfq, expected, tolerance):
            out.append(_flag("qfq_mismatch", f"close_qfq {qfq:g} vs close_raw × adj_factor / adj_factor_latest"
                                             f" = {expected:g} (tolerance {tolerance:g})", pointer="/close_qfq"))
        if "close_qfq" in body and body["close_qfq"] is None:
            out.append(_flag("qfq_null", "close_qfq is null while close_raw, adj_factor and adj_factor_latest are present",
                             pointer="/close_qfq"))
    return out


def _near(actual: float, expected: float, tolerance: float) -> bool:
    # relative tolerance, plus half a fen so rounding never trips a strict tolerance
    return abs(actual - expected) <= max(tolerance * abs(expected), PRICE_SLACK_YUAN)


_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:[Zz]|([+-])(\d{2}):(\d{2}))", re.ASCII)


def _parse_rfc3339(value: object) -> dt.datetime | None:
    """RFC 3339 as the schema's format checker accepts it (leap second → :59); None if not one."""
    m = _RFC3339.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    micro = int((m.group(7) or "0")[:6].ljust(6, "0"))
    offset = dt.timedelta(0)
    if m.group(8):
        offset = dt.timedelta(hours=int(m.group(9)), minutes=int(m.group(10)))
        offset = -offset if m.group(8) == "-" else offset
    try:
        return dt.datetime(year, month, day, hour, minute, min(second, 59), micro, tzinfo=dt.timezone(offset))
    except (ValueError, OverflowError):
        return None


# ---------------------------------------------------------------- helpers


def _flag(code: str, detail: str, *, pointer: str | None = None, meaning: Meaning | None = None) -> Flag:
    m = meaning or MEANINGS[code]
    return Flag(code=code, detail=detail, meaning=m.meaning, next_step=m.next_step, action=m.action, pointer=pointer)


def _json_number(value: object) -> float | None:
    """A JSON number as a finite float, else None (bools, strings, huge ints are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _aware(now: dt.datetime) -> dt.datetime:
    return now if now.tzinfo is not None and now.utcoffset() is not None else now.replace(tzinfo=dt.timezone.utc)


def _legacy_pointer(body: Mapping[str, Any]) -> str:
    return "/value" if "value" in body else "/metric"


def _pointer(path: Iterable[object]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def _excerpt(text: str) -> str:
    text = _clip(redact(text), 120)
    return f": {text}" if text else ""


def _clip(text: str, limit: int = 240) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"
