"""What general English costs a query: latency by kind of word, with and without the table.

    python -m scripts.bench_words --index runs/index/flickr8k-test

Loads the server's retriever twice on one gallery: as before general English (caption words
only) and as shipped (with the English table), and times `Retriever.answer` (parse, word
lookup, search, records, nearest words) for one-word queries of each kind: caption words,
English words outside the captions, typos one edit from a word, and typos two edits away.
Also the time to load the words. Prints a table of p50 / p99 in ms.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import time
from pathlib import Path

from scripts.common import add_record_arg, recorded
from server.artifacts import DEFAULT_MODEL_DIR, load_word_space
from server.english import EnglishWords
from server.serve.encoder import ImageEncoder
from server.serve.gallery import Gallery
from server.serve.query import QueryError
from server.serve.retrieval import Retriever
from server.serve.search import make_search
from server.serve.spelling import Speller


def typo(word: str, rng: random.Random, swaps: int) -> str:
    for _ in range(swaps):
        i = rng.randrange(len(word) - 1)
        word = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word


def timed(retriever: Retriever, queries: list[str]) -> list[float]:
    times = []
    for query in queries:
        start = time.perf_counter()
        with contextlib.suppress(QueryError):  # a refusal costs what it costs: timed too
            retriever.answer(query)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--queries", type=int, default=300)
    add_record_arg(parser)
    args = parser.parse_args()
    with recorded(args, "bench_words"):
        rng = random.Random(0)
        start = time.perf_counter()
        words = load_word_space(args.model)
        before_load = time.perf_counter() - start
        english = EnglishWords.load(args.model, words)
        assert english is not None, "the model has no English table"
        speller = Speller(words.words, english.index)
        after_load = time.perf_counter() - start
        gallery = Gallery(args.index, model_fingerprint=ImageEncoder(args.model).fingerprint)
        search = make_search(gallery.search_vectors(1.0))
        before = Retriever(words, gallery, search, None, Speller(words.words))
        after = Retriever(words, gallery, search, english, speller)

        caption_words = [w for w in words.words[:2000] if w in speller.caption_rank]
        english_only = [w for w in english.words[1000:30000] if w.isalpha() and len(w) > 3
                        and w not in words.index]
        long_words = [w for w in caption_words if len(w) >= 6]
        kinds = {
            "caption word": rng.sample(caption_words, args.queries),
            "English word (not in captions)": rng.sample(english_only, args.queries),
            "typo, 1 swap": [typo(w, rng, 1) for w in rng.sample(long_words, args.queries)],
            "typo, 2 swaps": [typo(w, rng, 2) for w in rng.sample(long_words, args.queries)],
        }
        print(f"load words: {before_load * 1e3:.0f} ms before, {after_load * 1e3:.0f} ms with "
              f"{len(english):,} English words")
        print("| query | before p50 / p99 (ms) | with English p50 / p99 (ms) |\n|---|---|---|")
        for kind, queries in kinds.items():
            rows = []
            for retriever in (before, after):
                times = sorted(timed(retriever, queries))
                rows.append(f"{statistics.median(times):.2f} / {times[int(0.99 * len(times))]:.2f}")
            print(f"| {kind} | {rows[0]} | {rows[1]} |")


if __name__ == "__main__":
    main()
