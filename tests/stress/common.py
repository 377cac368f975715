"""What the stress parts share: the server in its own process, clients from chosen loopback
addresses, latency and resource figures, and the table's rows."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from websockets.asyncio.client import ClientConnection, connect

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"  # every part targets loopback only


@dataclass(frozen=True)
class Row:
    """One line of the stress table."""

    part: str
    measure: str
    value: str
    target: str = ""
    met: bool | None = None  # None: a figure with no target


def address(group: int, number: int) -> str:
    """The loopback address of client `number` of a group: 127.0.<group>.<1..254>. Linux
    routes all of 127.0.0.0/8 to loopback, so each stands for another machine."""
    return f"127.0.{group}.{number % 254 + 1}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def launch_server(index: Path | None, log_path: Path, port: int, flags: Sequence[str] = (),
                  timeout: float = 120, cwd: Path = REPO) -> subprocess.Popen:
    """`python -m server` as a user runs it, in its own process; returns once it answers
    `/health`. Without `index` the server chooses (the index built last under `cwd`/runs/index);
    this checkout's code runs wherever `cwd` is. The one way the tests, the stress suite and
    the benchmarks start a server."""
    log_file = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "--port", str(port),
         *(["--index", str(index)] if index else []), *flags],
        cwd=cwd, stdout=log_file, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)})
    try:
        wait_until_healthy(port, process, timeout)
    except RuntimeError as error:
        raise RuntimeError(f"{error}:\n{log_path.read_text()}") from None
    return process


def wait_until_healthy(port: int, process: subprocess.Popen, timeout: float) -> None:
    """Return once the server on `port` answers GET /health; kill it if it does not in time.
    The server writes its start-up lines (and the page key) before it reads any request, so
    they are there when this returns."""
    deadline = time.monotonic() + timeout
    while not healthy(port):
        if process.poll() is not None:
            raise RuntimeError("the server exited")
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("the server did not start")
        time.sleep(0.1)


def healthy(port: int) -> bool:
    """Whether a server on `port` answers /health with 200."""
    connection = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        connection.request("GET", "/health")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def stop_process(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class Target:
    """A running server: where it listens, and its process (for memory and CPU)."""

    port: int
    pid: int

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/ws"

    def status(self, field: str) -> int:
        """A field of /proc/<pid>/status in bytes (VmRSS: now, VmHWM: the peak so far)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(field)

    def rss(self) -> int:
        return self.status("VmRSS")

    def peak(self) -> int:
        return self.status("VmHWM")

    def children(self) -> list[Target]:
        """The process's children (a server's upload decoders, an indexer's workers)."""
        found = []
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [Target(self.port, int(pid)) for pid in
                          (task / "children").read_text().split()]
        return found

    def tree_peak(self) -> int:
        """The server's peak memory and its workers' added up: an upper bound of what they
        held at once (each counts the pages they share, and each its own moment's peak)."""
        total = self.peak()
        for child in self.children():
            with contextlib.suppress(OSError, KeyError):
                total += child.peak()
        return total

    def cpu(self) -> float:
        """User + system CPU seconds of the server and its workers so far."""
        total = 0.0
        for process in [self, *self.children()]:
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def alive(self) -> bool:
        try:
            state = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return False
        return state != "Z"


class ServerProcess:
    """`with ServerProcess(index, folder, flags) as target:` a fresh server for one part."""

    def __init__(self, index: Path, folder: Path, flags: Sequence[str] = (), name: str = "server"):
        self.index, self.flags = index, list(flags)
        self.log_path = folder / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Target:
        port = free_port()
        self.process = launch_server(self.index, self.log_path, port, self.flags)
        return Target(port, self.process.pid)

    def __exit__(self, *_: object) -> None:
        if self.process is not None:
            stop_process(self.process)

    def log(self) -> str:
        return self.log_path.read_text()


async def open_client(target: Target, source: str, timeout: float = 30) -> ClientConnection:
    """A WebSocket client connected from loopback address `source`, its hello read."""
    connection = await connect(target.ws_url, local_addr=(source, 0), max_size=None,
                               compression=None, open_timeout=timeout, ping_interval=None,
                               close_timeout=2)
    await asyncio.wait_for(connection.recv(), timeout)
    return connection


async def latencies(target: Target, source: str, seconds: float, pause: float = 0.01,
                    words: Sequence[str] = ("cat", "grass", "coffee", "moon")) -> list[float]:
    """Round trips (s) of one client's simple queries, one at a time, for `seconds`."""
    connection = await open_client(target, source)
    times: list[float] = []
    stop = time.perf_counter() + seconds
    try:
        while time.perf_counter() < stop:
            message = json.dumps({"type": "query", "q": words[len(times) % len(words)],
                                  "id": len(times)})
            start = time.perf_counter()
            await connection.send(message)
            reply = json.loads(await asyncio.wait_for(connection.recv(), 30))
            if reply.get("type") == "results":
                times.append(time.perf_counter() - start)
            await asyncio.sleep(pause)
    finally:
        await connection.close()
    return times


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


def mb(size: float) -> str:
    return f"{size / 1e6:,.0f} MB"


async def time_to_idle(target: Target, since: float, limit: float = 10.0,
                       window: float = 0.25, busy: float = 0.1) -> float:
    """Seconds from `since` (a time.monotonic()) until the server used under `busy` of one core
    over a `window`; `limit` if it never did that soon."""
    previous, previous_cpu = time.monotonic(), target.cpu()
    while time.monotonic() - since < limit:
        await asyncio.sleep(window)
        now, cpu = time.monotonic(), target.cpu()
        if (cpu - previous_cpu) / (now - previous) < busy:
            return previous - since
        previous, previous_cpu = now, cpu
    return limit
