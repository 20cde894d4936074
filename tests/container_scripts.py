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


USED_DAYS = on_a_copy("""
print(json.dumps([str(r[0]) for r in con.execute("SELECT DISTINCT CAST(ts AS DATE) FROM provider_audit_log").fetchall()]))
""")


def free_days(twin_settings):
    """Weekdays from 2025-03-03 that no audit row and no recorded own call (own_calls.py's record, which
    the monitor leaves out of its counts) belongs to: a test that moves the twin's clock there sees only
    its own traffic.  Both matter: a module that rewrites the audit table leaves its own calls recorded,
    and a later module on the same worker that picked their day had its rows left out (77 of 80 seen)."""
    import datetime as dt
    import json

    from twilight_ops import own_calls
    from twilight_ops.builders import compose as compose_cmd
    from twilight_ops.builders.layout import layout
    from twilight_ops.remote import SSHExecutor

    with SSHExecutor(twin_settings) as ex:
        lay = layout(twin_settings, ex.home)
        used = set(json.loads(ex.run(compose_cmd.compose_exec_python(lay), stdin=USED_DAYS, timeout=120).stdout))
    record = own_calls.record_path(twin_settings)
    for line in record.read_text().splitlines() if record.exists() else []:
        try:
            call = json.loads(line)
            used |= {dt.datetime.fromisoformat(call[k]).date().isoformat() for k in ("start", "end")}
        except (ValueError, KeyError, TypeError):
            continue
    day = dt.date(2025, 3, 3)
    while True:
        if day.weekday() < 5 and day.isoformat() not in used:
            used.add(day.isoformat())
            yield day
        day += dt.timedelta(days=1)
