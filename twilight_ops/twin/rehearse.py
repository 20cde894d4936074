"""`inv rehearse`: the whole cutover, a rollback drill and the fault matrix against the twin.

    reset(st, settings)                  the twin back to before any cutover (every switch off)
    SCENARIOS                            name → Scenario (faults, expected decision and outcome)
    run_scenario(base, sc, logs) -> Row  reset, faults on, `inv cutover` through the real CLI, judged
    run_blink(base, sc, log, journal)    an `infra` scenario (MidRun): a part stopped, Ctrl-C or a frozen link
                                         during the run; it must stop (3 / 130) with decide INCOMPLETE; the
                                         fault undone, `--resume` is judged
    matrix(base, names, say) -> [Row]

Each scenario starts from a reset twin (v0.2.0 running, W4 untagged and unpublished, no
journal, no lock, no faults) and runs `inv -f <twin>/invoke.yaml cutover --version V --yes
--auto-rollback --json` as an operator would; the row compares the decision and the outcome
the tool reached with the expected ones.  Backend faults are scoped to the W4 release (a bug
that ships with it), so the rollback's own verification meets the healthy v0.2.0.
"""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from ..config import Settings
from ..runbook import Phases, Steps
from .state import TwinState

V = "v0.3.0-w4-cutover"


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    about: str
    decision: str                    # GO | ROLLBACK | FIX-FORWARD | "" (stopped before the decision)
    outcome: str                     # closed-out | rolled-back | fix-forward | stopped
    backend: tuple[str, ...] = ()    # /price faults while W4 runs
    hermes: str = ""                 # an operator-side Hermes fault (operator_side.HERMES_FAULTS)
    release: str = ""                # a CI/release fault (never-healthy, restart-loop, build-fails)
    preflight: str = ""              # a preflight switch
    infra: str = ""                  # a fault during the run, then undone, then --resume (_infra: MidRun)
    lock: str = ""                   # "elsewhere": the deploy lock held by this operator's run on another machine
    data: str = ""                   # what the rollback must do with the warehouse (§2.3 data plan): restored | kept

    @property
    def expected(self) -> str:
        return f"{self.decision or 'no decision'} → {self.outcome}"


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("green", "every check green: GO, close-out committed and pushed", "GO", "closed-out"),
    Scenario("close-raw-null", "T+00:15 red flag: close_raw null", "ROLLBACK", "rolled-back", backend=("close_raw_null",)),
    Scenario("legacy-envelope", "T+00:15 red flag: the old envelope after deploy", "ROLLBACK", "rolled-back",
             backend=("legacy_body",)),
    Scenario("schema-regressed", "§2.3: W4 renamed a column v0.2.0 selects, then a red flag: ROLLBACK; v0.2.0 will "
             "not start on it, so the snapshot is restored and the rows since T+00:00 exported", "ROLLBACK", "rolled-back",
             backend=("legacy_body",), release="schema-regressed", data="restored"),
    Scenario("schema-additive", "§2.3: W4 added a table v0.2.0 ignores, then a red flag: ROLLBACK, image only, "
             "the warehouse kept", "ROLLBACK", "rolled-back", backend=("legacy_body",), release="schema-additive",
             data="kept"),
    Scenario("http-500", "T+00:15 red flag: HTTP 5xx (Composer or AuditLog failing)", "ROLLBACK", "rolled-back",
             backend=("http_500",)),
    Scenario("audit-write-failed", "T+00:15 red flag: AuditLog write fails (500)", "ROLLBACK", "rolled-back",
             backend=("audit_write_failed",)),
    Scenario("canonical-unit-violation", "§4: HTTP 500 CanonicalUnitViolation: fix forward, never masked",
             "FIX-FORWARD", "fix-forward", backend=("canonical_unit_violation",)),
    Scenario("chain-exhausted", "§4: HTTP 502 on liquid codes (both providers failing)", "ROLLBACK", "rolled-back",
             backend=("chain_exhausted",)),
    Scenario("qfq-without-raw", "§4: close_raw absent, close_qfq populated", "ROLLBACK", "rolled-back",
             backend=("qfq_without_raw",)),
    Scenario("history-qfq-null", "T+00:35 check 2: close_qfq null for 2024-01-02", "ROLLBACK", "rolled-back",
             backend=("close_qfq_null_history",)),
    Scenario("unknown-code-500", "T+00:35 check 4: 500 instead of 502 for 999999.SH", "ROLLBACK", "rolled-back",
             backend=("unknown_code_500",)),
    Scenario("hermes-legacy-prompt", "§4 / §2: Hermes value parse error (old prompt template)", "ROLLBACK",
             "rolled-back", hermes="legacy_prompt"),
    Scenario("hermes-price-unavailable", "T+00:35 check 1: the agent says price unavailable", "ROLLBACK",
             "rolled-back", hermes="price_unavailable"),
    Scenario("never-healthy", "T+00:05: the image never turns healthy: deploy stops, then rollback", "ROLLBACK",
             "rolled-back", release="never-healthy"),
    Scenario("restart-loop", "T+00:05: the new container restarts again and again", "ROLLBACK", "rolled-back",
             release="restart-loop"),
    Scenario("ci-build-fails", "T+00:05: the CI build fails: nothing deployed, the run stops", "", "stopped",
             release="build-fails"),
    Scenario("registry-blink", "T+00:05: the registry is down during deploy (exit 3, INCOMPLETE), back, --resume: GO",
             "GO", "closed-out", infra="registry"),
    Scenario("token-server-blink", "T+00:05: the token server is down during deploy, back, --resume: GO",
             "GO", "closed-out", infra="token-server"),
    Scenario("ctrl-c-in-deploy", "T+00:05: Ctrl-C inside deploy (exit 130, INCOMPLETE), --resume: GO",
             "GO", "closed-out", infra="ctrl-c"),
    Scenario("frozen-link", "T+00:05: the SSH link freezes inside deploy (exit 3, INCOMPLETE), thawed, --resume: GO",
             "GO", "closed-out", infra="frozen-link"),
    Scenario("frozen-link-hermes", "T+00:25: the SSH link freezes inside hermes-reinstall (exit 3), thawed, --resume: GO",
             "GO", "closed-out", infra="frozen-link-hermes"),
    Scenario("frozen-link-closeout", "T+00:55: the SSH link freezes inside closeout (its git work done and journalled; "
             "exit 3 at the audit line, decide still GO), thawed, --resume: closed out once", "GO", "closed-out", infra="frozen-link-closeout"),
    Scenario("preflight-pr-unmerged", "§0: a dependency PR is not merged: NO-GO, nothing changed", "", "stopped",
             preflight="pr-unmerged"),
    Scenario("lock-held-elsewhere", "the deploy lock is held from another machine: refused, nothing written", "",
             "refused", lock="elsewhere"),
    Scenario("tvps-clock-skew", "§0: tvps's clock 10 min ahead: clock_skew FAIL, NO-GO, nothing changed", "",
             "stopped", preflight="tvps-clock-skew"),
)}


