"""git argv for the local twilight-drive repo (run by the LocalExecutor in the repo dir)."""
from __future__ import annotations


def git(*args: str) -> list[str]:
    """`git ARGS`; the repo is the executor's working directory, never a -C path in argv."""
    return ["git", *args]


def rev_parse(ref: str) -> list[str]:
    """The commit a ref names (`^{commit}` peels an annotated tag)."""
    return git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")


def fetch(remote: str = "origin", *refspecs: str) -> list[str]:
    return git("fetch", "--quiet", "--tags", remote, *refspecs)


def show_file(ref: str, path: str) -> list[str]:
    """The bytes of `path` at `ref`."""
    return git("show", f"{ref}:{path}")


def status_porcelain(*paths: str) -> list[str]:
    return git("status", "--porcelain", "--", *paths) if paths else git("status", "--porcelain")


def rev_list_count(range_: str) -> list[str]:
    return git("rev-list", "--count", range_)


def tag(name: str, commit: str) -> list[str]:
    """A lightweight tag, as the runbook's `git tag v0.3.0-w4-cutover`, at an explicit commit."""
    return git("tag", "--no-sign", name, commit)


def ls_remote_tag(remote: str, name: str) -> list[str]:
    """The remote's tag ref and, for an annotated tag, its peeled commit (`…^{}`)."""
    return git("ls-remote", "--tags", remote, f"refs/tags/{name}", f"refs/tags/{name}^{{}}")


def push_tag(remote: str, name: str) -> list[str]:
    return git("push", "--quiet", remote, f"refs/tags/{name}:refs/tags/{name}")


def parse_ls_remote(text: str, name: str) -> str | None:
    """The commit a remote tag names (the peeled line wins for an annotated tag), or None."""
    plain = peeled = None
    for line in text.splitlines():
        sha, _, ref = line.partition("\t")
        if ref == f"refs/tags/{name}^{{}}":
            peeled = sha
        elif ref == f"refs/tags/{name}":
            plain = sha
    return peeled or plain


# ---------------------------------------------------------------- closeout (T+00:55)

def current_branch() -> list[str]:
    """The branch HEAD is on (short name); exits 1 with no output on a detached HEAD."""
    return git("symbolic-ref", "--quiet", "--short", "HEAD")


def fetch_branch(remote: str, branch: str) -> list[str]:
    """Update `remote/branch` (no tags: closeout only needs the branch)."""
    return git("fetch", "--quiet", remote, f"refs/heads/{branch}:refs/remotes/{remote}/{branch}")


def staged_paths() -> list[str]:
    """Every path whose index entry differs from HEAD, NUL-separated (names are not quoted)."""
    return git("diff", "--cached", "--name-only", "--no-renames", "-z", "HEAD", "--")


def show_index(path: str) -> list[str]:
    """The bytes of `path` as staged (`:path` is the index's copy)."""
    return git("show", f":{path}")


def commit_only(message: str, path: str) -> list[str]:
    """Commit `path` alone (its working-tree content), whatever else is changed or staged.
    The identity is the repo's own config; nothing is written to any git config."""
    return git("commit", "--quiet", "--only", "-m", message, "--", path)


def last_commit_adding(ref: str, text: str, path: str) -> list[str]:
    """The newest commit on `ref` that changed how often `text` occurs in `path` (git's pickaxe)."""
    return git("log", "-1", "--format=%H", "--fixed-strings", "-S", text, ref, "--", path)


def push_branch(remote: str, branch: str) -> list[str]:
    """Push the branch to the same name on the remote (fast-forward only: never --force)."""
    return git("push", "--quiet", remote, f"refs/heads/{branch}:refs/heads/{branch}")
