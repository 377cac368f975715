"""Caption cleaning and vocabulary, as the reference pipeline did it.

Captions from the web are noisy: hashtags, punctuation, emoji, mixed case. The reference turned
`#` into a space (so `#sunset` counts as the word `sunset`), kept letters and digits, lower-cased,
and dropped English stop words. Everything that learns from captions goes through `tokenize`, and
every query word goes through `normalize_word`, so both sides agree on what a word is.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

# The usual English stop-word list (NLTK's), written out so that no corpus download is needed.
# Contractions appear as their pieces ("don", "t") because apostrophes become spaces.
STOP_WORDS: frozenset[str] = frozenset(
    """
    a about above after again against ain all am an and any are aren as at be because been before
    being below between both but by can couldn d did didn do does doesn doing don down during each
    few for from further had hadn has hasn have haven having he her here hers herself him himself
    his how i if in into is isn it its itself just ll m ma me mightn more most mustn my myself
    needn no nor not now o of off on once only or other our ours ourselves out over own re s same
    shan she should shouldn so some such t than that the their theirs them themselves then there
    these they this those through to too under until up ve very was wasn we were weren what when
    where which while who whom why will with won wouldn y you your yours yourself yourselves
    """.split()
)

# Anything that is not a letter or a digit separates words. `\W` keeps `_`, so name it outright.
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalize_word(word: str) -> str:
    """Lower-case a single word and strip what cleaning would strip (`#Beach!` -> `beach`)."""
    return _NON_WORD.sub("", word.replace("#", " ")).lower()


def tokenize(caption: str) -> list[str]:
    """Clean a caption into words: hashtags split, letters and digits kept, stop words dropped."""
    words = _NON_WORD.sub(" ", caption.replace("#", " ")).lower().split()
    return [w for w in words if w not in STOP_WORDS]


def build_vocab(sentences: Iterable[Sequence[str]], min_count: int = 1) -> dict[str, int]:
    """Word counts of the words seen at least `min_count` times, most frequent first.

    Ties are broken alphabetically so that the same corpus always gives the same word ids.
    """
    counts = Counter(w for s in sentences for w in s)
    kept = [(w, c) for w, c in counts.items() if c >= min_count]
    kept.sort(key=lambda wc: (-wc[1], wc[0]))
    return dict(kept)
