"""Benchmark cphoc and the spelling lookup on the shipped vocabulary.

    python -m scripts.bench_phoc            (needs only models/words.npz and the built extension)

1. Speed: PHOCs of the shipped vocabulary and of random words with the C extension (one batch
   call, and one call per word) against the plain-Python reference; prints seconds and the
   Python/C ratio.
2. Lookup: time to build a `SpellingIndex` and of one `nearest()` / `correct()` call.
3. Threshold: on synthetic typos (one random edit of a vocabulary word) and random letter strings,
   how many are corrected right, wrong or refused, and how much garbage is accepted, for a range
   of thresholds; then the corrections of a few typical typos.
"""

from __future__ import annotations

import argparse
import functools
import random
import string
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cphoc import phoc
from scripts.common import add_record_arg, recorded
from server.artifacts import DEFAULT_MODEL_DIR, WORDS_FILE
from server.serve.spelling import DEFAULT_THRESHOLD, SpellingIndex, _occupies, reference_phoc
from server.wordspace import WordSpace

SHIPPED_WORDS = DEFAULT_MODEL_DIR / WORDS_FILE
EXAMPLES = ["happyness", "grils", "dgo", "bycicle", "moutain", "beech", "runing", "skatebord",
            "umbrela", "childern", "wather", "snwo", "Dog", "qzxv", "zzzzzz", "asdfgh"]
THRESHOLDS = [0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85]
LETTERS = string.ascii_lowercase


def best_time(function: Callable[[], object], repeats: int) -> float:
    """Least wall-clock seconds of `repeats` calls (the least disturbed by other processes)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def python_reference(words: list[str]) -> np.ndarray:
    _occupies.cache_clear()  # time the reference from cold, as a fresh process would run it
    return np.stack([reference_phoc(w) for w in words])


def random_words(count: int, rng: random.Random) -> list[str]:
    return ["".join(rng.choices(LETTERS, k=rng.randint(3, 12))) for _ in range(count)]


def phoc_each(words: list[str]) -> list:
    """One call a word, as a lookup of a single typed word makes it."""
    return [phoc(word) for word in words]


def speed(vocabulary: list[str], random_count: int, repeats: int, rng: random.Random) -> None:
    print(f"{'':34}{'C batch':>10}{'C per word':>12}{'Python':>10}{'Python/C':>10}")
    for name, words in [(f"vocabulary ({len(vocabulary):,} words)", vocabulary),
                        (f"random words ({random_count:,})", random_words(random_count, rng))]:
        batch = best_time(functools.partial(phoc, words), repeats)
        single = best_time(functools.partial(phoc_each, words), repeats)
        start = time.perf_counter()
        expected = python_reference(words)
        python = time.perf_counter() - start
        assert np.array_equal(phoc(words), expected), "C and Python PHOCs differ"
        print(f"{name:34}{batch:10.4f}{single:12.4f}{python:10.2f}{python / batch:10.0f}x")
    print("(seconds; C batch = phoc(list), C per word = phoc(w) in a Python loop)")


def lookup(vocabulary: list[str], repeats: int, rng: random.Random) -> SpellingIndex:
    start = time.perf_counter()
    index = SpellingIndex(vocabulary)
    built = time.perf_counter() - start
    queries = random_words(1000, rng)
    nearest = best_time(lambda: [index.nearest(q, k=5) for q in queries], repeats) / len(queries)
    correct = best_time(lambda: [index.correct(q) for q in queries], repeats) / len(queries)
    print(f"SpellingIndex over {len(index):,} words built in {built * 1e3:.1f} ms; "
          f"nearest(k=5) {nearest * 1e6:.0f} us, correct() {correct * 1e6:.0f} us per query")
    return index


EDITS = ("delete", "insert", "substitute", "swap")


def typo(word: str, edit: str, rng: random.Random) -> str:
    """`word` with one random deletion, insertion, substitution or swap of neighbours."""
    i = rng.randrange(len(word))
    if edit == "delete":
        return word[:i] + word[i + 1 :]
    if edit == "insert":
        return word[:i] + rng.choice(LETTERS) + word[i:]
    if edit == "substitute":
        return word[:i] + rng.choice(LETTERS.replace(word[i], "")) + word[i + 1 :]
    i = min(i, len(word) - 2)
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def threshold_table(index: SpellingIndex, count: int, rng: random.Random) -> None:
    known = set(index.words)
    candidates = [w for w in index.words if len(w) >= 4 and w.isalpha()]
    typos: list[tuple[str, str]] = []
    edits: list[str] = []
    while len(typos) < count:
        word, edit = rng.choice(candidates), rng.choice(EDITS)
        wrong = typo(word, edit, rng)
        if wrong not in known:
            typos.append((wrong, word))
            edits.append(edit)
    garbage = [w for w in random_words(count, rng) if w not in known]
    best = [index.nearest(wrong, k=1)[0] for wrong, _ in typos]
    right = np.array([found == word for (found, _), (_, word) in zip(best, typos, strict=True)])
    typo_similarity = np.array([similarity for _, similarity in best])
    garbage_similarity = np.array([index.nearest(g, k=1)[0][1] for g in garbage])
    print(f"{count:,} one-edit typos of vocabulary words (4+ letters) and {len(garbage):,} random "
          "strings of 3-12 letters:")
    print(f"{'threshold':>10}{'typo right':>12}{'typo wrong':>12}{'refused':>10}"
          f"{'garbage accepted':>18}")
    for threshold in THRESHOLDS:
        accepted = typo_similarity >= threshold
        wrong = np.mean(accepted & ~right)
        print(f"{threshold:10.2f}{np.mean(accepted & right):12.1%}{wrong:12.1%}"
              f"{np.mean(~accepted):10.1%}{np.mean(garbage_similarity >= threshold):18.1%}")
    accepted = typo_similarity >= DEFAULT_THRESHOLD
    print(f"by kind of typo at {DEFAULT_THRESHOLD}:", end="")
    for edit in EDITS:
        kind = np.array(edits) == edit
        print(f"  {edit} {np.mean((accepted & right)[kind]):.0%} right,"
              f" {np.mean((accepted & ~right)[kind]):.0%} wrong;", end="")
    print()


def examples(index: SpellingIndex) -> None:
    print(f"corrections at threshold {index.threshold}:")
    for word in EXAMPLES:
        correction = index.correct(word)
        found = f"{correction.word} ({correction.similarity:.3f})" if correction else "None"
        suggestions = ", ".join(f"{w} {s:.2f}" for w, s in index.nearest(word, k=3))
        print(f"  {word!r:12} -> {found:22} nearest: {suggestions}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--words", type=Path, default=SHIPPED_WORDS,
                        help="a saved WordSpace (.npz)")
    parser.add_argument("--random", type=int, default=100_000, help="random words to time")
    parser.add_argument("--typos", type=int, default=3000, help="typos for the threshold table")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    add_record_arg(parser)
    args = parser.parse_args()
    with recorded(args, "bench_phoc"):
        rng = random.Random(args.seed)
        vocabulary = list(WordSpace.load(args.words).words)
        speed(vocabulary, args.random, args.repeats, rng)
        print()
        index = lookup(vocabulary, args.repeats, rng)
        print()
        threshold_table(index, args.typos, rng)
        print()
        examples(SpellingIndex(vocabulary, DEFAULT_THRESHOLD))


if __name__ == "__main__":
    main()
