"""A delaying TCP relay: the twin's WAN profile (`inv twin.up --rtt 100`).

netem is not available in this kernel, so the twin puts a relay in front of its sshd, its
registry and its API: each accepted connection is forwarded to its target with a one-way delay
of rtt/2 on every chunk in each direction (order kept; latency only, no bandwidth limit), and
the connection to the target is opened one RTT after the accept (the TCP handshake a real link
costs).  So a connect + one request/answer takes at least 2 × RTT, as it does across the sea.

    python -m twilight_ops.twin.relay --rtt-ms 100 --pidfile P --map 40001=127.0.0.1:22 [--map …]

start() spawns it (procs.spawn, its PID in base/relay/relay.pid, checked by command line before
any signal); stop() ends it.  Mappings and the RTT are kept in the twin's state (state.json).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import signal
import sys
import time
from pathlib import Path

from . import procs

CHUNK = 65536
STOP_TIMEOUT = 5.0


@dataclasses.dataclass(frozen=True)
class Route:
    listen: int
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> "Route":
        """`LISTEN=HOST:PORT` → Route (ValueError otherwise)."""
        listen, _, target = text.partition("=")
        host, _, port = target.rpartition(":")
        if not (listen.isdigit() and port.isdigit() and host):
            raise ValueError(f"not a route LISTEN=HOST:PORT: {text!r}")
        return cls(int(listen), host, int(port))

    def __str__(self) -> str:
        return f"{self.listen}={self.host}:{self.port}"


def due(read_at: float, open_at: float, half: float) -> float:
    """When a chunk read at `read_at` may be written on: half an RTT after it was read, and never
    before the far side's connection exists (`open_at`) plus that half."""
    return max(read_at, open_at) + half


async def _pump(src: asyncio.StreamReader, queue: asyncio.Queue, open_at: float, half: float) -> None:
    loop = asyncio.get_running_loop()
    while True:
        try:
            data = await src.read(CHUNK)
        except (ConnectionError, OSError):
            data = b""
        await queue.put((due(loop.time(), open_at, half), data))
        if not data:
            return


async def _deliver(queue: asyncio.Queue, dst: asyncio.StreamWriter) -> None:
    loop = asyncio.get_running_loop()
    while True:
        when, data = await queue.get()
        wait = when - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        if not data:
            with contextlib.suppress(OSError, RuntimeError):
                if dst.can_write_eof():
                    dst.write_eof()
            return
        dst.write(data)
        await dst.drain()


async def _serve_one(route: Route, rtt: float, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
    loop = asyncio.get_running_loop()
    half = rtt / 2
    open_at = loop.time() + rtt
    upstream_q: asyncio.Queue = asyncio.Queue()
    tasks = [asyncio.create_task(_pump(client_r, upstream_q, open_at, half))]
    server_w: asyncio.StreamWriter | None = None
    try:
        await asyncio.sleep(max(0.0, open_at - loop.time()))
        server_r, server_w = await asyncio.open_connection(route.host, route.port)
        down_q: asyncio.Queue = asyncio.Queue()
        tasks += [asyncio.create_task(_deliver(upstream_q, server_w)),
                  asyncio.create_task(_pump(server_r, down_q, 0.0, half)), asyncio.create_task(_deliver(down_q, client_w))]
        await asyncio.gather(*tasks)
    except (ConnectionError, OSError):
        pass
    finally:
        for t in tasks:
            t.cancel()
        for w in (client_w, server_w):
            if w is not None:
                with contextlib.suppress(Exception):
                    w.close()


async def serve(routes: list[Route], rtt: float, ready: asyncio.Event | None = None) -> None:
    """Relay every route until cancelled (SIGTERM in the daemon)."""
    servers = []
    for route in routes:
        def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter, route: Route = route) -> asyncio.Future:
            return asyncio.ensure_future(_serve_one(route, rtt, r, w))
        servers.append(await asyncio.start_server(handler, "127.0.0.1", route.listen, reuse_address=True))
    if ready is not None:
        ready.set()
    try:
        await asyncio.Event().wait()
    finally:
        for s in servers:
            s.close()


# -- the daemon, as the twin runs it -------------------------------------------------------------
def paths(base: Path) -> tuple[Path, Path]:
    root = base / "relay"
    return root / "relay.pid", root / "relay.log"


def argv(pidfile: Path, rtt_ms: int, routes: list[Route]) -> list[str]:
    return [sys.executable, "-m", "twilight_ops.twin.relay", "--pidfile", str(pidfile), "--rtt-ms", str(rtt_ms),
            *(a for r in routes for a in ("--map", str(r)))]


def running_pid(base: Path) -> int | None:
    """Our relay's PID (its pidfile, and that PID's command line names the same pidfile), else None."""
    pidfile, _ = paths(base)
    pid = procs.read_pidfile(pidfile)
    if pid is None or not procs.pid_alive(pid) or not procs.has_option(procs.cmdline(pid), "--pidfile", str(pidfile)):
        return None
    return pid


def _listening(log: Path, pid: int) -> bool:
    """The daemon `pid` wrote that every route listens (a port someone else holds is no proof)."""
    with contextlib.suppress(FileNotFoundError):
        return f"relay {pid} listening" in log.read_text(errors="replace")
    return False


def start(base: Path, rtt_ms: int, routes: list[Route], timeout: float = 10.0) -> int:
    """(Re)start the relay for `routes` with this RTT; its PID."""
    stop(base)
    pidfile, log = paths(base)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    pid = procs.spawn(argv(pidfile, rtt_ms, routes), log)
    pidfile.write_text(f"{pid}\n")
    if procs.wait_until(lambda: not procs.pid_alive(pid) or _listening(log, pid),
                        timeout, "the relay to listen") is None or not procs.pid_alive(pid):
        stop(base)
        from ..errors import TwilightError

        raise TwilightError(f"the twin's relay did not start: {procs.log_tail(log)}", f"see {log}")
    return pid


def stop(base: Path) -> int | None:
    """SIGTERM our relay (PID from its pidfile, checked by command line); the PID or None."""
    pidfile, _ = paths(base)
    pid = running_pid(base)
    if pid is not None:
        procs.terminate(pid, STOP_TIMEOUT)
    pidfile.unlink(missing_ok=True)
    return pid


def main(args: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="the twin's delaying TCP relay")
    ap.add_argument("--pidfile", required=True)
    ap.add_argument("--rtt-ms", type=int, required=True)
    ap.add_argument("--map", action="append", default=[], type=Route.parse)
    ns = ap.parse_args(args)

    async def run() -> None:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        ready = asyncio.Event()
        served = asyncio.create_task(serve(ns.map, ns.rtt_ms / 1000, ready))
        waiting = asyncio.create_task(ready.wait())
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait([served, waiting], return_when=asyncio.FIRST_COMPLETED)
            if ready.is_set():
                print(f"relay {os.getpid()} listening", flush=True)
            await served                       # raises the bind error, if any
        served.cancel()

    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} relay rtt {ns.rtt_ms} ms: {', '.join(map(str, ns.map))}", flush=True)
    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
