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
