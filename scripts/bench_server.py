"""Benchmark the query server over a real WebSocket on loopback.

    python -m scripts.bench_server                      # 10k images, 100 clients
    python -m scripts.bench_server --images 100000 --clients 50 --seconds 5

Makes a gallery index of synthetic vectors (clustered like real embeddings, tagged with the
shipped model so the server accepts it), starts `python -m server` on it in its own process,
and measures from this process:
1. the in-process cost of answering a query (`Retriever.answer`: parse, vector, search, records,
   nearest words): the floor the server cannot go under;
2. the warm round trip of one client, one query at a time: p50 / p99;
3. the throughput with many concurrent clients, each sending its next query on each reply. The
   clients run in two processes: one Python process cannot make 2,000 WebSocket requests a
   second by itself, and would measure itself instead of the server. Both share the machine's
   two cores with the server. Each client connects from its own loopback address, as the
   server's connection cap per address (64) would otherwise refuse most; the server runs with
   `--address-share 0`, which lifts the per-address limit on work (docs/server.md).
Queries are one or two vocabulary words drawn at random, with a random sign.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from websockets.asyncio.client import connect

from scripts.bench_index import clustered_vectors
from scripts.common import add_record_arg, recorded
from server.artifacts import DEFAULT_MODEL_DIR, load_word_space, model_fingerprint
from server.serve.gallery import Gallery, Item, write_generation
from server.serve.retrieval import QueryRequest, Retriever
from server.serve.search import make_search
from tests.stress.common import address, launch_server, stop_process

REPO = Path(__file__).resolve().parents[1]
CLIENT_PROCESSES = 2


def make_gallery(directory: Path, count: int) -> None:
    items = [Item(i + 1, i, f"synthetic/{i:07d}.jpg", 0, 0, None) for i in range(count)]
    write_generation(directory, root=directory, model_fingerprint=model_fingerprint(
        DEFAULT_MODEL_DIR), items=items, skipped=[],
        # in the search space the queries come in (the words' dimensions)
        vectors=clustered_vectors(count, seed=5, dim=load_word_space().dim),
        next_id=count + 1)


def random_queries(words: list[str], count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    common = words[:1000]  # the vocabulary is sorted by frequency
    queries: list[str] = []
    while len(queries) < count:
        first, second = rng.sample(common, 2)  # two different words never cancel out
        queries.append(first + (rng.choice("+-") + second if rng.random() < 0.5 else ""))
    return queries


def in_process(index: Path, queries: list[str], batch: int = 32) -> tuple[float, float]:
    """p50 of one answer, and the mean cost a query when answered `batch` at a time (ms)."""
    words = load_word_space()
    gallery = Gallery(index)
    retriever = Retriever(words, gallery, make_search(gallery.vectors))
    for query in queries[:100]:
        retriever.answer(query)
    times = []
    for query in queries:
        start = time.perf_counter()
        retriever.answer(query)
        times.append(time.perf_counter() - start)
    requests = [QueryRequest(query) for query in queries]
    start = time.perf_counter()
    for first in range(0, len(requests), batch):
        retriever.answer_many(requests[first : first + batch])
    batched = (time.perf_counter() - start) / len(requests)
    return float(np.percentile(times, 50) * 1e3), batched * 1e3


def profile(index: Path, queries: list[str], rows: int = 12) -> None:
    """Where an in-process answer's time goes: cProfile's own time per function, per query."""
    import cProfile
    import pstats

    words = load_word_space()
    gallery = Gallery(index)
    retriever = Retriever(words, gallery, make_search(gallery.vectors))
    for query in queries[:100]:
        retriever.answer(query)
    profiler = cProfile.Profile()
    profiler.enable()
    for query in queries:
        retriever.answer(query)
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    own = sorted(((entry[2], f"{Path(where[0]).name}:{where[1]}({where[2]})")
                  for where, entry in stats.items()), reverse=True)
    total = sum(seconds for seconds, _ in own)
    print(f"\n## Where an answer goes (cProfile, {len(queries):,} queries, one at a time; "
          f"{total / len(queries) * 1e3:.3f} ms a query under the profiler)")
    print("| function | own time a query | share |\n|---|---|---|")
    for seconds, name in own[:rows]:
        print(f"| `{name}` | {seconds / len(queries) * 1e6:.0f} us | {seconds / total:.0%} |")


async def round_trips(url: str, queries: list[str]) -> list[float]:
    async with connect(url, compression=None) as websocket:
        await websocket.recv()  # hello
        times = []
        for number, query in enumerate(queries):
            start = time.perf_counter()
            await websocket.send(json.dumps({"type": "query", "q": query, "id": number}))
            reply = json.loads(await websocket.recv())
            times.append(time.perf_counter() - start)
            if reply["type"] != "results":
                raise RuntimeError(f"{query!r}: {reply}")
        return times


async def throughput(url: str, queries: list[str], clients: int, seconds: float,
                     extra: dict | None = None, first: int = 0) -> float:
    """Replies per second; `extra` fields go into every message ({"type": "ping"} for none).

    Each client connects from its own loopback address (`first` numbers the first): they
    stand for as many users, and the server's limits per client address apply as to those.
    """
    done = 0
    stop = time.perf_counter() + seconds
    # encoded once: the load generator shares the two cores with the server it measures
    messages = [json.dumps({"type": "query", "q": query, **(extra or {})}) for query in queries]

    async def client(offset: int) -> None:
        nonlocal done
        async with connect(url, compression=None,
                           local_addr=(address(9, first + offset), 0)) as websocket:
            await websocket.recv()
            number = offset
            while time.perf_counter() < stop:
                await websocket.send(messages[number % len(messages)])
                await websocket.recv()
                done += 1
                number += clients

    start = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    return done / (time.perf_counter() - start)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _throughput_process(job: tuple) -> float:
    return asyncio.run(throughput(*job))


def parallel_throughput(url: str, queries: list[str], clients: int, seconds: float,
                        extra: dict | None = None) -> float:
    with ProcessPoolExecutor(CLIENT_PROCESSES) as pool:
        share = clients // CLIENT_PROCESSES
        jobs = [(url, queries, share, seconds, extra, n * share) for n in range(CLIENT_PROCESSES)]
        return sum(pool.map(_throughput_process, jobs))


def start_server(index: Path, port: int, log_path: Path) -> subprocess.Popen:
    # --address-share 0: one client sending query after query measures the server's speed
    # here, where the server would otherwise answer it `busy` past 0.1 s of work a second
    return launch_server(index, log_path, port, ["--address-share", "0"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--port", type=int, default=9997)
    parser.add_argument("--profile", action="store_true",
                        help="only profile the in-process answer: where its time goes")
    add_record_arg(parser)
    args = parser.parse_args()
    with recorded(args, "bench_server"):
        queries = random_queries(load_word_space().words, args.queries)
        with tempfile.TemporaryDirectory() as directory:
            index = Path(directory)
            make_gallery(index, args.images)
            if args.profile:
                profile(index, queries)
                return
            floor, batched = in_process(index, queries)
            server = start_server(index, args.port, index / "server.log")
            try:
                url = f"ws://127.0.0.1:{args.port}/ws"
                asyncio.run(round_trips(url, queries[:200]))  # warm up
                times = asyncio.run(round_trips(url, queries))
                cpu_before = cpu_seconds(server.pid)
                rate = parallel_throughput(url, queries, args.clients, args.seconds)
                server_cpu = (cpu_seconds(server.pid) - cpu_before) / (rate * args.seconds)
                # where the time goes: the same load with one result, and with no search at all
                one = parallel_throughput(url, queries, args.clients, args.seconds, {"k": 1})
                ping = parallel_throughput(url, queries, args.clients, args.seconds,
                                           {"type": "ping"})
            finally:
                stop_process(server)
        p50, p99 = np.percentile(times, 50) * 1e3, np.percentile(times, 99) * 1e3
        print(f"\n## Query server, {args.images:,}-image gallery, top 24, loopback WebSocket")
        print("| measure | value |\n|---|---|")
        print(f"| answer in process (parse, search, records, nearest words), p50 | "
              f"{floor:.3f} ms |")
        print(f"| the same, 32 queries answered as one batch, per query | {batched:.3f} ms |")
        print(f"| round trip, one client, p50 | {p50:.3f} ms ({p50 / floor:.1f}x the floor) |")
        print(f"| round trip, one client, p99 | {p99:.3f} ms |")
        print(f"| throughput, {args.clients} concurrent clients | {rate:,.0f} queries/s |")
        print(f"| server CPU time per query under that load | {server_cpu * 1e3:.3f} ms |")
        print(f"| same load, top 1 instead of top 24 | {one:,.0f} queries/s |")
        print(f"| same load, ping messages (transport and JSON, no search) | {ping:,.0f} /s |")


if __name__ == "__main__":
    main()
