"""T+00:25: `inv hermes-reinstall` — install-skill.sh, restart Hermes, verify the skill.

    run(t, force=False) -> ReinstallReport

Steps (each with its own timeout from config; a failure names the step, shows the tail of
its output and the fix; later steps are SKIP):
  install     `bash scripts/install-skill.sh` in twilight.local_repo        journal step hermes-install
  restart     the configured restart command (default `hermes restart`)   journal step hermes-restart
  registered  the startup log has the register line (only when this run restarted Hermes: an
              older log proves nothing about now), else `hermes skills list` shows the skill
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

from ..builders import hermes
from ..errors import CheckFailed, TwilightError
from ..results import CheckResult, Status, exit_code
from ..target import Target

INSTALL_SCRIPT = "scripts/install-skill.sh"
TAIL_LINES = 15
STEP_IDS = ("install", "restart", "registered", "files")
TITLES = {
    "install": "install-skill.sh",
    "restart": "restart Hermes",
    "registered": "skill registered",
    "files": "installed files = repo",
}


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

def hermes_home(settings) -> Path:
    return settings.hermes_home or Path(os.path.expanduser("~/.hermes"))


def skills_dir(settings) -> Path:
    return settings.hermes_skills_dir or hermes_home(settings) / "skills"


def startup_log(settings) -> Path:
    return settings.hermes_startup_log or hermes_home(settings) / "logs" / "startup.log"


def hermes_env(settings) -> dict[str, str]:
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


def listed(skills_list_output: str, skill: str) -> bool:
    """`hermes skills list` prints `name  description` lines (a table's cells may be framed by │)."""
    for line in skills_list_output.splitlines():
        cells = [c for c in re.split(r"[\s│|]+", line.strip()) if c]
        if cells and cells[0] == skill:
            return True
    return False


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
        out = _run_step(local, hermes.restart(s.hermes_restart), "restart", s.hermes_restart_timeout,
                        "restart Hermes by hand, or set twilight.hermes_restart to the operator's restart command")
        step.evidence["output"] = tail(out)
        restarted_now = True

    for sid, name, action, verify in (("install", "hermes-install", install, installed_equal),
                                      ("restart", "hermes-restart", restart, None)):
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
        with t.journals.step(journal, "hermes-verify") as step:
            steps.append(registered(t, local, restarted_now))
            steps.append(files_equal(s, source))
            step.evidence["checks"] = [r.to_json() for r in steps[-2:]]
            step.outcome = "ok" if all(r.ok for r in steps[-2:]) else "failed"
    ok = exit_code(steps) == 0
    failed = next((r for r in steps if r.status is Status.FAIL), None)
    t.audit("hermes-reinstall", "ok" if ok else "failed",
            f"skill {skill}" + (f"; failed at step {failed.id}" if failed else ""))
    return ReinstallReport(skill, tuple(steps))


def registered(t: Target, local, restarted_now: bool) -> CheckResult:
    s = t.settings
    pattern = re.compile(s.hermes_register_pattern)
    log = startup_log(s)
    ev: dict[str, Any] = {"startup_log": str(log), "pattern": s.hermes_register_pattern}
    if restarted_now:
        try:
            text = log.read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            ev["log"] = f"not read: {e.strerror}"
        else:
            line = next((ln for ln in text.splitlines() if pattern.search(ln)), None)
            if line is not None:
                return CheckResult("registered", Status.PASS, f"startup log: {line.strip()[:200]}", {**ev, "line": line.strip()})
            ev["log"] = f"no line matches {s.hermes_register_pattern!r}"
    else:
        ev["log"] = "not used: Hermes was not restarted by this run (the log may be older than the skill)"
    try:
        out = _run_step(local, hermes.skills_list(s.hermes_command), "registered", s.hermes_verify_timeout,
                        "check that Hermes runs (set twilight.hermes_command / hermes_path)")
    except StepFailed as e:
        return CheckResult("registered", Status.FAIL, e.message, {**ev, "output_tail": e.tail}, e.hint or "")
    ev["skills_list"] = tail(out)
    if listed(out, s.hermes_skill):
        return CheckResult("registered", Status.PASS, f"`hermes skills list` shows {s.hermes_skill}", ev)
    return CheckResult("registered", Status.FAIL,
                       f"step registered: {s.hermes_skill} is not registered (startup log: {ev['log']}; "
                       f"`hermes skills list` does not show it)",
                       {**ev, "output_tail": tail(out)},
                       f"check {skills_dir(s)}/{s.hermes_skill}/SKILL.md and the startup log {log}, then "
                       "`inv hermes-reinstall --force`")


def files_equal(s, source: Path) -> CheckResult:
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
