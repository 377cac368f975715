"""Ask a running server for words and score its top 5 by the pictures' own descriptions.

    python -m scripts.check_demo                       # flower truck hat apple car on :9998
    python -m scripts.check_demo --port 8080 dog boat

A result counts when its caption names the word (as a whole word, plural allowed): P@5 is the
share of the top five that do. Prints a Markdown table for docs/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re

from websockets.asyncio.client import connect

from scripts.common import add_record_arg, recorded

DEMO_WORDS = ("flower", "truck", "hat", "apple", "car")


def names(caption: str | None, word: str) -> bool:
    pattern = rf"\b{re.escape(word)}(s|es)?\b"
    return caption is not None and re.search(pattern, caption.lower()) is not None


async def check(url: str, words: list[str]) -> list[tuple[str, float, list[str]]]:
    rows = []
    async with connect(url) as websocket:
        await websocket.recv()  # hello
        for word in words:
            await websocket.send(json.dumps({"type": "query", "q": word, "k": 5}))
            reply = json.loads(await websocket.recv())
            if reply["type"] != "results":
                raise SystemExit(f"{word}: {reply.get('error')}")
            captions = [r["caption"] or "" for r in reply["results"]]
            rows.append((word, sum(names(c, word) for c in captions) / 5, captions))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("words", nargs="*", default=list(DEMO_WORDS))
    parser.add_argument("--port", type=int, default=9998)
    add_record_arg(parser)
    args = parser.parse_args()
    with recorded(args, "check_demo"):
        rows = asyncio.run(check(f"ws://127.0.0.1:{args.port}/ws", args.words))
        print("| query | P@5 | top 5 descriptions |\n|---|---|---|")
        for word, precision, captions in rows:
            print(f"| {word} | {precision:.1f} | {'; '.join(captions)} |")
        print(f"| mean | {sum(r[1] for r in rows) / len(rows):.2f} | |")


if __name__ == "__main__":
    main()
