"""T+00:00 snapshot of the warehouse, run INSIDE the backend container (shipped with probe.py,
whose verified consistent-copy routine it imports, as one bundle: monitor/bundle.py).

The backend holds /data/warehouse.duckdb open read-write, so the runbook's `cp` can
be torn by a checkpoint.  Instead:
  1. free space first: the database (+ WAL) plus a margin, or refuse;
  2. copy_once() into a private temp dir beside the destination: inode, size, mtimes
     and a hash of the headers before and after must match, the WAL must not shrink;
     bounded retries;
  3. open the copy read-write once and CHECKPOINT, folding a copied WAL into the one
     file (the snapshot is then self-contained); reopen it read-only and record every
     table and its row count; sha256 of the bytes;
  4. give the copy the owner, group and mode of the database file (this runs as root in
     the container, where a new file would be root:root 0640 and the operator on tvps
     could not `sha256sum` or `cp` it back), then os.link() it to the destination: fails
     if the destination exists, so a snapshot is never overwritten, not even by a race,
     and it appears with its final owner and mode.
An existing destination is never touched: it is opened read-only and its tables,
counts and sha256 are reported (`reused`), for the caller to compare with its journal.

Output: one JSON object.  Exit 0 ok; 2 bad params / missing file; 3 no space or no
consistent copy.
"""

import datetime as dt
import hashlib
import json
import os
import shutil
import stat
import sys
import tempfile
import time

# absolute, not relative: inside the container this module and probe.py are registered under
# these names by the bundle's loader (monitor/bundle.py), with no package on disk
from twilight_ops.monitor.probe import (EXIT_BAD_INPUT, EXIT_OK, EXIT_UNREADABLE, ProbeError, copy_once, iso_utc,
                                        one_line)


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _quote(name):
    return '"' + name.replace('"', '""') + '"'


def _inspect(duckdb, path):
    con = duckdb.connect(path, read_only=True)
    try:
        rows = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' ORDER BY 1, 2").fetchall()
        tables = {}
        for schema, name in rows:
            key = name if schema == "main" else f"{schema}.{name}"
            tables[key] = con.execute(f"SELECT count(*) FROM {_quote(schema)}.{_quote(name)}").fetchone()[0]
        return tables
    finally:
        con.close()


def _describe(duckdb, path, **extra):
    st = os.stat(path)
    return {"ok": True, "path": path, "bytes": st.st_size, "sha256": _sha256(path),
            "modified": iso_utc(dt.datetime.fromtimestamp(st.st_mtime, dt.timezone.utc)),
            "tables": _inspect(duckdb, path), **extra}


def _same_owner_and_mode(src, path):
    """chown/chmod `path` to src's uid, gid and permission bits; what it got, as a dict.
    Not root and src owned by another account: chown fails, and the copy keeps ours."""
    st = os.stat(src)
    try:
        if (os.stat(path).st_uid, os.stat(path).st_gid) != (st.st_uid, st.st_gid):
            os.chown(path, st.st_uid, st.st_gid)
    except PermissionError:
        pass
    os.chmod(path, stat.S_IMODE(st.st_mode))
    got = os.stat(path)
    return {"uid": got.st_uid, "gid": got.st_gid, "mode": oct(stat.S_IMODE(got.st_mode)),
            "as_database": (got.st_uid, got.st_gid, stat.S_IMODE(got.st_mode)) == (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode))}


def take_snapshot(p, sleep=time.sleep, copy_file=shutil.copyfile):
    import duckdb

    src, dest = p["db_path"], p["dest"]
    if os.path.lexists(dest):
        if os.path.exists(dest + ".wal"):
            raise ProbeError("snapshot_wal", f"{dest}.wal exists beside the snapshot: it is not the file this tool made",
                             EXIT_BAD_INPUT)
        return _describe(duckdb, dest, reused=True)
    if not os.path.exists(src):
        raise ProbeError("missing_file", f"no DuckDB file at {src}", EXIT_BAD_INPUT)
    parent = os.path.dirname(dest)
    need = sum(os.path.getsize(f) for f in (src, src + ".wal") if os.path.exists(f))
    free = shutil.disk_usage(parent).free
    if free < need + p["margin_bytes"]:
        raise ProbeError("no_space", f"{parent} has {free / 2**20:.0f} MiB free; the snapshot needs "
                         f"{need / 2**20:.0f} MiB plus a {p['margin_bytes'] / 2**20:.0f} MiB margin", EXIT_UNREADABLE)
    tmp = tempfile.mkdtemp(prefix=".twilight-snapshot-", dir=parent)
    copy = os.path.join(tmp, "snapshot.duckdb")
    reason = ""
    try:
        for attempt in range(1, p["attempts"] + 1):
            if attempt > 1:
                sleep(0.05 * 2 ** (attempt - 2))
            why = copy_once(src, copy, copy_file)
            if why is not None:
                reason = why
                continue
            copied_at = dt.datetime.now(dt.timezone.utc)
            had_wal = os.path.exists(copy + ".wal")
            try:
                con = duckdb.connect(copy, read_only=False)
                con.execute("CHECKPOINT")
                con.close()
            except duckdb.Error as e:
                reason = f"the copy did not open: {one_line(e)}"
                continue
            if os.path.exists(copy + ".wal"):
                os.remove(copy + ".wal")     # empty after the checkpoint
            desc = _describe(duckdb, copy)
            owner = _same_owner_and_mode(src, copy)
            try:
                os.link(copy, dest)
            except FileExistsError:
                raise ProbeError("snapshot_exists", f"{dest} appeared while the snapshot was taken; left it untouched",
                                 EXIT_BAD_INPUT) from None
            dfd = os.open(parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
            return {**desc, "path": dest, "reused": False, "copy_attempts": attempt, "wal_folded": had_wal,
                    "copied_at": iso_utc(copied_at), "owner": owner}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    raise ProbeError("torn_copy", f"no consistent copy of {src} after {p['attempts']} attempts (last: {reason})",
                     EXIT_UNREADABLE)


def snapshot_main(p, out=None):
    stream = out if out is not None else sys.stdout
    try:
        result, code = take_snapshot(p), EXIT_OK
    except ProbeError as e:
        result, code = {"ok": False, "error": e.message, "kind": e.kind}, e.exit_code
    except OSError as e:
        result, code = {"ok": False, "error": one_line(e), "kind": "os_error"}, EXIT_UNREADABLE
    stream.write(json.dumps(result, separators=(",", ":")) + "\n")
    stream.flush()
    return code

