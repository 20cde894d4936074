"""Files and the deploy lock dir on tvps."""
from __future__ import annotations

from .layout import Layout


def mkdir_p(path: str) -> list[str]:
    return ["mkdir", "-p", "--", path]


def mkdir_atomic(path: str) -> list[str]:
    """Plain mkdir: fails if the directory exists — the atomic lock primitive."""
    return ["mkdir", "--", path]


def is_dir(path: str) -> list[str]:
    return ["test", "-d", path]


def free_space(path: str) -> list[str]:
    """POSIX `df` of the filesystem holding `path`, in KiB (parse_free_kib)."""
    return ["df", "-P", "-k", "--", path]


def parse_free_kib(stdout: str) -> int | None:
    """The Available column of `df -P -k` (header + one line; a long device name may wrap onto two
    lines in some dfs: the fields are counted from the end), None when it cannot be read."""
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    if len(lines) < 2 or not lines[0].startswith("Filesystem"):
        return None
    fields = " ".join(lines[1:]).split()
    if len(fields) < 6 or not fields[-3].isdigit():
        return None
    return int(fields[-3])


NO_DIR = 66      # append_stdin's exit status when the file's directory is missing


def append_stdin(path: str, folder: str, *, stamp: bool = False) -> list[str]:
    """Append stdin to `path` with one command (`>>`: O_APPEND, created if missing, never rewritten);
    exit NO_DIR when `folder` (its directory) is missing.  With `stamp`, tvps' clock (`date +%s`) on
    stdout after the append.  The script is constant: the values travel as its arguments."""
    script = 'test -d "$2" || exit 66; cat >> "$1" || exit 1'
    if stamp:
        script += "; date +%s"
    return ["sh", "-c", script, "sh", path, folder]


def list_dir(path: str) -> list[str]:
    return ["ls", "-1", "--", path]


def remove_lock(lay: Layout) -> list[str]:
    """Release: the lock dir holds only holder.json (and maybe a temp of it)."""
    return ["rm", "-rf", "--", lay.lock_dir]


def rename_dir(src: str, dest: str) -> list[str]:
    """Move a directory onto `dest` (-T: never into it); fails when `dest` holds anything, -n
    keeps an existing empty one (the caller checks that `src` is gone)."""
    return ["mv", "-n", "-T", "--", src, dest]


def exists(path: str) -> list[str]:
    return ["test", "-e", path]


def remove_dir(path: str) -> list[str]:
    return ["rm", "-rf", "--", path]


def clock_read() -> list[str]:
    """tvps's wall clock as seconds since the epoch, with nanoseconds (GNU date)."""
    return ["date", "+%s.%N"]


def remove_other_probes(folder: str, keep: str) -> list[str]:
    """Delete the monitor probe bodies an older twilight-ops kept in `folder` (probe-<hash>.py), not `keep`."""
    return ["find", folder, "-maxdepth", "1", "-type", "f", "-name", "probe-*.py", "!", "-name", keep, "-delete"]
