"""Files and the deploy lock dir on tvps."""
from __future__ import annotations

import shlex

from .layout import Layout


def mkdir_p(path: str) -> list[str]:
    return ["mkdir", "-p", "--", path]


def mkdir_atomic(path: str) -> list[str]:
    """Plain mkdir: fails if the directory exists — the atomic lock primitive."""
    return ["mkdir", "--", path]


def mkdir_under(parent: str, path: str) -> list[str]:
    """`mkdir -p parent`, then the plain (atomic, fails if it exists) mkdir of `path`: one command."""
    return ["sh", "-c", 'mkdir -p -- "$1" && mkdir -- "$2"', "sh", parent, path]


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


MISSING = 66      # the file commands' exit status when the file (or its directory) is missing


def physical_cwd() -> list[str]:
    """Where sshd starts a command (the home directory), symlinks resolved."""
    return ["pwd", "-P"]


def read_bytes(path: str) -> list[str]:
    """The file's bytes on stdout; exit MISSING when there is no such file."""
    return ["sh", "-c", 'test -e "$1" || exit 66; exec cat -- "$1"', "sh", path]


def read_first(paths: list[str]) -> list[str]:
    """The first of `paths` that exists: its index (one line), then its bytes; exit MISSING when none does."""
    return ["sh", "-c", 'i=0; for f; do if test -e "$f"; then echo "$i"; exec cat -- "$f"; fi; i=$((i + 1)); done; exit 66',
            "sh", *paths]


LISTED = b"listed\0"      # ends the listing a stamped write printed (absent: the listing did not run)


def _stamp_and_list(folder_arg: str) -> str:
    """After a first write in a folder: tvps' clock (`date +%s`, one line), then list_temps' listing of
    the folder ended by LISTED; the write's own status stands (exit 0), a failed listing just has no LISTED."""
    return (f'; date +%s; {{ find "{folder_arg}" -mindepth 1 -maxdepth 1 -type f -name ".*.tmp" -printf "%T@ %f\\0" '
            f'&& printf "listed\\0"; }} 2>/dev/null; exit 0')


def write_atomic(path: str, temp: str, folder: str, mode: int, *, stamp: bool = False, parents: bool = False) -> list[str]:
    """Write stdin to `temp` (beside `path`, created 0600 under umask 077: never briefly readable by
    others), give it `mode`, rename it over `path` (mv -T: never into a directory of that name).  Any
    failure removes the temp; exit MISSING when `folder` is missing.  With `stamp`, tvps' clock after, and
    the folder's temps (_stamp_and_list: the dead-temp sweep needs no command of its own).  With
    `parents`, a missing folder is made first (mkdir -p, under the session's umask) instead."""
    make = 'test -d "$3" || mkdir -p -- "$3" || exit 66; ' if parents else ''
    script = (make + 'umask 077; test -d "$3" || exit 66; '
              'if cat > "$2" && chmod "$4" -- "$2" && mv -f -T -- "$2" "$1"; then :; else rm -f -- "$2"; exit 1; fi')
    if stamp:
        script += _stamp_and_list("$3")
    return ["sh", "-c", script, "sh", path, temp, folder, f"{mode:o}"]


def append_stdin(path: str, folder: str, *, stamp: bool = False) -> list[str]:
    """Append stdin to `path` with one command (`>>`: O_APPEND, created if missing, never rewritten);
    exit MISSING when `folder` (its directory) is missing.  With `stamp`, tvps' clock (`date +%s`) on
    stdout after the append, and the folder's temps (_stamp_and_list).  The script is constant: the values travel as its arguments."""
    script = 'test -d "$2" || exit 66; cat >> "$1" || exit 1'
    if stamp:
        script += _stamp_and_list("$2")
    return ["sh", "-c", script, "sh", path, folder]


APPEND_FAILED = 75        # with_appends: a queued append failed, the command after it did not run
APPEND_FAILED_MARK = "twilight-ops: queued append "

