"""A loopback place for tasks to aim at without the twin: a config whose `tvps` is a
real listening socket that counts connection attempts (and closes each at once)."""
from __future__ import annotations

import socket
import threading
from pathlib import Path

import yaml


class CountingListener:
    """A real TCP listener on 127.0.0.1; `attempts` counts accepted connections."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.attempts = 0
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.attempts += 1
            conn.close()

    def close(self) -> None:
        self._stop = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)   # wakes the accept() in the thread
        except OSError:
            pass
        self.sock.close()
        self._thread.join(timeout=5)


def write_config(d: Path, port: int, **twilight: object) -> Path:
    """invoke.yaml + ssh_config (Host tvps -> 127.0.0.1:port) + an empty known_hosts under d."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "known_hosts").write_text("")
    (d / "ssh_config").write_text(
        f"Host tvps\n  HostName 127.0.0.1\n  Port {port}\n  User nobody\n  UserKnownHostsFile {d / 'known_hosts'}\n")
    section = {
        "host": "tvps",
        "ssh_config": str(d / "ssh_config"),
        "known_hosts": str(d / "known_hosts"),
        "connect_attempts": "1",
        "connect_timeout": "2",
        "state_dir": str(d / "state"),
        "api_base": "http://127.0.0.1:9",
        **twilight,
    }
    path = d / "invoke.yaml"
    path.write_text(yaml.safe_dump({"twilight": section}))
    return path
