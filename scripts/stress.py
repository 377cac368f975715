"""Abuse the server on loopback and print what it did, as a table (docs/reliability.md).

    python -m scripts.stress                      # everything, full sizes (~10 minutes)
    python -m scripts.stress --only fuzz flood    # some parts
    python -m scripts.stress --quick              # small sizes, as `make test` runs them

Every part starts its own `python -m server` on 127.0.0.1 (or indexer), stays on loopback,
is bounded in count and time and stops by itself. Clients that stand for different machines
connect from different 127.x.y.z addresses. Parts: fuzz (malformed and hostile messages), http
(large downloads, a slow reader, pipelining, bad requests), connections (1,000 at once, the
per-address cap), flood (one address with 20 connections of heavy queries against another
client's latency), uploads (a storm of 24-megapixel uploads: latency, CPU after, memory), queued
(many connections pushing large frames while upload slots are busy: memory), kill (kill -9
during indexing, 10 times) and decode (memory of one upload by format).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
from pathlib import Path

from scripts.common import add_record_arg, recorded
from tests.stress.common import Row
from tests.stress.suite import PARTS, QUICK, Sizes, Workspace, default_folder, run, table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--messages", type=int, help="fuzzed messages (default 100,000)")
    parser.add_argument("--seconds", type=float, help="each attack's duration (default 15)")
    parser.add_argument("--work", type=Path, default=default_folder(),
                        help="folder for photos, index, images and logs (kept between runs)")
    parser.add_argument("--fresh", action="store_true", help="empty the work folder first")
    parser.add_argument("--seed", type=int, default=0)
    add_record_arg(parser)
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else Sizes()
    changes = {"messages": args.messages, "seconds": args.seconds}
    sizes = dataclasses.replace(sizes, **{k: v for k, v in changes.items() if v is not None})
    if args.fresh:
        shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True, exist_ok=True)

    def report(row: Row) -> None:
        mark = {True: "ok", False: "FAILED", None: ""}[row.met]
        print(f"[{row.part}] {row.measure}: {row.value} {mark}", file=sys.stderr, flush=True)

    with recorded(args, "stress"):
        rows = run(args.only, Workspace(args.work, sizes, args.seed), report)
        print(table(rows))


if __name__ == "__main__":
    main()
