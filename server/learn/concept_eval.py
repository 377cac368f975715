"""How well the space knows concepts the captions never taught: two evaluations.

    python -m scripts.eval_concepts --model full=models --model held-out=runs/held-out/model

**Held-out concepts** (Flickr8k's dev split, never test): `HELD_OUT_CONCEPTS`, nouns that
ImageNet covers and that at least 10 dev images' captions mention. A model trained with
`--held-out` (every training image whose captions mention one of their forms left out, the
forms out of all caption text) reaches them only as general English. Each is a one-word query;
an image is relevant when one of its captions holds a form of the word. P@5 of the images'
`embedding` (with the concept prior, as served) and of their `picture` (the head alone).

**imagenet-samples** (one photo per ImageNet class, most likely from ImageNet's training set,
which the backbone was trained on: any use of its classifier looks better here than on photos
it never saw). Queries: `ANCESTOR_WORDS`, everyday words that WordNet puts above several
ImageNet classes (an image is relevant when a synset at or above its class has the word among
its words), P@5; and each class's first name (`tabby`), hit@5: its photo among the top 5.
Queries are read as the query language reads a word or a phrase (`server.english.joint_word`:
the captions' word, else general English's; words neither knows are left out, and a query with
none is skipped and counted).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from server.datasets import CaptionedImage
from server.english import EnglishWords
from server.learn.concepts import phrase_vector
from server.learn.metrics import precision_at_k
from server.learn.wordnet import WordNet
from server.text import tokenize
from server.vectors import normalized
from server.wordspace import WordSpace

# Nouns ImageNet has classes for (under a WordNet synset of that name) that at least 10 dev
# images' captions mention, with the forms a caption may use; none is in more than ~230
# training images, so leaving them out keeps most of the training set (4,500 of 6,000 images).
HELD_OUT_CONCEPTS: dict[str, tuple[str, ...]] = {
    "bicycle": ("bicycle", "bicycles", "bike", "bikes"),
    "boat": ("boat", "boats"),
    "motorcycle": ("motorcycle", "motorcycles"),
    "car": ("car", "cars"),
    "truck": ("truck", "trucks"),
    "bench": ("bench", "benches"),
    "bird": ("bird", "birds"),
    "tent": ("tent", "tents"),
    "sunglasses": ("sunglasses",),
    "basketball": ("basketball",),
    "fountain": ("fountain", "fountains"),
    "cliff": ("cliff", "cliffs"),
    "chair": ("chair", "chairs"),
    "table": ("table", "tables"),
    "swing": ("swing", "swings"),
    "helmet": ("helmet", "helmets"),
}

# Everyday words for what photos show, each naming a WordNet synset above several ImageNet
# classes; fixed before any model of the concept prior was measured.
ANCESTOR_WORDS = (
    "dog", "cat", "bird", "fish", "snake", "lizard", "turtle", "frog", "shark", "spider",
    "beetle", "butterfly", "monkey", "primate", "bear", "car", "truck", "boat", "ship",
    "aircraft", "bicycle", "instrument", "fruit", "vegetable", "dish", "flower", "mushroom",
    "hat", "shoe", "bag", "ball", "chair", "table", "bottle", "cup", "clock", "telephone",
    "computer", "knife", "tool", "weapon", "fence", "building", "bridge", "insect", "crab",
    "parrot", "owl", "duck", "feline", "canine", "vehicle", "food", "container", "furniture",
    "clothing", "toy",
)
MIN_RELEVANT = 3  # an ancestor word must stand above the classes of this many photos


def held_out_forms() -> str:
    """Every form of the held-out concepts, as `--held-out` takes them."""
    return ",".join(form for forms in HELD_OUT_CONCEPTS.values() for form in forms)


@dataclass(frozen=True)
class Query:
    text: str
    relevant: np.ndarray  # bool, one per image


def held_out_queries(records: list[CaptionedImage]) -> list[Query]:
    """The held-out concepts as queries over `records` (the dev split)."""
    words = [{w for caption in record.captions for w in tokenize(caption)} for record in records]
    return [Query(concept, np.array([not found.isdisjoint(forms) for found in words]))
            for concept, forms in HELD_OUT_CONCEPTS.items()]


def imagenet_samples(folder: Path) -> tuple[list[Path], list[str]]:
    """The photos of imagenet-samples and their classes' WordNet ids (`n02123045_tabby.jpg`)."""
    paths = sorted(Path(folder).glob("n*_*.jpg"))
    if not paths:
        raise FileNotFoundError(f"no imagenet-samples photos (n<wnid>_<name>.jpg) in {folder}")
    return paths, [path.name.split("_", 1)[0] for path in paths]


def ancestor_queries(wordnet: WordNet, wnids: list[str]) -> list[Query]:
    """`ANCESTOR_WORDS` over photos of the classes `wnids`: those at least MIN_RELEVANT photos
    are relevant to."""
    above = {wnid: _at_or_above(wordnet, wnid) for wnid in set(wnids)}
    queries = []
    for word in ANCESTOR_WORDS:
        relevant = np.array([any(word in (w.lower() for w in wordnet.synsets[o].words)
                                 for o in above[wnid]) for wnid in wnids])
        if relevant.sum() >= MIN_RELEVANT:
            queries.append(Query(word, relevant))
    return queries


def class_name_queries(wordnet: WordNet, wnids: list[str]) -> list[Query]:
    """Each photo's class by its first name; relevant: the photos of classes of that name."""
    names = [wordnet[wnid].words[0] for wnid in wnids]
    lowered = [{w.lower() for w in wordnet[wnid].words} for wnid in wnids]
    return [Query(name, np.array([name.lower() in found for found in lowered]))
            for name in dict.fromkeys(names)]


def _at_or_above(wordnet: WordNet, wnid: str) -> set[int]:
    found, frontier = {wordnet[wnid].offset}, [wordnet[wnid]]
    while frontier:
        for offset in frontier.pop().hypernyms:
            if offset not in found:
                found.add(offset)
                frontier.append(wordnet.synsets[offset])
    return found


@dataclass(frozen=True)
class Scores:
    p5: dict[str, float]  # per query text
    hit5: dict[str, float]  # per query text: 1.0 when a relevant image is among the top 5
    unknown: list[str]  # queries of no known word, left out

    def mean(self, which: str = "p5") -> float:
        values = list(getattr(self, which).values())
        return float(np.mean(values)) if values else float("nan")


def score(images: np.ndarray, queries: list[Query], word_space: WordSpace,
          english: EnglishWords | None) -> Scores:
    """P@5 and hit@5 of each query over unit image vectors."""
    p5, hit5, unknown = {}, {}, []
    for query in queries:
        vector = phrase_vector(query.text, word_space, english)
        if vector is None:
            unknown.append(query.text)
            continue
        # the picture alone has no concept dimensions: the query's joint part meets it
        scores = images @ normalized(vector[: images.shape[1]])
        p5[query.text] = precision_at_k(scores, query.relevant, 5)
        hit5[query.text] = float(p5[query.text] > 0)
    return Scores(p5, hit5, unknown)
