"""Python run inside the twin's backend container by tests (stdin to `compose exec -T backend python3 -`).

The backend holds /data/warehouse.duckdb open, so a test reads a copy: file and WAL
copied until their size and mtime are the same before and after (good enough for a
test oracle; the product's probe checks much more).
"""

CONSISTENT_COPY = r"""
import atexit, duckdb, json, os, shutil, tempfile
src = "/data/warehouse.duckdb"
d = tempfile.mkdtemp()
atexit.register(shutil.rmtree, d, True)
for _ in range(20):
    before = [(os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in (src, src + ".wal") if os.path.exists(p)]
    for p in (src, src + ".wal"):
        if os.path.exists(p):
            shutil.copy(p, d)
    after = [(os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in (src, src + ".wal") if os.path.exists(p)]
    if before == after:
        break
con = duckdb.connect(os.path.join(d, "warehouse.duckdb"))
"""


def on_a_copy(body: str) -> str:
    """A script that opens a consistent copy as `con`, then runs `body` (top-level code)."""
    return CONSISTENT_COPY + body.strip() + "\n"
