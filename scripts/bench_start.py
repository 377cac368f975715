"""Server start-up and idle memory: `python -m server` from launch to its first answer.

    python -m scripts.bench_start --index runs/index/flickr8k-test

Starts the server as a user does, in its own process, connects as soon as the port opens, and
times launch -> first query answered; then reads the idle resident memory (VmRSS) and its peak
(VmHWM) from /proc, and whether torch was ever loaded (its shared library mapped). Repeats
`--runs` times and prints each run and the median.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from websockets.asyncio.client import connect

from scripts.common import add_record_arg, recorded


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def first_answer(port: int, process: subprocess.Popen, deadline: float) -> dict:
    while True:
        if process.poll() is not None:
            raise RuntimeError("the server exited before answering")
        if time.monotonic() > deadline:
            raise TimeoutError("the server did not answer in time")
        try:
            async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
                await ws.recv()  # hello
                await ws.send(json.dumps({"type": "query", "q": "dog+beach", "k": 24}))
                return json.loads(await ws.recv())
        except OSError:
            await asyncio.sleep(0.01)


def memory(pid: int) -> dict[str, float]:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                  .splitlines() if ":" in line)
    maps = Path(f"/proc/{pid}/maps").read_text()
    return {"rss_mb": int(status["VmRSS"].split()[0]) / 1024,
            "peak_mb": int(status["VmHWM"].split()[0]) / 1024,
            "torch_loaded": "libtorch" in maps}


def one_run(index: Path, idle_seconds: float) -> dict:
    port = free_port()
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "server", "--port", str(port), "--index",
                                str(index)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        reply = asyncio.run(first_answer(port, process, started + 60))
        seconds = time.monotonic() - started
        assert reply["type"] == "results", reply
        time.sleep(idle_seconds)
        return {"first_answer_s": seconds, **memory(process.pid)}
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--idle", type=float, default=2.0, help="seconds idle before reading")
    add_record_arg(parser)
    args = parser.parse_args()
    with recorded(args, "bench_start"):
        rows = [one_run(args.index, args.idle) for _ in range(args.runs)]
        print("| run | launch -> first answer (s) | idle RSS (MB) | peak RSS (MB) | torch |")
        print("|---|---|---|---|---|")
        for number, row in enumerate(rows, 1):
            print(f"| {number} | {row['first_answer_s']:.2f} | {row['rss_mb']:.0f} | "
                  f"{row['peak_mb']:.0f} | {'loaded' if row['torch_loaded'] else 'no'} |")
        print(f"| median | {statistics.median(r['first_answer_s'] for r in rows):.2f} | "
              f"{statistics.median(r['rss_mb'] for r in rows):.0f} | "
              f"{statistics.median(r['peak_mb'] for r in rows):.0f} | |")


if __name__ == "__main__":
    main()