@dataclasses.dataclass(frozen=True)
class Row:
    scenario: str
    expected: str
    got: str
    seconds: float
    ok: bool
    log: str
    note: str = ""


def reset(st: TwinState, settings: Settings) -> int:
    """No cutover, no fault: v0.2.0 running healthy, W4 untagged and unpublished; the number of
    cutover files removed."""
    from ..remote import SSHExecutor
    from . import build, ci_release, control, preflight_faults, release_faults
    from .operator_side import set_hermes_fault

    gone = build.forget_cutovers(st)
    if release_faults.schema_faulted(st):
        release_faults.unmigrate(st)      # before v0.2.0 starts again: it cannot read a regressed warehouse
    release_faults.clear(st)
    preflight_faults.clear(st)        # origin/main, the operator's main and tvps' pin as twin.up made them
    ci_release.reset_release(st, build.VERSIONS[1])
    set_hermes_fault(st.hermes_home, None)
    with SSHExecutor(settings) as ex:
        control.clear_faults(ex, settings)
        control.run_version(ex, settings, build.VERSIONS[0])
    subprocess.run(["git", "-C", str(st.operator_clone), "checkout", "HEAD", "--", "skill/"], check=True)
    return len(gone)


def apply(st: TwinState, settings: Settings, sc: Scenario) -> None:
    from ..remote import SSHExecutor
    from . import control, preflight_faults, release_faults
    from .operator_side import set_hermes_fault

    if sc.backend:
        with SSHExecutor(settings) as ex:
            control.set_faults(ex, settings, list(sc.backend), versions=[V])
    if sc.hermes:
        set_hermes_fault(st.hermes_home, sc.hermes)
    if sc.release:
        release_faults.apply(st, sc.release, V)
    if sc.preflight:
        preflight_faults.apply(st, sc.preflight, None)
    if sc.lock:
        hold_lock_elsewhere(settings)


