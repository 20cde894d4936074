"""§2.3's evidence and export on tvps: monitor/schema.py (with probe.py) run in a one-off container of
a release's image, where the data dir is mounted (docs/rollback.md, "The data plan").

    script(mode, params) -> str                  the bundle sent to `python3 -` (pure)
    evidence(t, image, snapshot, since) -> dict   the warehouse next to the T+00:00 snapshot
    export(t, image, replaced, snapshot, since, prefix) -> dict   rows a restore dropped → Parquet
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..builders import compose as compose_cmd
from ..errors import CheckFailed, Unreachable
from ..monitor.bundle import bundle
from ..monitor.script import probe_source
from ..target import Target

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "monitor" / "schema.py"


def script(mode: str, params: dict[str, Any]) -> str:
    wire = json.dumps({**params, "mode": mode}, ensure_ascii=True, sort_keys=True)
    entry = ("import json, sys\nfrom twilight_ops.monitor.schema import main\n"
             f"sys.exit(main(json.loads({wire!r})))\n")
    return bundle([("twilight_ops.monitor.probe", probe_source(False)),
                   ("twilight_ops.monitor.schema", SCHEMA_FILE.read_text(encoding="utf-8"))], entry)


def one_off(t: Target, image: str, text: str, what: str) -> dict[str, Any]:
    """Run a script in `docker compose run --rm --no-deps` of `image` (a tag or tag@digest); its JSON."""
    lay = t.layout
    argv = compose_cmd.compose(lay, "run", "--rm", "--no-deps", "-T", "--entrypoint", "python3", lay.service, "-",
                               version=image)
    r = t.ssh.run(argv, stdin=text, check=False, timeout=600)
    try:
        out = json.loads(r.stdout.strip().splitlines()[-1])
        if not isinstance(out, dict):
            raise ValueError
        return out
    except (IndexError, ValueError):
        from ..docker_errors import outage

        tail = (r.stderr.strip().splitlines() or ["no output"])[-1][:300]
        part = outage(r.stderr)
        if part:
            raise Unreachable(f"{what}: {part.line} did not answer", "check tvps, then re-run the same command") from None
        raise CheckFailed(f"{what} did not run (exit {r.exited}: {tail})", "see the message; nothing was changed") from None


def container_path(t: Target, name: str) -> str:
    import posixpath

    return posixpath.join(posixpath.dirname(t.settings.container_warehouse), posixpath.basename(name))


def evidence(t: Target, image: str, snapshot_name: str, since: str) -> dict[str, Any]:
    out = one_off(t, image, script("evidence", {"db_path": t.settings.container_warehouse,
                                                "snapshot": container_path(t, snapshot_name), "since": since,
                                                "copy_dir": None, "attempts": 5}),
                  "the warehouse's evidence (schema and rows since T+00:00)")
    if not out.get("ok"):
        raise CheckFailed(f"the warehouse's evidence could not be read: {out.get('error')}",
                          "see `inv monitor --hours 1`; decide §2.3 by hand (--restore-db or --keep-db)")
    return out


def export(t: Target, image: str, replaced_name: str, snapshot_name: str, since: str) -> dict[str, Any]:
    replaced = container_path(t, replaced_name)
    out = one_off(t, image, script("export", {"replaced": replaced, "snapshot": container_path(t, snapshot_name),
                                              "since": since, "dest_prefix": replaced + ".since-t0"}),
                  "the export of the rows written since T+00:00")
    if not out.get("ok"):
        raise CheckFailed(f"the rows written since T+00:00 were not exported: {out.get('error')}",
                          f"they are still in {replaced_name} beside the warehouse (kept); export them by hand")
    return out
