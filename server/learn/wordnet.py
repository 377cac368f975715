"""WordNet 3.0's nouns, read from its data file: each synset's words and its hypernyms.

    WordNet("/usr/share/wordnet/data.noun")     # Debian's wordnet-base

ImageNet names its classes by WordNet noun synsets (`n02123045` is the synset at offset 02123045
of data.noun: tabby, tabby cat), so a class's ancestors (tabby -> domestic cat -> cat -> feline)
are its synset's hypernym pointers, followed. A line of data.noun is

    offset lex_filenum ss_type w_cnt word lex_id [word lex_id ...] p_cnt [ptr ...] | gloss

with w_cnt in hexadecimal, and each pointer `symbol offset pos source/target`; `@` is a
hypernym and `@i` an instance hypernym (wndb(5WN)). Only what the concept prior needs is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DEBIAN_NOUNS = Path("/usr/share/wordnet/data.noun")
HYPERNYMS = ("@", "@i")


@dataclass(frozen=True)
class Synset:
    offset: int
    words: tuple[str, ...]  # as WordNet spells them, spaces for its underscores
    hypernyms: tuple[int, ...]  # offsets


class WordNet:
    """The noun synsets of a data.noun file, by offset."""

    def __init__(self, path: Path = DEBIAN_NOUNS):
        if not Path(path).exists():
            raise FileNotFoundError(f"no WordNet noun file at {path}: install Debian's "
                                    "wordnet-base (`apt-get install wordnet-base`)")
        self.synsets = {synset.offset: synset for synset in _read(Path(path))}

    def __getitem__(self, wnid: str) -> Synset:
        """The synset of an ImageNet id (`n02123045`) or an offset's digits."""
        return self.synsets[int(wnid.removeprefix("n"))]

    def ancestors(self, wnid: str, levels: int) -> list[list[Synset]]:
        """The hypernyms of a synset, level by level (`levels` of them: 1 = its parents)."""
        found: list[list[Synset]] = []
        seen = {self[wnid].offset}
        frontier = [self[wnid]]
        for _ in range(levels):
            parents = [self.synsets[offset] for synset in frontier for offset in synset.hypernyms
                       if offset not in seen]
            parents = list({parent.offset: parent for parent in parents}.values())
            seen.update(parent.offset for parent in parents)
            if not parents:
                break
            found.append(parents)
            frontier = parents
        return found

    def descendants_of(self, offsets: set[int], wnid: str) -> bool:
        """Whether the synset `wnid` lies under (or is) any of `offsets`."""
        frontier, seen = [self[wnid]], set()
        while frontier:
            synset = frontier.pop()
            if synset.offset in offsets:
                return True
            seen.add(synset.offset)
            frontier += [self.synsets[o] for o in synset.hypernyms if o not in seen]
        return False


def _read(path: Path) -> Iterator[Synset]:
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("  "):  # the licence at the top of the file
                continue
            fields = line.split(" | ", 1)[0].split()
            count = int(fields[3], 16)
            words = tuple(_word(fields[4 + 2 * i]) for i in range(count))
            at = 4 + 2 * count
            pointers = int(fields[at])
            hypernyms = tuple(int(fields[at + 1 + 4 * i + 1]) for i in range(pointers)
                              if fields[at + 1 + 4 * i] in HYPERNYMS
                              and fields[at + 1 + 4 * i + 2] == "n")
            yield Synset(int(fields[0]), words, hypernyms)


def _word(field: str) -> str:
    """A word as WordNet writes it (`tabby_cat`, `shelf(a)`) in plain spelling (`tabby cat`)."""
    return field.split("(")[0].replace("_", " ")
