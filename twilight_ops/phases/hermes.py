"""T+00:25: `inv hermes-reinstall` — install-skill.sh, restart Hermes if needed, verify the skill.

    run(t, force=False) -> ReinstallReport

Steps (each with its own timeout from config; a failure names the step, shows the tail of
its output and the fix; later steps are SKIP):
  install     `bash scripts/install-skill.sh` in twilight.local_repo        journal step hermes-install
  restart     twilight.hermes_restart (journal step hermes-restart):
                auto  `hermes gateway status`: no gateway → nothing to restart (every `hermes`
                      process rescans the skills); a gateway service → `hermes gateway restart`;
                      a foreground gateway → FAIL (restart it where it runs)
                none  nothing to restart
                else  that command
  registered  `hermes skills list` shows the skill with Status enabled, and its SKILL.md has the
              front matter Hermes needs (name, description); with hermes_register_pattern set and
              a restart by this run, a matching log line is accepted too
  files       the installed skill directory == the repo's skill/<skill>/, sha256 per file
The Hermes commands run with HERMES_HOME and PATH from config (never a secret in env).
install and restart are journal steps (`once`): a re-run skips them once they succeeded,
unless --force; the two verifications run every time.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from pathlib import Path
from typing import Any, Callable, Mapping

from .. import hermes_output
from ..builders import hermes
from ..config import HermesSettings
from ..errors import CheckFailed, TwilightError
from ..results import CheckResult, Status, exit_code
from ..runbook import Steps
from ..target import Target

INSTALL_SCRIPT = "scripts/install-skill.sh"
TAIL_LINES = 15


@dataclasses.dataclass(frozen=True)
class ReinstallReport:
    skill: str
    steps: tuple[CheckResult, ...]

    @property
    def results(self) -> tuple[CheckResult, ...]:
        return self.steps

    def to_json(self) -> dict[str, Any]:
        return {"skill": self.skill, "steps": [s.to_json() for s in self.steps],
                "verdict": "ok" if exit_code(self.steps) == 0 else "failed"}


class StepFailed(CheckFailed):
    """One step failed: its output tail travels with it."""

    def __init__(self, message: str, hint: str, tail: str = ""):
        super().__init__(message, hint)
        self.tail = tail


def tail(text: str, n: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-n:])


# ---------------------------------------------------------------- pure: paths and file digests

def hermes_home(settings: HermesSettings) -> Path:
    return settings.hermes_home or Path(os.path.expanduser("~/.hermes"))


def skills_dir(settings: HermesSettings) -> Path:
    return settings.hermes_skills_dir or hermes_home(settings) / "skills"


def startup_log(settings: HermesSettings) -> Path:
    """The Hermes log searched for a register line (optional) and by the guard: Hermes 0.19's main log."""
    return settings.hermes_startup_log or hermes_home(settings) / "logs" / "agent.log"


def hermes_env(settings: HermesSettings) -> dict[str, str]:
    home = str(settings.hermes_home) if settings.hermes_home else None
    return hermes.hermes_env(home, settings.hermes_path, os.environ.get("PATH", ""))


def digests(root: Path) -> dict[str, str]:
    """{relative path: sha256} of every regular file under root (dot-files included, symlinks followed)."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            out[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def compare(repo: Mapping[str, str], installed: Mapping[str, str]) -> dict[str, list[str]]:
    """What differs between the repo's skill files and the installed ones (empty lists = equal)."""
    return {
        "missing": sorted(set(repo) - set(installed)),
        "extra": sorted(set(installed) - set(repo)),
        "differ": sorted(k for k in set(repo) & set(installed) if repo[k] != installed[k]),
    }


def find_installed(skills: Path, skill: str) -> Path | None:
    """skills/<skill>, or skills/<category>/<skill> (Hermes scans one category folder deep)."""
    direct = skills / skill
    if (direct / "SKILL.md").is_file():
        return direct
    if skills.is_dir():
        for category in sorted(skills.iterdir()):
            if category.is_dir() and not category.name.startswith(".") and (category / skill / "SKILL.md").is_file():
                return category / skill
    return None


