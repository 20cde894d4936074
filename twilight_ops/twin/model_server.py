"""The model stand-in's process: an OpenAI-compatible endpoint (stdlib ThreadingHTTPServer on
127.0.0.1) that the real Hermes Agent on the twin's operator side talks to.

    python -m twilight_ops.twin.model_server --config <twin>/operator/model/config.json

    GET  /v1/models, /v1/models/<name>   the one model
    POST /v1/chat/completions            model_standin.respond(); `stream: true` → SSE chunks
    anything else                        404 (Hermes probes /api/show, /api/v1/models: not Ollama)

It also holds `down_port` bound but never listening: a connection there is refused at once,
which is what `model_down` points Hermes's base_url at (operator_side.set_hermes_fault).
The answer style is read per request from `fault.json`.  The log has method, path, status
and the turn chosen (a tool name or "answer"), never a message body.

Layout under <twin>/operator/model/: config.json (ports, api_base, header_file, fault file),
model.pid (written at spawn; the only PID stop_model() signals), model.log, fault.json.
Same pattern as standins.py: ports kept across restarts, a flock, wait until it answers,
SIGTERM then SIGKILL by PID.
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from . import model_standin as ms

MODEL = "twin-model"
MAX_BODY = 8 << 20
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
_ids = itertools.count(1)


@dataclasses.dataclass(frozen=True)
class ModelPaths:
    root: Path
    config: Path
    pidfile: Path
    log: Path
    fault: Path
    lock: Path

    @classmethod
    def under(cls, operator_dir: Path) -> ModelPaths:
        root = Path(operator_dir).absolute() / "model"
        return cls(root=root, config=root / "config.json", pidfile=root / "model.pid", log=root / "model.log",
                   fault=root / "fault.json", lock=root / ".lock")


def read_style(fault_file: str) -> str | None:
    try:
        raw = json.loads(Path(fault_file).read_text())
    except (OSError, ValueError):
        return None
    style = raw.get("fault") if isinstance(raw, dict) else None
    return style if style in ms.STYLES else None


class Handler(BaseHTTPRequestHandler):
    server_version = "twin-model/1"
    protocol_version = "HTTP/1.1"
    cfg: dict = {}

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        sys.stderr.write(f"{self.log_date_time_string()} {format % args}\n")

    def _json(self, status: int, body: dict) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/v1/models":
            self._json(200, ms.models(MODEL))
        elif path == f"/v1/models/{MODEL}":
            self._json(200, ms.model_info(MODEL))
        else:
            self._json(404, {"error": {"message": f"no route {path}", "type": "not_found"}})

    def do_POST(self) -> None:
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            n = -1
        raw = self.rfile.read(n) if 0 <= n <= MAX_BODY else b""
        if self.path.split("?", 1)[0].rstrip("/") != "/v1/chat/completions":
            self._json(404, {"error": {"message": "not found", "type": "not_found"}})
            return
        try:
            request = json.loads(raw)
            assert isinstance(request, dict)
        except (ValueError, AssertionError):
            self._json(400, {"error": {"message": "body is not a JSON object", "type": "invalid_request_error"}})
            return
        script = ms.Script(self.cfg["api_base"], self.cfg["header_file"], read_style(self.cfg["fault_file"]))
        cid = f"chatcmpl-twin-{next(_ids)}"
        turn = ms.respond(request, script, MODEL, cid)
        sys.stderr.write(f"turn {cid}: {turn.name if isinstance(turn, ms.ToolCall) else 'answer'}"
                         f"{' (stream)' if request.get('stream') else ''}\n")
        if not request.get("stream"):
            self._json(200, ms.completion(turn, MODEL, cid))
            return
        usage = bool((request.get("stream_options") or {}).get("include_usage"))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        for chunk in ms.sse_chunks(turn, MODEL, cid, usage):
            self.wfile.write(chunk)
            self.wfile.flush()
        self.close_connection = True


def serve(config_path: Path) -> None:
    cfg = json.loads(config_path.read_text())
    down = socket.socket(socket.AF_INET, socket.SOCK_STREAM)   # bound, never listening: connections refused
    down.bind(("127.0.0.1", int(cfg["down_port"])))
    server = ThreadingHTTPServer(("127.0.0.1", int(cfg["port"])), type("H", (Handler,), {"cfg": cfg}))
    server.daemon_threads = True
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    sys.stderr.write(f"model stand-in ready: 127.0.0.1:{cfg['port']} (down: {cfg['down_port']})\n")
    sys.stderr.flush()
    stop.wait()
    server.shutdown()
    server.server_close()
    down.close()


# ----------------------------------------------------------------------------- start / stop (twin.up, twin.down)


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    paths: ModelPaths
    pid: int
    port: int
    down_port: int
    reused: bool

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def down_url(self) -> str:
        return f"http://127.0.0.1:{self.down_port}/v1"


def server_argv(config: Path) -> list[str]:
    return [sys.executable, "-m", "twilight_ops.twin.model_server", "--config", str(config)]


def _ports(paths: ModelPaths) -> tuple[int, int] | None:
    try:
        cfg = json.loads(paths.config.read_text())
        return int(cfg["port"]), int(cfg["down_port"])
    except (FileNotFoundError, ValueError, KeyError):
        return None


def _answers(port: int) -> bool:
    import httpx

    try:
        with httpx.Client(trust_env=False, timeout=1.0) as client:
            return client.get(f"http://127.0.0.1:{port}/v1/models").status_code == 200
    except httpx.HTTPError:
        return False


def _running(paths: ModelPaths) -> tuple[int, int, int] | None:
    from .procs import cmdline, has_option, pid_alive, read_pidfile

    pid = read_pidfile(paths.pidfile)
    ports = _ports(paths)
    if pid is None or ports is None or not pid_alive(pid) or not has_option(cmdline(pid), "--config", str(paths.config)):
        return None
    return pid, *ports


def start_model(operator_dir: Path, api_base: str, header_file: Path, timeout: float = START_TIMEOUT) -> ModelInfo:
    """Start (or reuse) the model stand-in; its ports are kept in config.json across restarts.
    A running one gets the current api_base/header_file only at its next start (they do not change)."""
    from ..errors import Unreachable
    from .procs import file_lock, free_port, log_tail, pid_alive, spawn, wait_until
    from .standins import server_env, write_json_atomic

    paths = ModelPaths.under(operator_dir)
    paths.root.mkdir(parents=True, exist_ok=True)
    with file_lock(paths.lock):
        running = _running(paths)
        if running is not None:
            pid, port, down = running
            if wait_until(lambda: _answers(port), timeout, "running model stand-in to answer") is None:
                raise Unreachable(f"model stand-in PID {pid} runs but does not answer on 127.0.0.1:{port}",
                                  f"stop it: inv twin.down; see {paths.log}")
            return ModelInfo(paths, pid, port, down, True)
        for ports in [p for p in [_ports(paths)] if p] + [(free_port(), free_port()) for _ in range(3)]:
            write_json_atomic(paths.config, {"port": ports[0], "down_port": ports[1], "api_base": api_base,
                                             "header_file": str(header_file), "fault_file": str(paths.fault)})
            pid = spawn(server_argv(paths.config), paths.log, server_env())
            paths.pidfile.write_text(f"{pid}\n")
            if wait_until(lambda: not pid_alive(pid) or _answers(ports[0]), timeout, "model stand-in to answer") is None:
                _stop(paths, STOP_TIMEOUT)
                raise Unreachable(f"model stand-in did not answer on 127.0.0.1:{ports[0]} within {timeout:.0f} s",
                                  f"see {paths.log}")
            if pid_alive(pid):
                return ModelInfo(paths, pid, *ports, False)
            paths.pidfile.unlink(missing_ok=True)
            if "Address already in use" not in log_tail(paths.log, 8):
                raise Unreachable(f"model stand-in exited during start-up: {log_tail(paths.log)}", f"see {paths.log}")
    raise Unreachable("model stand-in could not bind free loopback ports", f"see {paths.log}")


def model_ports(operator_dir: Path) -> tuple[int, int] | None:
    """(port, down_port) from config.json, whether or not the process runs."""
    return _ports(ModelPaths.under(operator_dir))


def is_running(operator_dir: Path) -> bool:
    return _running(ModelPaths.under(operator_dir)) is not None


def running_pid(operator_dir: Path) -> int:
    running = _running(ModelPaths.under(operator_dir))
    return running[0] if running else 0


def stop_model(operator_dir: Path, timeout: float = STOP_TIMEOUT) -> int | None:
    """SIGTERM the model stand-in (PID from its pidfile, command line checked), SIGKILL after `timeout`."""
    from .procs import file_lock

    paths = ModelPaths.under(operator_dir)
    if not paths.root.exists():
        return None
    with file_lock(paths.lock):
        return _stop(paths, timeout)


def _stop(paths: ModelPaths, timeout: float) -> int | None:
    from .procs import terminate

    running = _running(paths)
    if running:
        terminate(running[0], timeout)
    paths.pidfile.unlink(missing_ok=True)
    return running[0] if running else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--config", required=True, type=Path)
    serve(parser.parse_args(argv).config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
