"""inv smoke: the T+00:15 /price check (and §2.4 with --expect legacy)."""
from __future__ import annotations

from invoke import task

from ..errors import BadInput
from ..output import console, finish, operation, print_json


@task(help={
    "code": "ts_code to query (default: config smoke_code, 600519.SH)",
    "expect": "w4 (after the cutover) or legacy (after a rollback, runbook §2.4)",
    "json": "print exactly one JSON verdict object",
    "from_file": "judge a saved response body instead of calling the API (no connection)",
    "status": "with --from-file: the HTTP status of the saved response (default 200)",
    "version": "journal the result under this release tag (default: the cutover in progress, else config release)",
})
@operation
def smoke(c, code="", expect="w4", json=False, from_file="", status="200", version=""):
    """Call /price and judge the envelope: green, or red flags with the runbook's next step."""
    from .. import validate
    from ..phases import smoke as phase
    from ..target import Target

    if expect not in ("w4", "legacy"):
        raise BadInput(f"--expect {expect!r} is not w4 or legacy", "use --expect w4 (cutover) or --expect legacy (rollback)")
    t = Target.for_release(c, version)
    code = validate.ts_code(code or t.settings.smoke_code)
    # a str default on purpose: an int default makes Invoke cast `--status abc` itself,
    # which crashes with a traceback before this check can answer with one line
    status = validate.http_status(status)
    if from_file:
        result = phase.from_file(t.settings, from_file, status, expect)
    else:
        with t:
            result = phase.live(t, code, expect)
    if json:
        print_json(result.verdict.to_json())
    else:
        from ..render.smoke import render   # rich: only for the screen, never for --json
        from ..sanitize import printable

        render(result.verdict, console)
        if result.logs:
            lines = result.logs.rstrip().splitlines()
            tail = lines[-phase.LOG_TAIL_SHOWN:]
            console.print(f"backend logs (last {len(tail)} of {len(lines)} lines; all {len(lines)} are in the journal):",
                          markup=False)
            for line in tail:
                console.print("  " + printable(line), markup=False, highlight=False)
    finish([result.check()])
