"""A real SSH server in this process, on loopback (paramiko's server side in a thread):
enough for the client's host-key check and public-key auth, nothing else.  It counts
TCP connections, so a test can tell whether a client retried or connected at all."""
from __future__ import annotations

import socket
import threading
from pathlib import Path

import paramiko


class _AcceptAnyKey(paramiko.ServerInterface):
    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


class LoopbackSSHServer:
    def __init__(self) -> None:
        self.host_key = paramiko.ECDSAKey.generate()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._transports: list[paramiko.Transport] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            t = paramiko.Transport(conn)
            t.add_server_key(self.host_key)
            self._transports.append(t)
            try:
                t.start_server(server=_AcceptAnyKey())
            except (paramiko.SSHException, EOFError, OSError):
                t.close()

    def known_hosts_line(self, key: paramiko.PKey | None = None) -> str:
        key = key or self.host_key
        return f"[127.0.0.1]:{self.port} {key.get_name()} {key.get_base64()}\n"

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)   # wakes the accept() in the thread
        except OSError:
            pass
        self.sock.close()
        for t in self._transports:
            t.close()
        self._thread.join(timeout=5)


def client_files(d: Path, port: int, known_hosts: str) -> tuple[Path, Path]:
    """(ssh_config, known_hosts) for Host tvps -> 127.0.0.1:port with a fresh client key."""
    d.mkdir(parents=True, exist_ok=True)
    key = paramiko.ECDSAKey.generate()
    key.write_private_key_file(str(d / "id_ecdsa"))
    (d / "known_hosts").write_text(known_hosts)
    (d / "ssh_config").write_text(
        f"Host tvps\n  HostName 127.0.0.1\n  Port {port}\n  User ops\n  IdentityFile {d / 'id_ecdsa'}\n"
        f"  UserKnownHostsFile {d / 'known_hosts'}\n")
    return d / "ssh_config", d / "known_hosts"
