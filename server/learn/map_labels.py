"""Whether the map's labels mean something (docs/gallery-index.md, "The map"): for the 10 most
common caption nouns of a Flickr8k split, the label nearest the photos whose captions hold the
noun, and whether it names the noun or a close word. `python -m scripts.eval_map_labels`.

"The label nearest the photos": each photo's nearest label on the whole map's view (level 0,
the 8 coarse regions), the one most of the noun's photos are nearest. A close word: either word
among the other's 10 nearest in the word space (`woman` for `girl`), or the same word but for a
plural s. The nouns: caption words of the model's vocabulary that WordNet's corpus tags as
nouns more often than as verbs or adjectives (`red` and `two` are tagged as often as
adjectives: not nouns here). Needs Debian's wordnet-base, no PyTorch.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np

from server.datasets import SHARED_FLICKR8K, read_flickr8k
from server.serve.encoder import ImageEncoder
from server.serve.gallery import Gallery
from server.serve.indexer import IndexOptions, build_index, scan_folder
from server.wordspace import WordSpace

WORDNET = Path("/usr/share/wordnet")
NOUNS = 10
CLOSE = 10


def tagged_counts(pos: str) -> dict[str, int]:
    """How often each lemma was tagged in WordNet's corpus as this part of speech
    (index.<pos>: lemma pos synset_cnt p_cnt [ptr]... sense_cnt tagsense_cnt ...)."""
    counts = {}
    for line in (WORDNET / f"index.{pos}").read_text().splitlines():
        if line.startswith(" "):
            continue
        fields = line.split()
        counts[fields[0]] = int(fields[5 + int(fields[3])])
    return counts


def common_nouns(captions: list[str], vocabulary: set[str], count: int = NOUNS) -> list[str]:
    """The caption words most used (by photos), of the model's vocabulary, that WordNet's
    corpus tags as nouns strictly more often than as verbs or adjectives."""
    nouns, verbs, adjectives = (tagged_counts(pos) for pos in ("noun", "verb", "adj"))

    def verb_form(word: str) -> bool:  # "playing", "sitting": WordNet lists "play", "sit"
        stem = word[:-3]
        return word.endswith("ing") and any(s in verbs for s in (stem, stem + "e", stem[:-1]))

    used = Counter(w for caption in captions for w in set(re.findall(r"[a-z]+", caption)))
    return [w for w, _ in used.most_common() if w in vocabulary and w in nouns
            and nouns[w] > max(verbs.get(w, 0), adjectives.get(w, 0)) and not verb_form(w)
            ][:count]


def is_close(words: WordSpace, noun: str, label: str) -> bool:
    if label.rstrip("s") == noun.rstrip("s"):
        return True
    near = {w for w, _ in words.nearest_words(words.unit_vector(noun), CLOSE)}
    back = {w for w, _ in words.nearest_words(words.unit_vector(label), CLOSE)}
    return label in near or noun in back


def label_table(captions: dict[int, str], ids: np.ndarray, xy: np.ndarray, regions: list[dict],
                words: WordSpace) -> tuple[list[tuple[str, int, str, bool]], int]:
    """(noun, photos, the label nearest them, close) for the common nouns, and how many are
    close. `captions` by image id; `ids`, `xy` the map's; `regions` as the server sends them."""
    coarse = [r for r in regions if r["level"] == 0]
    centres = np.array([[r["x"], r["y"]] for r in coarse])
    nearest = np.argmin(((xy[:, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)
    label_of = {int(i): coarse[int(n)]["label"] for i, n in zip(ids, nearest, strict=True)}
    rows = []
    for noun in common_nouns(list(captions.values()), set(words.words)):
        holding = [i for i, text in captions.items() if re.search(rf"\b{noun}s?\b", text)]
        label = Counter(label_of[i] for i in holding).most_common(1)[0][0]
        rows.append((noun, len(holding), label, is_close(words, noun, label)))
    return rows, sum(row[3] for row in rows)


def index_pictures(split: str, index_dir: Path) -> dict[int, str]:
    """Index a split's photos by their pictures alone; returns each id's captions, joined."""
    records = read_flickr8k(SHARED_FLICKR8K, split)
    folder = records[0].image.parent
    names = {r.image.name for r in records}
    build_index([s for s in scan_folder(folder) if s.path.name in names], folder, index_dir,
                ImageEncoder(), options=IndexOptions(progress=False))
    path_id = {item.path: item.id for item in Gallery(index_dir).all_items()}
    return {path_id[r.image.name]: " ".join(r.captions).lower() for r in records}


def print_table(rows: list[tuple[str, int, str, bool]], good: int) -> None:
    print("| noun | photos | the label nearest them | names it or a close word |\n"
          "|---|---|---|---|")
    for noun, count, label, close in rows:
        print(f"| {noun} | {count} | {label} | {'yes' if close else 'no'} |")
    print(f"\n{good} of {len(rows)} (target: at least 8 of 10)")