def hold_lock_elsewhere(settings: Settings) -> None:
    """This operator's cutover lock, as taken on another machine (never judged dead from here)."""
    import socket

    from ..builders.layout import layout
    from ..remote import SSHExecutor

    record = {"operator": settings.operator, "version": V, "reason": "cutover", "acquired_at": "2026-12-01T00:00:00+00:00",
              "client_pid": 4242, "host": "other-" + socket.gethostname(), "client_start": "1"}
    with SSHExecutor(settings) as ex:
        lay = layout(settings, ex.home)
        ex.run(["mkdir", "-p", "--", lay.lock_dir])
        ex.write_file(lay.lock_info, json.dumps(record).encode(), mode=0o644)


def inv(base: Path, *args: str, log: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    """The real CLI against the twin, as an operator types it; stderr appended to the log."""
    argv = [str(Path(sys.executable).with_name("inv")), "-f", str(base / "invoke.yaml"), *args]
    with log.open("a", encoding="utf-8") as fh:
        fh.write(f"\n$ inv -f {base / 'invoke.yaml'} {' '.join(args)}\n")
        fh.flush()
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=fh, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL, cwd=Path(__file__).resolve().parents[2])
        fh.write(r.stdout)
    return r


def judge(sc: Scenario, exit_code: int, result: dict | None) -> tuple[str, bool, str]:
    """(got, matches, note) from the cutover's --json result (pure)."""
    if sc.outcome == "refused":          # refused before it started: exit 1, no --json result
        ok = result is None and exit_code == 1
        return ("no decision → refused" if ok else f"exit {exit_code}" + (", it ran" if result else "")), ok, ""
    if result is None:
        return f"no result (exit {exit_code})", False, "the cutover printed no JSON: see the log"
    verdict = str((result.get("decision") or {}).get("verdict") or "")
    outcome = str(result.get("outcome") or "")
    got = f"{verdict or 'no decision'} → {outcome}"
    want_exit = 0 if sc.outcome == "closed-out" else 1
    ok = verdict == sc.decision and outcome == sc.outcome and exit_code == want_exit
    note = "" if exit_code == want_exit else f"exit {exit_code}, expected {want_exit}"
    return got, ok, note


def last_json(stdout: str) -> dict | None:
    try:
        value = json.loads(stdout)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@dataclasses.dataclass(frozen=True)
class MidRun:
    """A fault injected into a running `inv cutover`: once `when(journal)` holds, `act(base, proc)`
    (its result is handed to `undo`); the run must end with `first_exit`, its cut step journalled
    as one of `cut`, and `inv decide` must say INCOMPLETE.  Then `undo` and `--resume` is judged."""
    when: Callable[[dict], bool]
    act: Callable[[Path, subprocess.Popen], object]
    undo: Callable[[Path, object], object]
    first_exit: int
    cut: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    about: str = ""
    step: str = Steps.DEPLOY_ATTEMPTS    # the journal steps (by name prefix) the fault must cut
    decided: str = "INCOMPLETE"      # what `inv decide` says between the two runs


def _tag_pushed(j: dict) -> bool:
    return any(s.get("name") == Steps.TAG_PUSH and s.get("outcome") == "ok" for s in j.get("steps", []))


def running_step(j: dict, prefix: str) -> str | None:
    """The last step named `prefix…` that a journal (as read_journal gives it) shows running, if any."""
    names = [str(s.get("name", "")) for s in j.get("steps", [])
             if str(s.get("name", "")).startswith(prefix) and s.get("outcome") == "running"]
    return names[-1] if names else None


def _running(prefix: str) -> Callable[[dict], bool]:
    return lambda j: running_step(j, prefix) is not None


_in_deploy = _running(Steps.DEPLOY_ATTEMPTS)


