"""One error root with a few leaves; each leaf carries its exit code.

    TwilightError            exit 1  (a check failed, a red flag)
    ├── BadInput             exit 2  (bad argument or config; nothing was touched)
    ├── CheckFailed          exit 1  (a check or a red flag stops the phase)
    ├── LockHeld             exit 1  (another operator holds the deploy lock)
    ├── Unreachable          exit 3  (cannot reach tvps, the API, the registry…)
    │   ├── HostKeyRejected  exit 3  (unknown or changed host key)
    │   └── LinkLost         exit 3  (the SSH link to tvps died or froze mid-run: the run ends, never a FAIL row)
    └── CommandFailed        exit 1  (a command exited non-zero where success was required)
        ├── RemoteCommandFailed      (on tvps)
        └── LocalCommandFailed       (on the operator's machine)

Every message is one line a tired operator understands; `hint` is the next
command to run.  mark_step/step_of: the journal step an error escaped from (`deploy#1:up`),
so the line can name what was in flight.
"""
from __future__ import annotations


class TwilightError(Exception):
    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def line(self) -> str:
        text = self.message.replace("\n", " ").strip()
        if self.hint:
            text += f" — {self.hint}"
        return text


class BadInput(TwilightError):
    exit_code = 2


class CheckFailed(TwilightError):
    exit_code = 1


class LockHeld(TwilightError):
    exit_code = 1


class Unreachable(TwilightError):
    exit_code = 3


class HostKeyRejected(Unreachable):
    exit_code = 3


class LinkLost(Unreachable):
    """The SSH link to tvps was lost or stopped answering mid-run: every later call fails too, so a
    phase ends here (exit 3, with the resume line) instead of reporting each check as failed."""


class CommandFailed(TwilightError):
    """A command exited non-zero where success was required."""

    exit_code = 1
    where = "a host"
    default_hint = "run the same command by hand to see its full output"

    def __init__(self, command: str, exited: int, stderr: str, hint: str | None = None):
        tail = stderr.strip().splitlines()[-1] if stderr.strip() else "no stderr"
        super().__init__(f"{self.where} `{command}` exited {exited}: {tail}", hint or self.default_hint)
        self.command = command
        self.exited = exited
        self.stderr = stderr


class RemoteCommandFailed(CommandFailed):
    where = "on tvps"
    default_hint = "run the same command by hand on tvps (`ssh tvps`) to see its full output"


class LocalCommandFailed(CommandFailed):
    where = "locally"
    default_hint = "run the same command by hand in that directory to see its full output"


def mark_step(e: BaseException, step: str) -> None:
    """Remember the journal step an error (or Ctrl-C) escaped from; the innermost, first mark wins."""
    if step_of(e) is None:
        setattr(e, "twilight_step", step)


def step_of(e: BaseException) -> str | None:
    """The journal step that was in flight when `e` was raised, if one was."""
    step = getattr(e, "twilight_step", None)
    return step if isinstance(step, str) else None
