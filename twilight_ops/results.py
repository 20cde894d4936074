"""One result type for every check and phase, one reducer to an exit code.

    CheckResult(id, status, reason, evidence, next_step)
    exit_code(results)  FAIL → 1 · else UNREACHABLE → 3 · else 0 (PASS and SKIP)
    to_json(results)    [{"id", "status", "reason", "evidence", "next_step"}, …]

The phases that existed before this type (status, smoke, monitor, diagnose) keep
their documented JSON shapes; they reduce to CheckResults only for the exit code.
"""
from __future__ import annotations

import dataclasses
import enum
from typing import Any, Iterable, Mapping


class Status(str, enum.Enum):
    PASS = "PASS"
    FAIL = "FAIL"                # a check failed or a red flag: exit 1
    SKIP = "SKIP"                # not run, with the reason why
    UNREACHABLE = "UNREACHABLE"  # could not ask: tvps, the API or a service did not answer (exit 3)


@dataclasses.dataclass(frozen=True)
class CheckResult:
    id: str
    status: Status
    reason: str = ""
    evidence: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    next_step: str = ""

    @property
    def ok(self) -> bool:
        return self.status in (Status.PASS, Status.SKIP)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status.value, "reason": self.reason,
                "evidence": dict(self.evidence), "next_step": self.next_step}


def passed(id: str, reason: str = "", **evidence: Any) -> CheckResult:
    return CheckResult(id, Status.PASS, reason, evidence)


def failed(id: str, reason: str, next_step: str, **evidence: Any) -> CheckResult:
    return CheckResult(id, Status.FAIL, reason, evidence, next_step)


def skipped(id: str, reason: str, **evidence: Any) -> CheckResult:
    return CheckResult(id, Status.SKIP, reason, evidence)


def exit_code(results: Iterable[CheckResult]) -> int:
    """The one reducer: any FAIL → 1; else any UNREACHABLE → 3; else 0."""
    statuses = {r.status for r in results}
    if Status.FAIL in statuses:
        return 1
    if Status.UNREACHABLE in statuses:
        return 3
    return 0


def to_json(results: Iterable[CheckResult]) -> list[dict[str, Any]]:
    return [r.to_json() for r in results]