def _infra() -> dict[str, MidRun]:
    import os
    import signal

    from . import registry, registry_auth, sshd

    def start(base: Path, _: object = None) -> None:   # as twin.up starts them: the token server, then the registry
        tok = registry_auth.start_token_server(base)
        registry.start_registry(base, auth=registry_auth.registry_auth(tok.realm, tok.paths.cert))

    def ctrl_c(base: Path, proc: subprocess.Popen) -> None:
        os.killpg(proc.pid, signal.SIGINT)

    def freeze(base: Path, proc: subprocess.Popen) -> list[int]:
        from .state import load_or_new

        return sshd.freeze_sessions(load_or_new(base).ssh_dir)

    def thaw(base: Path, pids: object) -> None:
        sshd.thaw_sessions(list(pids) if isinstance(pids, list) else [])

    return {
        "registry": MidRun(_tag_pushed, lambda base, proc: registry.stop_registry(base), start, 3, ("unreachable",),
                           about="registry stopped once tag-push is done"),
        "token-server": MidRun(_tag_pushed, lambda base, proc: registry_auth.stop_token_server(base), start, 3,
                               ("unreachable",), about="token server stopped once tag-push is done"),
        "ctrl-c": MidRun(_in_deploy, ctrl_c, lambda base, _: None, 130, ("interrupted",),
                         about="Ctrl-C (SIGINT to the run) inside deploy"),
        "frozen-link": MidRun(_in_deploy, freeze, thaw, 3, ("unreachable", "interrupted"),
                              env=(("INVOKE_TWILIGHT_SSH_OP_TIMEOUT_SECONDS", "5"),),
                              about="the SSH sessions frozen (SIGSTOP) inside deploy; op timeout 5 s"),
        # hermes-reinstall's work is local (install-skill.sh, hermes): its audit lines wait for the next request
        # (append_soon), so the frozen link is met by the phase's journal append as the phase ends, ok or
        # cut short (exit 3 either way); --resume skips a phase that ended ok and closes out once
        "frozen-link-hermes": MidRun(_running(Steps.cutover(Phases.HERMES)), freeze, thaw, 3, ("unreachable", "interrupted", "ok"),
                                     env=(("INVOKE_TWILIGHT_SSH_OP_TIMEOUT_SECONDS", "5"),), step=Steps.cutover(Phases.HERMES),
                                     about="the SSH sessions frozen inside hermes-reinstall; op timeout 5 s"),
        # closeout's work is local git (commit, push to origin): its step ends ok; the audit line after it
        # meets the frozen link (exit 3); --resume finds the step done and closes out once
        "frozen-link-closeout": MidRun(_running(Steps.CLOSEOUT), freeze, thaw, 3, ("ok",),
                                       env=(("INVOKE_TWILIGHT_SSH_OP_TIMEOUT_SECONDS", "5"),), step=Steps.CLOSEOUT,
                                       decided="GO", about="the SSH sessions frozen inside closeout; op timeout 5 s"),
    }


def read_journal(path: Path) -> dict:
    """A journal file (its event log folded) as a dict; {} while it is missing or holds no event yet."""
    from ..errors import BadInput
    from ..journal import read_copy

    try:
        return read_copy(path).to_dict()
    except (OSError, ValueError, TypeError, BadInput):
        return {}


def run_blink(base: Path, sc: Scenario, log: Path, journal: Path) -> tuple[subprocess.CompletedProcess, str]:
    """The mid-run hook of an `infra` scenario (MidRun): `inv cutover` runs; the fault is injected
    when its moment comes; the cutover must stop with the fault's exit code, the cut deploy step
    journalled as unreachable/interrupted, and `inv decide` INCOMPLETE.  The fault is undone and
    `inv cutover --resume` runs to the end: that result is judged.  Returns it and a note when the
    first run did not stop as it should (or the fault missed its moment)."""
    import os
    import signal

    fault = _infra()[sc.infra]
    argv = [str(Path(sys.executable).with_name("inv")), "-f", str(base / "invoke.yaml"),
            "cutover", "--version", V, "--yes", "--auto-rollback", "--json"]
    with log.open("a", encoding="utf-8") as fh:
        fh.write(f"\n$ {' '.join(argv[1:])}   # {fault.about}\n")
        fh.flush()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=fh, stdin=subprocess.DEVNULL,
                                cwd=Path(__file__).resolve().parents[2], env={**os.environ, **dict(fault.env)},
                                start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        undo_with: object = None
        try:
            while proc.poll() is None and not fault.when(read_journal(journal)):
                time.sleep(0.02)
            if proc.poll() is None:
                undo_with = fault.act(base, proc)
            first = proc.wait(timeout=900)
        finally:
            fault.undo(base, undo_with)
    steps = read_journal(journal).get("steps", [])
    cut = [s.get("outcome") for s in steps if str(s.get("name", "")).startswith(fault.step)
           and s.get("outcome") != "running" and (s.get("outcome") != "ok" or "ok" in fault.cut)]
    decided = inv(base, "decide", "--version", V, "--json", log=log)
    verdict = str((last_json(decided.stdout) or {}).get("verdict", ""))
    problems = []
    if first != fault.first_exit:
        problems.append(f"exit {first}, expected {fault.first_exit}")
    if not any(c in fault.cut for c in cut):
        problems.append(f"{fault.step} steps cut: {cut or 'none'}, expected {'/'.join(fault.cut)}")
    if verdict != fault.decided:
        problems.append(f"decide said {verdict or 'nothing'}, expected {fault.decided}")
    note = ("first run: " + "; ".join(problems)) if problems else ""
    return inv(base, "cutover", "--version", V, "--resume", "--yes", "--auto-rollback", "--json", log=log), note


