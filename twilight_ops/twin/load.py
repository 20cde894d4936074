"""A bounded /price load generator for the twin, on loopback only.

    plan_requests(plan, today) -> [Request]      pure and deterministic (seeded)
    run_load(api_base, token, plan, today) -> LoadReport

The mix: liquid codes (latest quote), unknown codes (well-formed, listed nowhere:
the twin answers 502 ChainExhausted) and history (a liquid code on a past
weekday, served from the daily provider). Bounded three ways: at most
seconds * rps requests (and MAX_REQUESTS), paced at rps, and a hard deadline of
seconds + one HTTP timeout after which it stops by itself whatever is left.
It refuses any api_base that is not loopback: it is for the twin, never tvps.

Every authenticated /price call becomes one provider_audit_log row in the twin,
so the report's counts are the monitor's known answers.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import random
import time
from collections import Counter
from typing import Callable, Sequence
from urllib.parse import urlsplit

import httpx

from ..errors import BadInput
from ..secret import Secret

UNKNOWN_CODES = ("000000.SZ", "999998.SH", "830000.BJ")
MAX_SECONDS = 600.0
MAX_RPS = 200.0
MAX_REQUESTS = 20_000
HTTP_TIMEOUT_S = 5.0
HISTORY_DAYS = (30, 400)      # history dates: this many days back from the twin's today


@dataclasses.dataclass(frozen=True)
class LoadPlan:
    seconds: float
    rps: float
    liquid_codes: tuple[str, ...]
    unknown_pct: float = 2.0
    history_pct: float = 10.0
    seed: int = 1

    @property
    def count(self) -> int:
        return max(1, min(MAX_REQUESTS, int(self.seconds * self.rps)))

    def checked(self) -> "LoadPlan":
        """BadInput unless every bound holds."""
        if not 0 < self.seconds <= MAX_SECONDS:
            raise BadInput(f"--seconds {self.seconds:g} is out of range", f"give more than 0 and at most {MAX_SECONDS:g}")
        if not 0 < self.rps <= MAX_RPS:
            raise BadInput(f"--rps {self.rps:g} is out of range", f"give more than 0 and at most {MAX_RPS:g} requests per second")
        for name, pct in (("--unknown-pct", self.unknown_pct), ("--history-pct", self.history_pct)):
            if not 0 <= pct <= 100:
                raise BadInput(f"{name} {pct:g} is not a percentage", "give 0 to 100")
        if self.unknown_pct + self.history_pct > 100:
            raise BadInput("--unknown-pct and --history-pct add up to more than 100", "leave room for liquid codes")
        if not self.liquid_codes:
            raise BadInput("no liquid codes to load", "set twilight.liquid_codes")
        return self


@dataclasses.dataclass(frozen=True)
class Request:
    kind: str                 # liquid | unknown | history
    code: str
    date: str | None = None

    def params(self) -> dict[str, str]:
        return {"code": self.code, **({"date": self.date} if self.date else {})}


@dataclasses.dataclass(frozen=True)
class LoadReport:
    planned: int
    sent: int                 # requests that got an HTTP answer
    transport_errors: int
    by_kind: dict[str, int]   # answered requests per kind
    by_status: dict[str, int]
    elapsed_s: float
    stopped: str              # done | deadline

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def line(self) -> str:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.by_kind.items()))
        statuses = ", ".join(f"{s}×{n}" for s, n in sorted(self.by_status.items()))
        return (f"sent {self.sent} of {self.planned} /price calls in {self.elapsed_s:.1f} s ({kinds}; HTTP {statuses or '-'})"
                + (f"; {self.transport_errors} without an answer" if self.transport_errors else "")
                + ("; stopped at the deadline" if self.stopped == "deadline" else ""))


def check_loopback(api_base: str) -> str:
    """api_base, if its host is loopback; BadInput otherwise (the load is for the twin only)."""
    host = urlsplit(api_base).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise BadInput(f"refusing to load {api_base}: not a loopback address", "the load generator is for the twin (127.0.0.1) only")
    return api_base.rstrip("/")


def _past_weekday(today: dt.date, rng: random.Random) -> dt.date:
    day = today - dt.timedelta(days=rng.randint(*HISTORY_DAYS))
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return day


def plan_requests(plan: LoadPlan, today: dt.date) -> list[Request]:
    """The exact request sequence for a plan (same plan and today -> same list)."""
    rng = random.Random(plan.seed)
    out = []
    for _ in range(plan.count):
        u = rng.random() * 100
        code = plan.liquid_codes[rng.randrange(len(plan.liquid_codes))]
        if u < plan.unknown_pct:
            out.append(Request("unknown", UNKNOWN_CODES[rng.randrange(len(UNKNOWN_CODES))]))
        elif u < plan.unknown_pct + plan.history_pct:
            out.append(Request("history", code, _past_weekday(today, rng).isoformat()))
        else:
            out.append(Request("liquid", code))
    return out


def run_load(
    api_base: str,
    token: Secret,
    plan: LoadPlan,
    today: dt.date,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    transport: httpx.BaseTransport | None = None,
) -> LoadReport:
    """Send the planned requests at plan.rps; stop when done or at the hard deadline."""
    base = check_loopback(api_base)
    requests: Sequence[Request] = plan_requests(plan.checked(), today)
    kinds: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    failed = 0
    start = clock()
    deadline = start + plan.seconds + HTTP_TIMEOUT_S
    stopped = "done"
    headers = {"Authorization": f"Bearer {token.reveal()}", "User-Agent": "twilight-ops twin.load"}
    with httpx.Client(base_url=base, timeout=HTTP_TIMEOUT_S, headers=headers, transport=transport) as client:
        for i, req in enumerate(requests):
            due = start + i / plan.rps
            now = clock()
            if now > deadline:
                stopped = "deadline"
                break
            if due > now:
                sleep(due - now)      # pacing at rps: the schedule itself, not a wait for a condition
            try:
                resp = client.get("/price", params=req.params())
            except httpx.TransportError:
                failed += 1
                continue
            kinds[req.kind] += 1
            statuses[str(resp.status_code)] += 1
    return LoadReport(len(requests), sum(kinds.values()), failed, dict(kinds), dict(statuses), round(clock() - start, 3), stopped)
