"""The stand-ins' HTTP process: GitHub's REST API and Tushare's HTTP API, each on its own
127.0.0.1 port, served by stdlib ThreadingHTTPServers in one process.

    python -m twilight_ops.twin.standins_server --config <twin>/standins/config.json

Everything is read per request, so tests and switches change behaviour without a
restart: the GitHub state file, the GitHub token file, the TUSHARE_TOKEN line of the
twin's ~/twilight/.env, the Tushare switch file and the twin clock (data/clock.json).
Secrets are never logged: the access log holds method, path and status only.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from . import github_api, tushare_api

MAX_BODY = 1 << 20


def read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return default


def env_value(path: Path, name: str) -> str:
    """NAME=value from a dotenv file ('' when absent); quotes around the value are dropped."""
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        return ""
    for line in lines:
        key, sep, value = line.strip().removeprefix("export ").partition("=")
        if sep and key.strip() == name:
            return value.strip().strip("'\"")
    return ""


def accepted_tushare_token(cfg: dict) -> str:
    """The TUSHARE_TOKEN of the twin's .env; a different value while the rotated switch is on."""
    token = env_value(Path(cfg["env_file"]), "TUSHARE_TOKEN")
    if token and read_json(Path(cfg["switch_file"]), {}).get("token_rotated"):
        return "rotated-" + hashlib.sha256(token.encode()).hexdigest()
    return token


def twin_today(clock_file: str) -> dt.date:
    """Today on the tool's clock: clock.json's offset is tvps's, skew included (GitHub and Tushare are not on tvps)."""
    raw = read_json(Path(clock_file), {}) if clock_file else {}
    offset = raw.get("offset_seconds", 0) if isinstance(raw, dict) else 0
    skew = raw.get("skew_seconds", 0) if isinstance(raw, dict) else 0
    if not isinstance(offset, (int, float)) or isinstance(offset, bool):
        offset = 0
    if isinstance(skew, (int, float)) and not isinstance(skew, bool):
        offset -= skew
    return (dt.datetime.now(tushare_api.SHANGHAI) + dt.timedelta(seconds=offset)).date()


class _Handler(BaseHTTPRequestHandler):
    server_version = "twin-standin/1"
    protocol_version = "HTTP/1.1"
    cfg: dict = {}
    label = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        sys.stderr.write(f"{self.label} {self.log_date_time_string()} {format % args}\n")

    def _send(self, status: int, body: dict | list, extra: dict[str, str] | None = None) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _body(self) -> bytes | None:
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return None
        return self.rfile.read(n) if 0 <= n <= MAX_BODY else None


class GitHubHandler(_Handler):
    label = "github"

    def _serve(self) -> None:
        path, _, query = self.path.partition("?")
        try:
            state = read_json(Path(self.cfg["state"]), {})
            token = Path(self.cfg["token_file"]).read_text().strip()
        except (OSError, ValueError) as e:
            self._send(500, {"message": f"twin stand-in state unreadable: {e}", "documentation_url": github_api.DOCS})
            return
        base_url = f"http://127.0.0.1:{int(self.cfg['port'])}"   # Link URLs: where this server listens, never the Host header
        status, body, headers = github_api.respond(self.command, path, query, self.headers.get("Authorization"), state,
                                                   token, base_url)
        self._send(status, body, {**headers, "X-GitHub-Api-Version-Selected":
                                  self.headers.get("X-GitHub-Api-Version") or "2022-11-28"})

    do_GET = do_HEAD = _serve

    def do_POST(self) -> None:
        self._body()
        self._serve()


class TushareHandler(_Handler):
    label = "tushare"

    def do_POST(self) -> None:
        body = self._body()
        if body is None:
            self._send(413, tushare_api.reply(tushare_api.BAD_REQUEST_CODE, "请求体过大", None))
            return
        self._send(200, tushare_api.handle(body, accepted_tushare_token(self.cfg), twin_today(self.cfg.get("clock_file", ""))))

    def do_GET(self) -> None:
        self._send(200, {"service": "tushare stand-in", "usage": "POST / {api_name, token, params, fields}"})


def _handler(base: type[_Handler], cfg: dict) -> type[_Handler]:
    return type(base.__name__, (base,), {"cfg": cfg})


def serve(config_path: Path) -> None:
    cfg = json.loads(config_path.read_text())
    servers = [
        ThreadingHTTPServer(("127.0.0.1", int(cfg["github"]["port"])), _handler(GitHubHandler, cfg["github"])),
        ThreadingHTTPServer(("127.0.0.1", int(cfg["tushare"]["port"])), _handler(TushareHandler, cfg["tushare"])),
    ]
    for s in servers:
        s.daemon_threads = True
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True) for s in servers]
    for t in threads:
        t.start()
    sys.stderr.write(f"stand-ins ready: github 127.0.0.1:{cfg['github']['port']} tushare 127.0.0.1:{cfg['tushare']['port']}\n")
    sys.stderr.flush()
    stop.wait()
    for s in servers:
        s.shutdown()
        s.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path)
    args = parser.parse_args(argv)
    serve(args.config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