def data_done(sc: Scenario, journal: dict) -> str:
    """What is wrong with the rollback's §2.3 (the data plan's `done`, and a restore's export), or ""."""
    plan = (journal.get("facts") or {}).get("data_plan") or {}
    if plan.get("done") != sc.data:
        return f"warehouse {plan.get('done') or 'not decided'}, expected {sc.data} ({plan.get('line', 'no data plan')})"
    if sc.data == "restored":
        exported = [s for s in journal.get("steps", []) if str(s.get("name", "")).endswith(":db-export")]
        rows = sum(int(f.get("rows") or 0) for s in exported for f in (s.get("evidence") or {}).get("files", []))
        if not exported or exported[-1].get("outcome") != "ok" or rows < int(plan.get("rows_at_risk") or 0) or not rows:
            return f"the rows since T+00:00 were not all exported ({rows} of {plan.get('rows_at_risk')})"
    return ""


def run_scenario(base: Path, sc: Scenario, logs: Path, *, after: Callable[[Path], str] | None = None) -> Row:
    from . import build
    from .state import load_or_new

    st = load_or_new(base)
    settings = build.settings_for(base / "invoke.yaml")
    log = logs / f"{sc.name}.log"
    log.write_text(f"# scenario {sc.name}: {sc.about}\n", encoding="utf-8")
    t0 = time.monotonic()
    reset(st, settings)
    apply(st, settings, sc)
    blink = ""
    if sc.infra:
        r, blink = run_blink(base, sc, log, settings.state_dir / "journals" / settings.host / f"{V}.jsonl")
    else:
        r = inv(base, "cutover", "--version", V, "--yes", "--auto-rollback", "--json", log=log)
    got, ok, note = judge(sc, r.returncode, last_json(r.stdout))
    ok, note = ok and not blink, blink or note
    if ok and sc.data:
        wrong = data_done(sc, read_journal(settings.state_dir / "journals" / settings.host / f"{V}.jsonl"))
        ok, note = (not wrong), (wrong or note)
    if ok and after is not None:
        extra = after(log)
        ok, note = (not extra), (extra or note)
    return Row(sc.name, sc.expected, got, round(time.monotonic() - t0, 1), ok, str(log), note)


def rollback_drill(base: Path, logs: Path) -> Row:
    """After the green cutover: inv rollback, the legacy smoke, and the same-day redeploy refused."""
    log = logs / "rollback-drill.log"
    log.write_text("# rollback drill after the green cutover\n", encoding="utf-8")
    t0 = time.monotonic()
    steps = [("rollback", inv(base, "rollback", "--version", V, "--yes", "--reason", "rehearsal drill", log=log), 0),
             ("smoke --expect legacy", inv(base, "smoke", "--expect", "legacy", log=log), 0),
             ("deploy (same day)", inv(base, "deploy", "--version", V, "--yes", log=log), 1)]
    bad = [f"{name}: exit {r.returncode}, expected {want}" for name, r, want in steps if r.returncode != want]
    got = "rolled back, legacy, redeploy refused" if not bad else "; ".join(bad)
    return Row("rollback-drill", "rolled back, legacy, redeploy refused", got, round(time.monotonic() - t0, 1),
               not bad, str(log))


def closeout_landed(base: Path) -> Callable[[Path], str]:
    def check(log: Path) -> str:
        from .state import load_or_new

        st = load_or_new(base)
        text = subprocess.run(["git", "-C", str(st.origin_repo), "show", "main:docs/status/index.md"],
                              capture_output=True, text=True).stdout
        lines = [ln for ln in text.splitlines() if "v0.3.0 W4 /price cutover completed" in ln]
        return "" if len(lines) == 1 else f"origin's docs/status/index.md has {len(lines)} close-out lines, not 1"
    return check


def matrix(base: Path, names: list[str], say: Callable[[str], None]) -> list[Row]:
    logs = base / "rehearse-logs"
    logs.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    for name in names:
        sc = SCENARIOS[name]
        say(f"== {name}: {sc.about} (expected {sc.expected})")
        row = run_scenario(base, sc, logs, after=closeout_landed(base) if name in ("green", "frozen-link-closeout") else None)
        rows.append(row)
        say(f"   {'ok' if row.ok else 'MISMATCH'}: {row.got} in {row.seconds:.0f} s ({row.log})")
        if name == "green" and row.ok:
            say("== rollback-drill: inv rollback, smoke --expect legacy, same-day deploy refused")
            rows.append(rollback_drill(base, logs))
            say(f"   {'ok' if rows[-1].ok else 'MISMATCH'}: {rows[-1].got} in {rows[-1].seconds:.0f} s")
    return rows
