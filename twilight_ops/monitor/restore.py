"""§2.3 DuckDB revert, run INSIDE a one-off container of the backend image (the data dir is
mounted there and the snapshot was written there, so file ownership is the same).

RESTORE_PARAMS: {"db_path", "snapshot", "sha256", "failed_path", "mode": "check" | "restore"}
  check    the snapshot exists and its sha256 equals the journal's (nothing changes)
  restore  (the backend is stopped) move the database and its WAL aside to failed_path
           (never deleted; never over an existing file), copy the snapshot to a temp file
           beside the database, fsync, verify its sha256, rename it into place.  With
           failed_path already there (a restore cut off by kill -9, same failed_path from the
           journal): done if the database is the snapshot, else the copy is finished; nothing
           is moved over the kept file and nothing is restored twice
Output: one JSON object; exit 0 ok, 2 refused (nothing changed), 3 failed part-way (says what moved).
"""
import hashlib
import json
import os
import shutil
import sys

RESTORE_PARAMS: str = None  # type: ignore[assignment]  # replaced by phases/rollback.restore_script()


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def out(code, **kw):
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.exit(code)


def main(p):
    snap, db = p["snapshot"], p["db_path"]
    if not os.path.isfile(snap):
        out(2, ok=False, error=f"no snapshot at {snap}")
    got = sha256(snap)
    if got != p["sha256"]:
        out(2, ok=False, error=f"the snapshot's sha256 is {got[:12]}…, the journal recorded {p['sha256'][:12]}…")
    if p["mode"] == "check":
        out(0, ok=True, checked=snap, sha256=got)
    failed = p["failed_path"]
    resumed = os.path.lexists(failed)
    if resumed:
        # an earlier restore with this failed_path was cut off (kill -9): it moved the database aside;
        # finish it, never move anything over the kept file and never restore twice
        if os.path.exists(db) and sha256(db) == p["sha256"]:
            out(0, ok=True, restored=db, sha256=p["sha256"], moved_aside=[failed], resumed="already restored")
        if os.path.exists(db):
            out(2, ok=False, error=f"{failed} exists and {db} is neither the snapshot nor absent; refusing to touch either")
    else:
        for path in (failed + ".wal",):
            if os.path.lexists(path):
                out(2, ok=False, error=f"{path} exists; refusing to move the database over it")
    moved = [failed] if resumed else []
    try:
        if os.path.exists(db) and not resumed:
            os.rename(db, failed)
            moved.append(failed)
        if os.path.exists(db + ".wal") and not os.path.lexists(failed + ".wal"):
            os.rename(db + ".wal", failed + ".wal")
            moved.append(failed + ".wal")
        tmp = db + ".restoring"
        shutil.copyfile(snap, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        if sha256(tmp) != p["sha256"]:
            os.remove(tmp)
            out(3, ok=False, error="the copy's sha256 differs from the snapshot's", moved_aside=moved)
        os.rename(tmp, db)
        dfd = os.open(os.path.dirname(db), os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError as e:
        out(3, ok=False, error=f"{type(e).__name__}: {e}", moved_aside=moved)
    out(0, ok=True, restored=db, sha256=sha256(db), moved_aside=moved)


main(json.loads(RESTORE_PARAMS))
