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