# ---------------------------------------------------------------- the steps

def _run_step(ex, argv, name: str, timeout: float, fix: str) -> str:
    try:
        r = ex.run(argv, check=False, timeout=timeout)
    except TwilightError as e:        # timeout, missing program: one line
        raise StepFailed(f"step {name} (`{hermes_render(argv)}`): {e.message}", e.hint or fix) from None
    out = (r.stdout + ("\n" + r.stderr if r.stderr.strip() else "")).strip()
    if not r.ok:
        raise StepFailed(f"step {name} (`{r.command}`) exited {r.exited}", fix, tail(out))
    return out


def hermes_render(argv) -> str:
    from ..executor import render

    return render(list(argv))


def _do(t: Target, journal, name: str, action: Callable, verify: Callable | None, force: bool) -> tuple[Any, str]:
    if force:
        with t.journals.step(journal, name) as step:
            step.evidence["forced"] = True
            action(step)
        return step, "ran"
    return t.journals.once(journal, name, action, verify=verify)


def run(t: Target, force: bool = False) -> ReinstallReport:
    s = t.settings
    skill = s.hermes_skill
    repo_dir = s.local_repo
    source = repo_dir / "skill" / skill
    if not (repo_dir / INSTALL_SCRIPT).is_file():
        from ..errors import BadInput

        raise BadInput(f"twilight.local_repo {repo_dir} has no {INSTALL_SCRIPT}",
                       "clone twilight-drive there (and pull main), or set twilight.local_repo")
    env = hermes_env(s)
    local = t.local.child(env=env)
    repo = t.local.child(cwd=repo_dir, env=env)
    journal = t.journal()
    steps: list[CheckResult] = []
    restarted_now = False

    def install(step) -> None:
        out = _run_step(repo, hermes.install_skill(INSTALL_SCRIPT), "install", s.hermes_install_timeout,
                        f"fix {INSTALL_SCRIPT} in {repo_dir} (see its output), then re-run `inv hermes-reinstall`")
        step.evidence["output"] = tail(out)

    def installed_equal(step) -> bool:
        where = find_installed(skills_dir(s), skill)
        return where is not None and source.is_dir() and not any(compare(digests(source), digests(where)).values())

    def restart(step) -> None:
        nonlocal restarted_now
        out, restarted_now = restart_hermes(s, local)
        step.evidence["output"] = tail(out)
        step.evidence["restarted"] = restarted_now

    for sid, name, action, verify in (("install", Steps.HERMES_INSTALL, install, installed_equal),
                                      ("restart", Steps.HERMES_RESTART, restart, None)):
        if steps and steps[-1].status is Status.FAIL:
            steps.append(CheckResult(sid, Status.SKIP, f"not run: step {steps[-1].id} failed"))
            continue
        try:
            step, how = _do(t, journal, name, action, verify, force)
        except StepFailed as e:
            steps.append(CheckResult(sid, Status.FAIL, e.message, {"output_tail": e.tail}, e.hint or ""))
            continue
        what = {"ran": "done", "skipped": "done earlier (journal); --force re-runs it",
                "verified": "found done after an interrupted run"}[how]
        steps.append(CheckResult(sid, Status.PASS, f"{what}: {step.evidence.get('output', '')}".strip().rstrip(":"),
                                 {"output_tail": step.evidence.get("output", ""), "how": how}))
    if any(r.status is Status.FAIL for r in steps):
        steps += [CheckResult(sid, Status.SKIP, "not run: an earlier step failed") for sid in ("registered", "files")]
    else:
        with t.journals.step(journal, Steps.HERMES_VERIFY) as step:
            steps.append(registered(t, local, restarted_now))
            steps.append(files_equal(s, source))
            step.evidence["checks"] = [r.to_json() for r in steps[-2:]]
            step.outcome = "ok" if all(r.ok for r in steps[-2:]) else "failed"
    ok = exit_code(steps) == 0
    failed = next((r for r in steps if r.status is Status.FAIL), None)
    t.audit("hermes-reinstall", "ok" if ok else "failed",
            f"skill {skill}" + (f"; failed at step {failed.id}" if failed else ""))
    return ReinstallReport(skill, tuple(steps))


