"""The twin's twilight-drive repositories (real git).

    <twin>/git/twilight-drive.git        bare origin (stands in for github.com/lacatfly/twilight-drive)
    <twin>/operator/twilight-drive       the operator's clone (the tool's `local_repo`)
    ~/twilight/source (twin account)     tvps' checkout, pinned (detached HEAD) to origin/main

History: commit 1 "v0.2.0" (tag v0.2.0, annotated) with scripts/install-skill.sh,
skill/stock-research/SKILL.md, docs/status/index.md and deploy/compose.yml (the twin's
own compose file); commit 2 "W4" (main) updates SKILL.md for close_raw/close_qfq and the
status page.  Commits use fixed dates and a repo-local identity, so the same content
gives the same SHAs; no global or system git config is read or written.

Every step is idempotent: origin and the operator clone are built under a temporary
name and renamed into place; an existing one is reused as it is.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from ..errors import TwilightError

IDENTITY = {"user.name": "Twin Operator", "user.email": "operator@twin.invalid"}
V020_DATE = "2026-04-10T10:00:00+08:00"
W4_DATE = "2026-05-08T10:00:00+08:00"
TAG = "v0.2.0"

INSTALL_SKILL = """#!/usr/bin/env bash
# Install the stock-research skill for Hermes Agent.
# Copies skill/stock-research/ into $HERMES_HOME/skills/stock-research (default ~/.hermes/skills).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${HERMES_HOME:-$HOME/.hermes}/skills/stock-research"
mkdir -p "$dest"
cp -R "$here/skill/stock-research/." "$dest/"
echo "skill installed: stock-research"
"""

SKILL_V020 = """---
name: stock-research
description: Research an A-share stock with twilight-drive's /price (daily close, provider, freshness).
version: 0.2.0
---

# stock-research

Call `GET /price?code=<ts_code>` and report `value` (the daily close) with its `metric`.
"""

SKILL_W4 = """---
name: stock-research
description: Research an A-share stock with twilight-drive's /price (close_raw and close_qfq, provider chain, market state).
version: 0.3.0
---

# stock-research

Call `GET /price?code=<ts_code>[&date=YYYY-MM-DD]`.

- `close_raw`: the unadjusted close, in CNY per share. Quote this as "the price".
- `close_qfq`: the forward-adjusted close (qfq), for returns across splits and dividends;
  `adj_factor` relates the two. Never mix the two in one series.
- `market_state` (open / closing / closed) and `source` say how fresh the quote is.
"""

STATUS_V020 = """# twilight-drive status

- v0.2.0: legacy /price envelope (`code`, `metric`, `value`).
"""

STATUS_W4 = STATUS_V020 + """- W4 (v0.3.0-w4-cutover): /price returns close_raw and close_qfq with units, market state
  and the provider chain; the stock-research skill reads both closes.
"""


def git_env(date: str | None = None) -> dict[str, str]:
    """No system or global config (identity and settings come from the repo's own config)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update({"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"})
    if date:
        env.update({"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date})
    return env


def git(repo: Path | None, *args: str, date: str | None = None, check: bool = True, strip: bool = True) -> str:
    """Run git (in `repo`, trusted even when another user owns it); its stdout, stripped unless `strip` is False."""
    argv = ["git"]
    if repo is not None:
        argv += ["-c", f"safe.directory={repo}", "-C", str(repo)]
    res = subprocess.run([*argv, *args], env=git_env(date), capture_output=True, text=True, timeout=120)
    if check and res.returncode != 0:
        tail = (res.stderr.strip().splitlines() or ["no output"])[-1]
        raise TwilightError(f"`git {' '.join(args)}` failed in {repo}: {tail}", "see the repo with `git status`")
    return res.stdout.strip() if strip else res.stdout


def set_identity(repo: Path) -> None:
    for key, value in IDENTITY.items():
        git(repo, "config", "--local", key, value)
    git(repo, "config", "--local", "advice.detachedHead", "false")


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    script = root / "scripts/install-skill.sh"
    if script.exists():
        script.chmod(0o755)


def commit_all(repo: Path, message: str, date: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message, date=date)
    return git(repo, "rev-parse", "HEAD")


def build_origin(origin: Path, compose_text: str) -> None:
    """The bare origin with the two commits, tag v0.2.0 and main (no-op when it exists)."""
    if (origin / "HEAD").exists():
        return
    work = origin.with_name(origin.name + ".seed")
    tmp = origin.with_name(origin.name + ".tmp")
    for d in (work, tmp):
        shutil.rmtree(d, ignore_errors=True)
    work.mkdir(parents=True)
    git(work, "init", "-q", "-b", "main")
    set_identity(work)
    _write(work, {"scripts/install-skill.sh": INSTALL_SKILL, "skill/stock-research/SKILL.md": SKILL_V020,
                  "docs/status/index.md": STATUS_V020, "deploy/compose.yml": compose_text})
    commit_all(work, "v0.2.0: legacy /price envelope, stock-research skill 0.2.0", V020_DATE)
    git(work, "tag", "-a", TAG, "-m", "v0.2.0", date=V020_DATE)
    _write(work, {"skill/stock-research/SKILL.md": SKILL_W4, "docs/status/index.md": STATUS_W4})
    commit_all(work, "W4: stock-research skill reads close_raw/close_qfq; status page", W4_DATE)
    git(None, "init", "-q", "--bare", "-b", "main", str(tmp))
    git(work, "push", "-q", str(tmp), "refs/heads/main:refs/heads/main", f"refs/tags/{TAG}:refs/tags/{TAG}")
    os.replace(tmp, origin)
    shutil.rmtree(work)


def build_operator_clone(origin: Path, clone: Path) -> None:
    """The operator's clone of origin, identity in its own .git/config (no-op when it exists)."""
    if (clone / ".git").exists():
        return
    tmp = clone.with_name(clone.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    clone.parent.mkdir(parents=True, exist_ok=True)
    git(None, "clone", "-q", str(origin), str(tmp))
    set_identity(tmp)
    os.replace(tmp, clone)


def commits(origin: Path) -> dict[str, str]:
    """{"v0.2.0": tag's commit, "main": origin's main} as they are now."""
    return {TAG: git(origin, "rev-parse", f"refs/tags/{TAG}^{{commit}}"), "main": git(origin, "rev-parse", "refs/heads/main")}


def committed_compose(origin: Path) -> str | None:
    """deploy/compose.yml as committed at the v0.2.0 tag in origin; None while there is no origin."""
    if not (origin / "HEAD").exists():
        return None
    return git(origin, "show", f"refs/tags/{TAG}:deploy/compose.yml", check=False, strip=False)


def head(repo: Path) -> str | None:
    out = git(repo, "rev-parse", "--verify", "-q", "HEAD^{commit}", check=False)
    return out or None


def pin_source(source: Path, origin: Path, sha: str, uid: int, gid: int, *, force: bool = False) -> None:
    """tvps' ~/twilight/source: a clone of origin at `sha`, detached; owned by the twin account.
    Without `force`, a checkout that already has a HEAD is left where it is."""
    source.mkdir(parents=True, exist_ok=True)
    if not (source / ".git").exists():
        git(source, "init", "-q", "-b", "main")
        git(source, "config", "--local", "advice.detachedHead", "false")
    if git(source, "remote", check=False).split() != ["origin"]:
        git(source, "remote", "add", "origin", str(origin))
    if force or head(source) is None:
        git(source, "fetch", "-q", "--tags", "--force", "origin")
        git(source, "checkout", "-q", "-f", "--detach", sha)
    for p in [source, *source.rglob("*")]:
        os.lchown(p, uid, gid)