_APPENDS = ('i=0; while [ "$#" -gt 1 ]; do '
            '{ test -d "${1%/*}" || mkdir -p -- "${1%/*}"; } && head -c "$2" >> "$1" '
            '|| { echo "twilight-ops: queued append $i failed" >&2; exit 75; }; '
            'i=$((i + 1)); shift 2; done')


def with_appends(appends: list[tuple[str, int]], command: str) -> str:
    """`command` (a rendered command line) run after appends taken from the front of its stdin: for each
    (absolute path, size) in order, the next `size` bytes are appended to the path (`>>`: O_APPEND,
    created if missing, its directory made when missing).  `head -c N` reads exactly N bytes, so the
    command's own stdin follows untouched.  A failed append stops there, before the command: exit
    APPEND_FAILED, and stderr's last line is APPEND_FAILED_MARK with the append's index.  The script
    is constant: paths and sizes travel as its arguments."""
    args: list[str] = []
    for path, size in appends:
        if not path.startswith("/") or size < 0:
            raise ValueError(f"a queued append needs an absolute path and a size: {path!r} {size}")
        args += [path, str(size)]
    return f"{shlex.join(['sh', '-c', _APPENDS, 'sh', *args])} || exit {APPEND_FAILED}\n{command}"


def nothing() -> list[str]:
    """A command that does nothing (carries queued appends on its own)."""
    return ["true"]


def list_temps(folder: str) -> list[str]:
    """The regular files in `folder` shaped like a temp (`.*.tmp`), as `<mtime> <name>` NUL-terminated."""
    return ["find", folder, "-mindepth", "1", "-maxdepth", "1", "-type", "f", "-name", ".*.tmp", "-printf", "%T@ %f\\0"]


def parse_temps(stdout: str) -> list[tuple[float, str]]:
    """list_temps' output → [(mtime, name)]; entries that do not parse are left out (never removed)."""
    out = []
    for entry in stdout.split("\0"):
        stamp, _, name = entry.lstrip("\n").partition(" ")
        try:
            out.append((float(stamp), name))
        except ValueError:
            continue
    return out


def remove_files(paths: list[str]) -> list[str]:
    return ["rm", "-f", "--", *paths]


def list_dir(path: str) -> list[str]:
    return ["ls", "-1", "--", path]


def remove_lock(lay: Layout) -> list[str]:
    """Release: the lock dir holds only holder.json (and maybe a temp of it)."""
    return ["rm", "-rf", "--", lay.lock_dir]


NO_LOCK = 65      # read_lock: there is no lock dir
NOT_OURS = 65     # remove_lock_if: the record is not the one given (or is gone): nothing removed


def read_lock(lock_dir: str, info: str) -> list[str]:
    """The lock's record on stdout: exit NO_LOCK when there is no lock dir, MISSING when it has no record."""
    return ["sh", "-c", 'test -d "$1" || exit 65; test -e "$2" || exit 66; exec cat -- "$2"', "sh", lock_dir, info]


def remove_lock_if(lock_dir: str, info: str) -> list[str]:
    """Remove the lock dir only if its record is byte for byte stdin (the record this process wrote):
    exit NOT_OURS, nothing removed, when it differs or is gone."""
    return ["sh", "-c", 'cmp -s -- "$2" - || exit 65; rm -rf -- "$1"', "sh", lock_dir, info]


def rename_dir(src: str, dest: str) -> list[str]:
    """Move a directory onto `dest` (-T: never into it); fails when `dest` holds anything, -n
    keeps an existing empty one (the caller checks that `src` is gone)."""
    return ["mv", "-n", "-T", "--", src, dest]


def rename_dir_away(src: str, dest: str) -> list[str]:
    """rename_dir, then success only if `src` is gone (mv -n may keep `dest` and still exit 0): one command."""
    return ["sh", "-c", 'mv -n -T -- "$1" "$2" && ! test -e "$1"', "sh", src, dest]


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