def plan(s) -> list[str]:
    """What hermes-reinstall would do (inv --dry)."""
    restart = {("auto",): f"`{hermes_render(hermes.gateway_status(s.hermes_command))}`: restart a gateway service "
                          "if one runs (none needed otherwise: every hermes process rescans the skills)",
               ("none",): "no restart (twilight.hermes_restart is none)"}.get(s.hermes_restart,
                                                                              hermes_render(s.hermes_restart))
    return [f"in {s.local_repo}: bash {INSTALL_SCRIPT}", restart,
            f"verify: `{hermes_render(hermes.skills_list(s.hermes_command))}` shows {s.hermes_skill} enabled, "
            "with its front matter"
            + (f" (or {startup_log(s)} has /{s.hermes_register_pattern}/ after a restart)" if s.hermes_register_pattern else "")
            + f"; the installed files' sha256 equal skill/{s.hermes_skill}/"]


RESTART_FIX = "restart Hermes by hand, or set twilight.hermes_restart (auto, none or the operator's restart command)"


def restart_hermes(s: HermesSettings, local) -> tuple[str, bool]:
    """(what happened, whether something was restarted) for twilight.hermes_restart."""
    mode = s.hermes_restart
    if mode == ("none",):
        return "not needed (twilight.hermes_restart is none): every hermes process rescans the skills", False
    if mode != ("auto",):
        return _run_step(local, hermes.restart(mode), "restart", s.hermes_restart_timeout, RESTART_FIX), True
    status_argv = hermes.gateway_status(s.hermes_command)
    status = _run_step(local, status_argv, "restart", s.hermes_verify_timeout,
                       "check that Hermes runs (twilight.hermes_command / hermes_path)")
    state = hermes_output.gateway_state(status)
    if state == "none":
        return ("not needed: no Hermes gateway is running, and every `hermes` process rescans "
                f"{skills_dir(s)} when it starts"), False
    if state == "manual":
        pids = ", ".join(map(str, hermes_output.gateway_pids(status))) or "?"
        raise StepFailed(f"step restart: a Hermes gateway runs in the foreground (PID {pids}), not as a service; "
                         "`hermes gateway restart` would take over this terminal",
                         "stop it where it runs (Ctrl-C) and start it again (`hermes gateway run`), then "
                         "`INVOKE_TWILIGHT_HERMES_RESTART=none inv hermes-reinstall`", tail(status))
    out = _run_step(local, hermes.gateway_restart(s.hermes_command), "restart", s.hermes_restart_timeout,
                    "`hermes gateway status` and the service's log, then `inv hermes-reinstall --force`")
    return f"gateway service restarted: {out}", True


