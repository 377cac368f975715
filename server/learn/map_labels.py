"""Whether the map's labels mean something (docs/gallery-index.md, "The map"): for the 10 most
common caption nouns of a Flickr8k split, the label nearest the photos whose captions hold the
noun, and whether it names the noun or a close word. `python -m scripts.eval_map_labels`.

"The label nearest the photos": each photo's nearest label on the whole map's view (level 0,
the 8 coarse regions), the one most of the noun's photos are nearest; it names the noun when
one of its words (its first, or one `also` has) does. A close word: either word
among the other's 10 nearest in the word space (`woman` for `girl`), or the same word but for a
plural s. The nouns: caption words of the model's vocabulary that WordNet's concordance tags
as nouns more often than as verbs or adjectives (`red` and `two` are tagged mostly as
adjectives: not nouns here). Needs Debian's wordnet-base, no PyTorch.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from server.artifacts import MAP_WORDS_FILE, WORDS_FILE
from server.datasets import SHARED_FLICKR8K, read_flickr8k
from server.serve.encoder import ImageEncoder
from server.serve.gallery import Gallery
from server.serve.indexer import IndexOptions, build_index, scan_folder
from server.wordspace import WordSpace

WORDNET = Path("/usr/share/wordnet")
NOUNS = 10
CLOSE = 10


# cntlist.rev's sense keys say the part of speech: lemma%1 a noun, %2 a verb, %3 an adjective,
# %4 an adverb, %5 an adjective satellite (counted with the adjectives)
SENSE_TYPES = {"1": "noun", "2": "verb", "3": "adj", "4": "adv", "5": "adj"}


def tagged_counts() -> dict[str, dict[str, int]]:
    """How often each lemma was tagged in WordNet's semantic concordance as each part of speech
    ("noun", "verb", "adj", "adv"), from cntlist.rev's lines: sense_key sense_number tag_cnt.

    Not index.<pos>'s tagsense_cnt: that counts a lemma's senses that were tagged at all, so
    "dog" (one noun sense tagged, 42 times; one verb sense, twice) scored 1 and 1."""
    counts: dict[str, dict[str, int]] = {pos: {} for pos in ("noun", "verb", "adj", "adv")}
    for line in (WORDNET / "cntlist.rev").read_text().splitlines():
        key, _, tags = line.split()
        lemma, _, rest = key.partition("%")
        pos = SENSE_TYPES.get(rest[:1])
        if pos is not None:
            counts[pos][lemma] = counts[pos].get(lemma, 0) + int(tags)
    return counts


def common_nouns(captions: list[str], vocabulary: set[str], count: int = NOUNS) -> list[str]:
    """The caption words most used (by photos), of the model's vocabulary, that WordNet's
    corpus tags as nouns strictly more often than as verbs or adjectives."""
    counts = tagged_counts()
    nouns, verbs, adjectives = counts["noun"], counts["verb"], counts["adj"]
    used = Counter(w for caption in captions for w in set(re.findall(r"[a-z]+", caption)))
    return [w for w, _ in used.most_common() if w in vocabulary and w in nouns
            and nouns[w] > max(verbs.get(w, 0), adjectives.get(w, 0))
            and not _verb_form(w, verbs)][:count]


def _verb_form(word: str, verbs: dict[str, int]) -> bool:
    """An -ing form of a verb WordNet's corpus tagged ("playing", "sitting": it lists "play",
    "sit"), which the corpus counts under the verb, not under the word."""
    return _stem_verb_tags(word, verbs) > 0


def _stem_verb_tags(word: str, verbs: dict[str, int]) -> int:
    """How often the verb an -ing word is a form of was tagged ("playing": "play", 246 times);
    0 for any other word."""
    if not word.endswith("ing"):
        return 0
    stem = word[:-3]
    return max(verbs.get(s, 0) for s in (stem, stem + "e", stem[:-1]))


# An -ing form names a thing where the corpus tags it as a noun or adjective at least this
# share as often as its verb: "building" 54 times against "build" 139, "painting" 27 against
# 41; not "playing" (12 against 246), "holding" (1 against 351) or "swimming" (1 against 13)
ING_THING_SHARE = 0.1


def describing_words(vocabulary: Sequence[str]) -> list[str]:
    """The words of `vocabulary` a map label is made of (server/serve/gallery_map.py), in
    its order: all but the -ing forms of verbs ("wearing", "holding") and
    the words WordNet's corpus tags mostly as adverbs ("behind", "around"), which stand out for
    a region of people without saying what is in it. Words the corpus never tagged stay
    ("bike", "surfing"), and so do those it tags as nouns and verbs alike ("dress", "train":
    its text is not captions). Chosen on Flickr8k dev against the rule of WordNet's nouns and
    adjectives only, which names as many nouns and drops those (docs/gallery-index.md)."""
    counts = tagged_counts()

    def tags(word: str, *kinds: str) -> int:
        return sum(counts[kind].get(word, 0) for kind in kinds)

    def describes(word: str) -> bool:
        thing = tags(word, "noun", "adj")
        return (thing >= ING_THING_SHARE * _stem_verb_tags(word, counts["verb"])
                and tags(word, "adv") <= thing + tags(word, "verb"))

    return [w for w in vocabulary if describes(w)]


def export_map_words(directory: Path) -> int:
    """Write the model's `describing_words` into its folder (MAP_WORDS_FILE, one a line), which
    the server's map labels read, so that serving needs no WordNet; returns how many."""
    words = describing_words(WordSpace.load(Path(directory) / WORDS_FILE).words)
    path = Path(directory) / MAP_WORDS_FILE
    partial = path.with_suffix(".partial")
    partial.write_text("".join(word + "\n" for word in words))
    partial.replace(path)  # whole or not at all: a crash leaves the old file
    return len(words)


