"""Files and the deploy lock dir on tvps."""
from __future__ import annotations

from .layout import Layout


def mkdir_p(path: str) -> list[str]:
    return ["mkdir", "-p", "--", path]


def mkdir_atomic(path: str) -> list[str]:
    """Plain mkdir: fails if the directory exists — the atomic lock primitive."""
    return ["mkdir", "--", path]


def mkdir_under(parent: str, path: str) -> list[str]:
    """`mkdir -p parent`, then the plain (atomic, fails if it exists) mkdir of `path`: one command."""
    return ["sh", "-c", 'mkdir -p -- "$1" && mkdir -- "$2"', "sh", parent, path]


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


MISSING = 66      # the file commands' exit status when the file (or its directory) is missing


def physical_cwd() -> list[str]:
    """Where sshd starts a command (the home directory), symlinks resolved."""
    return ["pwd", "-P"]


def read_bytes(path: str) -> list[str]:
    """The file's bytes on stdout; exit MISSING when there is no such file."""
    return ["sh", "-c", 'test -e "$1" || exit 66; exec cat -- "$1"', "sh", path]


LISTED = b"listed\0"      # ends the listing a stamped write printed (absent: the listing did not run)


def _stamp_and_list(folder_arg: str) -> str:
    """After a first write in a folder: tvps' clock (`date +%s`, one line), then list_temps' listing of
    the folder ended by LISTED; the write's own status stands (exit 0), a failed listing just has no LISTED."""
    return (f'; date +%s; {{ find "{folder_arg}" -mindepth 1 -maxdepth 1 -type f -name ".*.tmp" -printf "%T@ %f\\0" '
            f'&& printf "listed\\0"; }} 2>/dev/null; exit 0')


def write_atomic(path: str, temp: str, folder: str, mode: int, *, stamp: bool = False) -> list[str]:
    """Write stdin to `temp` (beside `path`, created 0600 under umask 077: never briefly readable by
    others), give it `mode`, rename it over `path` (mv -T: never into a directory of that name).  Any
    failure removes the temp; exit MISSING when `folder` is missing.  With `stamp`, tvps' clock after, and
    the folder's temps (_stamp_and_list: the dead-temp sweep needs no command of its own)."""
    script = ('umask 077; test -d "$3" || exit 66; '
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
