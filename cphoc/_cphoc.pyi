# Type stub of the C extension (cphoc/cphoc.c), for the type checker.
from collections.abc import Sequence

PHOC_DIM: int
UNIGRAMS: str
BIGRAMS: tuple[str, ...]
UNIGRAM_LEVELS: tuple[int, ...]
BIGRAM_LEVELS: tuple[int, ...]

def build_phoc(word: str, /) -> bytearray: ...
def build_phocs(words: Sequence[str], /) -> bytearray: ...