def nearest_sets(words: WordSpace) -> list[set[str]]:
    """Each vocabulary word's CLOSE nearest words (itself among them), in the vocabulary's
    order: computed once for every noun's `close_words`."""
    return [{w for w, _ in near} for near in words.nearest_words_many(words.matrix, CLOSE)]


def close_words(words: WordSpace, noun: str, nearest: Sequence[set[str]]) -> set[str]:
    """The words a label may be to name `noun` (a vocabulary word): itself but for a plural s,
    its CLOSE nearest, and the words it is among the CLOSE nearest of (`nearest`:
    `nearest_sets(words)`)."""
    back = {word for word, theirs in zip(words.words, nearest, strict=True) if noun in theirs}
    same = {w for w in words.words if w.rstrip("s") == noun.rstrip("s")}
    return nearest[words.index[noun]] | back | same


class LabelTable(NamedTuple):
    """What `label_table` measured."""

    rows: list[tuple[str, int, str, bool]]  # (noun, photos, the label nearest them, close)
    good: int  # the rows whose label (one of its words) is close
    first: int  # the rows whose label's first word alone is close
    possible: int  # the most any labelling of the same regions could make close


def region_words(region: dict) -> list[str]:
    """A region's label as words, its first word first (`also`: the further ones)."""
    return [str(region["label"]), *map(str, region.get("also", []))]


def label_table(captions: dict[int, str], ids: np.ndarray, xy: np.ndarray, regions: list[dict],
                words: WordSpace) -> LabelTable:
    """The common nouns' rows, how many are close, and how many could be. `captions` by image
    id; `ids`, `xy` the map's; `regions` as the server sends them. A label names a noun when
    one of its words is close to it.

    The labels decide only which words each coarse region shows; which region a noun's photos
    mostly lie nearest is the layout's. So the nouns that share a region can be named at once
    only by as many words as its label has: `possible` counts, region by region, the most
    nouns that many words could name (the words not kept apart: an upper bound).
    """
    coarse = [r for r in regions if r["level"] == 0]
    centres = np.array([[r["x"], r["y"]] for r in coarse])
    nearest = np.argmin(((xy[:, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)
    region_of = {int(i): int(n) for i, n in zip(ids, nearest, strict=True)}
    rows, first, sharing = [], 0, defaultdict(list)
    nearest = nearest_sets(words)
    for noun in common_nouns(list(captions.values()), set(words.words)):
        holding = [i for i, text in captions.items() if re.search(rf"\b{noun}s?\b", text)]
        region = Counter(region_of[i] for i in holding).most_common(1)[0][0]
        close = close_words(words, noun, nearest)
        shown = region_words(coarse[region])
        rows.append((noun, len(holding), " ".join(shown), any(w in close for w in shown)))
        first += shown[0] in close
        sharing[region].append(close)
    possible = sum(most_named(closes, len(region_words(coarse[region])))
                   for region, closes in sharing.items())
    return LabelTable(rows, sum(row[3] for row in rows), first, possible)


def most_named(closes: list[set[str]], count: int) -> int:
    """The most of these nouns (each given by the words that would name it) that `count`
    words could name at once: every choice of words tried, a word standing for all that name
    the same nouns."""
    named = {frozenset(n for n, close in enumerate(closes) if word in close)
             for word in set().union(*closes)}
    return max(len(frozenset().union(*chosen))
               for chosen in itertools.combinations(named, min(count, len(named))))


def index_pictures(split: str, index_dir: Path) -> dict[int, str]:
    """Index a split's photos by their pictures alone; returns each id's captions, joined."""
    records = read_flickr8k(SHARED_FLICKR8K, split)
    folder = records[0].image.parent
    names = {r.image.name for r in records}
    build_index([s for s in scan_folder(folder) if s.path.name in names], folder, index_dir,
                ImageEncoder(), options=IndexOptions(progress=False))
    path_id = {item.path: item.id for item in Gallery(index_dir).all_items()}
    return {path_id[r.image.name]: " ".join(r.captions).lower() for r in records}


def print_table(table: LabelTable) -> None:
    print("| noun | photos | the label nearest them | names it or a close word |\n"
          "|---|---|---|---|")
    for noun, count, label, close in table.rows:
        print(f"| {noun} | {count} | {label} | {'yes' if close else 'no'} |")
    print(f"\n{table.good} of {len(table.rows)} (target: at least 8 of 10; by the first words "
          f"alone: {table.first}); the most any labelling of these regions with as many words "
          f"could name: {table.possible}")
