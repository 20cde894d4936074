"""Round trips counted: trace.py records the wire (HTTP requests here, through a real local server
and a real httpx client in a child process), and bench/roundtrips.py sums records per phase."""
from __future__ import annotations

import base64
import http.server
import json
import subprocess
import sys
import threading
from pathlib import Path

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
import roundtrips  # noqa: E402


def mirror_append(*steps: tuple[str, str | None]) -> dict:
    lines = [json.dumps({"kind": "step", "step": {"name": n, "started_at": "x", "ended_at": e}}) for n, e in steps]
    data = base64.b64encode(("\n".join(lines) + "\n").encode()).decode()
    return {"side": "tvps", "op": "append", "path": "/h/twilight/cutover/journal-v1.jsonl", "data": data}


def test_records_are_summed_per_phase_between_the_mirror_appends_that_end_each_phase():
    recs = [
        {"side": "ssh", "op": "connect"}, {"side": "ssh", "op": "channel", "kind": "session"},
        {"side": "tvps", "op": "run", "argv": ["true"]},                          # not a wire record
        {"side": "sftp", "op": "open"}, {"side": "sftp", "op": "write"}, {"side": "sftp", "op": "close"},
        mirror_append(("preflight", "t"), ("cutover:preflight", "t")),
        {"side": "http", "op": "GET", "host": "h:1", "path": "/v2/"},
        mirror_append(("cutover:deploy", None)),                                 # started, not ended: no boundary
        {"side": "ssh", "op": "channel", "kind": "session"},
        mirror_append(("cutover:deploy", "t")),
        {"side": "http", "op": "GET", "host": "h:1", "path": "/price"},
    ]
    phases = roundtrips.per_phase(recs)
    assert list(phases) == ["preflight", "deploy", "after"]
    assert phases["preflight"] == {"connect": 1, "channel": 1, "sftp": 3, "total": 5}
    assert phases["deploy"] == {"http": 1, "channel": 1, "total": 2}
    assert phases["after"] == {"http": 1, "total": 1}
    assert roundtrips.totals(phases)["total"] == 8
    assert "= all" in roundtrips.table(phases)
    assert list(roundtrips.per_phase(recs[:3])) == ["run"]


def test_requests_on_the_loop_are_round_trips_of_their_own_and_its_fallback_note_is_none():
    recs = [{"side": "ssh", "op": "connect"}, {"side": "ssh", "op": "channel", "kind": "session"},
            {"side": "ssh", "op": "request"}, {"side": "tvps", "op": "append", "path": "/h/a.log"},
            {"side": "ssh", "op": "request"},
            {"side": "ssh", "op": "fallback", "why": "the request loop on tvps did not start"}]
    assert roundtrips.per_phase(recs) == {"run": {"connect": 1, "channel": 1, "request": 2, "total": 4}}
    assert roundtrips.table(roundtrips.per_phase(recs)).splitlines()[0].split() == [
        "phase", "total", "connect", "channel", "request", "sftp", "http"]


class Quiet(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


def test_the_trace_counts_http_requests_without_query_or_headers(tmp_path: Path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    trace = tmp_path / "trace.jsonl"
    code = ("import twilight_ops.trace, httpx\n"
            "with httpx.Client() as c:\n"
            f"    for _ in range(3): c.get('http://127.0.0.1:{server.server_address[1]}/price?code=SECRETQ',"
            " headers={'Authorization': 'Bearer SECRETH'})\n")
    try:
        r = subprocess.run([sys.executable, "-c", code], env={"TWILIGHT_TRACE": str(trace), "PATH": "/usr/bin:/bin"},
                           capture_output=True, text=True, cwd=REPO, timeout=60)
    finally:
        server.shutdown()
        server.server_close()
    assert r.returncode == 0, r.stderr
    recs = roundtrips.read(trace)
    assert [(x["side"], x["op"], x["path"]) for x in recs] == [("http", "GET", "/price")] * 3
    assert "SECRET" not in trace.read_text()
    assert oct(trace.stat().st_mode & 0o777) == "0o600"
    assert roundtrips.per_phase(recs)["run"]["http"] == 3


def test_without_the_variable_nothing_is_wrapped_or_written(tmp_path: Path):
    code = "import twilight_ops.trace as t, httpx\nprint(hasattr(httpx.Client.send, '__wrapped_by_trace__'))\n"
    r = subprocess.run([sys.executable, "-c", code], env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                       cwd=REPO, timeout=60)
    assert r.stdout.strip() == "False", r.stderr