def registered(t: Target, local, restarted_now: bool) -> CheckResult:
    """`hermes skills list` shows the skill, enabled, and Hermes can read its front matter."""
    s = t.settings.hermes
    ev: dict[str, Any] = {}
    line = _register_line(s, restarted_now, ev)
    if line is not None:
        return CheckResult("registered", Status.PASS, f"{startup_log(s)}: {line[:200]}", {**ev, "line": line})
    list_local = local.child(env={"COLUMNS": "200"})     # rich wraps the table at 80 columns without a terminal
    try:
        out = _run_step(list_local, hermes.skills_list(s.hermes_command), "registered", s.hermes_verify_timeout,
                        "check that Hermes runs (set twilight.hermes_command / hermes_path)")
    except StepFailed as e:
        return CheckResult("registered", Status.FAIL, e.message, {**ev, "output_tail": e.tail}, e.hint or "")
    ev["skills_list"] = tail(out)
    state = hermes_output.skill_state(out, s.hermes_skill)
    where = find_installed(skills_dir(s), s.hermes_skill)
    problem = None
    if where is not None:
        try:
            problem = hermes_output.front_matter_problem((where / "SKILL.md").read_text(encoding="utf-8", errors="replace"),
                                                         s.hermes_skill)
        except OSError as e:
            problem = f"SKILL.md is unreadable ({e.strerror})"
    if state is None:
        return CheckResult("registered", Status.FAIL,
                           f"step registered: `hermes skills list` does not show {s.hermes_skill}",
                           {**ev, "output_tail": tail(out)},
                           f"check {skills_dir(s)}/{s.hermes_skill}/SKILL.md and HERMES_HOME "
                           "(twilight.hermes_home), then `inv hermes-reinstall --force`")
    if state not in ("enabled", "listed"):
        return CheckResult("registered", Status.FAIL,
                           f"step registered: `hermes skills list` shows {s.hermes_skill} as {state}",
                           {**ev, "status": state},
                           f"enable it: remove {s.hermes_skill} from skills.disabled in {hermes_home(s)}/config.yaml "
                           f"(or `hermes skills enable {s.hermes_skill}`), then `inv hermes-reinstall`")
    if problem:
        return CheckResult("registered", Status.FAIL,
                           f"step registered: Hermes lists {s.hermes_skill} by its folder only: {where}/{problem}",
                           {**ev, "status": state, "front_matter": problem},
                           f"fix skill/{s.hermes_skill}/SKILL.md in twilight.local_repo (front matter: name, description), "
                           "then `inv hermes-reinstall --force`")
    return CheckResult("registered", Status.PASS, f"`hermes skills list` shows {s.hermes_skill} "
                       + ("enabled" if state == "enabled" else "(this Hermes prints no Status column)"),
                       {**ev, "status": state})


def _register_line(s: HermesSettings, restarted_now: bool, ev: dict[str, Any]) -> str | None:
    """The optional register line (twilight.hermes_register_pattern) of a restart this run made."""
    if not s.hermes_register_pattern:
        return None
    log = startup_log(s)
    ev.update({"startup_log": str(log), "pattern": s.hermes_register_pattern})
    if not restarted_now:
        ev["log"] = "not used: Hermes was not restarted by this run (the log may be older than the skill)"
        return None
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        ev["log"] = f"not read: {e.strerror}"
        return None
    pattern = re.compile(s.hermes_register_pattern)
    line = next((ln.strip() for ln in text.splitlines() if pattern.search(ln)), None)
    if line is None:
        ev["log"] = f"no line matches {s.hermes_register_pattern!r}"
    return line


def files_equal(s: HermesSettings, source: Path) -> CheckResult:
    skills = skills_dir(s)
    if not source.is_dir():
        return CheckResult("files", Status.FAIL, f"step files: the repo has no skill/{s.hermes_skill}/",
                           {"repo": str(source)}, "check twilight.local_repo and twilight.hermes_skill")
    where = find_installed(skills, s.hermes_skill)
    if where is None:
        return CheckResult("files", Status.FAIL, f"step files: no {s.hermes_skill}/SKILL.md under {skills}",
                           {"skills_dir": str(skills)}, "`inv hermes-reinstall --force` (check HERMES_HOME: twilight.hermes_home)")
    repo_d, inst_d = digests(source), digests(where)
    diff = compare(repo_d, inst_d)
    ev = {"installed": str(where), "repo": str(source), "files": len(repo_d), **diff}
    if any(diff.values()):
        parts = [f"{k}: {', '.join(v[:5])}" for k, v in diff.items() if v]
        return CheckResult("files", Status.FAIL, f"step files: {where} differs from the repo ({'; '.join(parts)})", ev,
                           "`inv hermes-reinstall --force`" + (f"; remove the extra files from {where}" if diff["extra"] else ""))
    return CheckResult("files", Status.PASS, f"{len(repo_d)} file(s) in {where} match skill/{s.hermes_skill}/ (sha256)", ev)
